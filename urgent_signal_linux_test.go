package pipe_test

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pipe2go/pipe"
)

// signalFlood sends SIGURG, the signal the runtime preempts goroutines
// with and otherwise ignores, to every thread of the process again and
// again until the test ends. At TCP urgent data, read(2) answers EAGAIN
// while a signal is pending, although all the data is there.
func signalFlood(t *testing.T) {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		pid := os.Getpid()
		var tids []int
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%64 == 0 {
				tids = tids[:0]
				ents, _ := os.ReadDir("/proc/self/task")
				for _, e := range ents {
					if tid, err := strconv.Atoi(e.Name()); err == nil {
						tids = append(tids, tid)
					}
				}
			}
			for _, tid := range tids {
				_ = unix.Tgkill(pid, tid, unix.SIGURG)
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}

// TestUrgentDataWithSignalsPending: Copy from a TCP socket at urgent data,
// with the whole stream and its end already queued, while signals keep
// arriving. read(2) then answers EAGAIN now and then although everything
// is readable, and a Read that parks on it (as net's and os's do) waits for
// ever: Copy must deliver what read(2) delivers, and return, each time, on
// each of its ways (spliced, a small limited copy, read and write into an
// O_APPEND pipe), for a *net.TCPConn and an *os.File.
func TestUrgentDataWithSignalsPending(t *testing.T) {
	if testing.Short() {
		t.Skip("floods the process with signals for seconds")
	}
	signalFlood(t)
	wants := map[string][]byte{"only": nil, "last": bytes.Repeat([]byte("a"), 5000)}
	for _, pt := range urgentPatterns {
		want, ok := wants[pt.name]
		if !ok {
			continue
		}
		for _, holding := range []string{"conn", "file"} {
			for _, way := range []string{"whole", "limited", "append"} {
				t.Run(pt.name+"/"+holding+"/"+way, func(t *testing.T) {
					for i := 0; i < 15; i++ {
						src := loadedUrgent(t, pt, holding)
						r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
						got := collect(t, r)
						var from io.Reader = src
						switch way {
						case "limited":
							from = &io.LimitedReader{R: src, N: 16 << 10}
						case "append":
							setFlags(t, w, unix.O_APPEND)
						}
						c := goCall(func() (int64, error) { return pipe.Copy(w, from) })
						if !returnsWithin(t, c, 5*time.Second, func() { src.(io.Closer).Close() }) {
							t.Fatalf("try %d: Copy hung at urgent data with everything queued (%d, %v once unblocked)", i, c.n, c.err)
						}
						w.Close()
						if c.n != int64(len(want)) || c.err != nil {
							t.Fatalf("try %d: Copy = %d, %v; want %d, nil", i, c.n, c.err, len(want))
						}
						if g := got(); !bytes.Equal(g, want) {
							t.Fatalf("try %d: the pipe got %d bytes; want %d", i, len(g), len(want))
						}
					}
				})
			}
		}
	}
}

// TestBlockingSocketEndRace: a blocking stream socket whose peer writes and
// shuts down just as Copy finds it empty. Copy reads it with MSG_DONTWAIT
// and, on EAGAIN, asks poll(2) whether it was shut for reading (where a
// blocking read(2) returns 0); the bytes that arrived between the two
// must still be delivered, not taken for the end (TestMatrix lost 150,000
// bytes once in ten rounds so).
func TestBlockingSocketEndRace(t *testing.T) {
	for i := range 300 {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		src := os.NewFile(uintptr(fds[0]), "blocking-unix")
		peer := fds[1]
		r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
		got := collect(t, r)
		c := goCall(func() (int64, error) { return pipe.Copy(w, src) })
		if i%2 == 1 {
			time.Sleep(time.Duration(i%7) * 20 * time.Microsecond)
		}
		if _, err := unix.Write(peer, []byte("x")); err != nil {
			t.Fatal(err)
		}
		if err := unix.Shutdown(peer, unix.SHUT_WR); err != nil {
			t.Fatal(err)
		}
		if !returnsWithin(t, c, 5*time.Second, func() { src.Close() }) {
			t.Fatalf("try %d: Copy hung", i)
		}
		w.Close()
		if g := got(); c.n != 1 || c.err != nil || string(g) != "x" {
			t.Fatalf("try %d: Copy = %d, %v, the pipe got %q; want 1, nil, \"x\"", i, c.n, c.err, g)
		}
		src.Close()
		unix.Close(peer)
		r.Close()
	}
}
