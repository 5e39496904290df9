package pipe_test

// Fourth review: attacks on 2e55605 (TCP urgent data while signals are
// pending; markReader, dontWait.Read, relay). Every test is bounded: a call
// that hangs is unblocked and reported.

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pipe2go/pipe"
)

// r4Sock returns a receiving TCP socket held as holding says ("conn",
// "file", or "blocking": an *os.File of a blocking duplicate, outside the
// poller), with inline setting SO_OOBINLINE, and its peer.
func r4Sock(t *testing.T, holding string, inline bool) (src io.Reader, peer *net.TCPConn) {
	t.Helper()
	peer, sock := tcpPair(t)
	if inline {
		if err := control(sock, func(fd int) error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_OOBINLINE, 1) }); err != nil {
			t.Fatal(err)
		}
	}
	switch holding {
	case "conn":
		return sock, peer
	case "file":
		return socketFile(t, sock), peer
	}
	var dup int
	if err := control(sock, func(fd int) error {
		var err error
		dup, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	sock.Close()
	if err := unix.SetNonblock(dup, false); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(dup), "blocking-tcp")
	t.Cleanup(func() { f.Close() })
	return f, peer
}

// r4Wait waits up to 10s for a goroutine with frame on its stack to be
// blocked (IO wait or syscall).
func r4Wait(t *testing.T, frame string) {
	t.Helper()
	waitBlocked(t, frame)
}

// r4States samples, n times every step, the state of the goroutines with
// frame on their stack, and returns how many samples found one parked (IO
// wait or in a system call) and the states seen otherwise.
func r4States(frame string, n int, step time.Duration) (parked int, others []string) {
	for i := 0; i < n; i++ {
		if blockedCount(frame) > 0 {
			parked++
		} else {
			others = append(others, r4StateOf(frame))
		}
		time.Sleep(step)
	}
	return parked, others
}

func r4StateOf(frame string) string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, frame) {
			header, _, _ := strings.Cut(g, "\n")
			return header
		}
	}
	return "gone"
}

// ---- Urgent data while signals are pending, on the ways the change missed ----

// TestReview4UrgentIntoProcFileWithSignals: a TCP source into a regular file
// that refuses splice(2) (procfs): staged drains up to the urgent mark into
// its buffer pipe, the pump fails EINVAL, unstage writes what it holds, and
// the rest goes with readWrite(dst, src): the source's own Read, which parks
// for ever at the urgent mark when read(2) answers EAGAIN with a signal
// pending.
func TestReview4UrgentIntoProcFileWithSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("floods the process with signals")
	}
	const name = "/proc/thread-self/comm" // this thread's name: harmless to write
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	old, err := os.ReadFile(name)
	if err != nil {
		t.Skip(err)
	}
	defer func() { _ = os.WriteFile(name, bytes.TrimSpace(old), 0) }()
	signalFlood(t)
	var last urgentPattern
	for _, pt := range urgentPatterns {
		if pt.name == "last" {
			last = pt
		}
	}
	for _, holding := range []string{"conn", "file"} {
		t.Run(holding, func(t *testing.T) {
			for i := 0; i < 60; i++ {
				f, err := os.OpenFile(name, os.O_WRONLY, 0)
				if err != nil {
					t.Skip(err)
				}
				src := loadedUrgent(t, last, holding)
				c := goCall(func() (int64, error) { return pipe.Copy(f, src) })
				ok := returnsWithin(t, c, 5*time.Second, func() { src.(io.Closer).Close() })
				f.Close()
				if !ok {
					t.Fatalf("try %d: Copy(procfs file, TCP socket at urgent data) hung with everything queued (%d, %v once unblocked)", i, c.n, c.err)
				}
				if c.n != 5000 || c.err != nil {
					t.Fatalf("try %d: Copy = %d, %v; want 5000, nil", i, c.n, c.err)
				}
			}
		})
	}
}

// TestReview4UrgentIntoPlainWriterWithSignals: the documentation says Copy
// reads a TCP socket with read(2) itself and waits only when poll(2) agrees
// nothing is readable. Into a writer that is no syscall.Conn (a
// bytes.Buffer, a hash, a bufio.Writer) Copy hands the whole job to
// io.Copy, whose Read parks for ever at the urgent mark.
func TestReview4UrgentIntoPlainWriterWithSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("floods the process with signals")
	}
	signalFlood(t)
	var last urgentPattern
	for _, pt := range urgentPatterns {
		if pt.name == "last" {
			last = pt
		}
	}
	for _, holding := range []string{"conn", "file"} {
		for _, limited := range []bool{false, true} {
			name := holding + "/whole"
			if limited {
				name = holding + "/limited"
			}
			t.Run(name, func(t *testing.T) {
				for i := 0; i < 60; i++ {
					src := loadedUrgent(t, last, holding)
					var buf bytes.Buffer
					var from io.Reader = src
					if limited {
						from = &io.LimitedReader{R: src, N: 16 << 10}
					}
					c := goCall(func() (int64, error) { return pipe.Copy(struct{ io.Writer }{&buf}, from) })
					if !returnsWithin(t, c, 5*time.Second, func() { src.(io.Closer).Close() }) {
						t.Fatalf("try %d: Copy(plain writer, TCP socket at urgent data) hung with everything queued (%d, %v once unblocked)", i, c.n, c.err)
					}
					if c.n != 5000 || c.err != nil {
						t.Fatalf("try %d: Copy = %d, %v; want 5000, nil", i, c.n, c.err)
					}
				}
			})
		}
	}
}

// TestReview4UrgentMoreWaysWithSignals: the ways the change covers, with
// more destinations and limits, and lr.N checked: the data must be what
// read(2) delivers, lr.N the limit less what was copied.
func TestReview4UrgentMoreWaysWithSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("floods the process with signals")
	}
	signalFlood(t)
	var pats []urgentPattern
	for _, pt := range urgentPatterns {
		if pt.name != "first" { // "first" is "twice" without the data before
			pats = append(pats, pt)
		}
	}
	type dest struct {
		name string
		open func(t *testing.T) (io.Writer, func() []byte)
	}
	dests := []dest{
		{"tcp", func(t *testing.T) (io.Writer, func() []byte) {
			w, r := tcpPair(t)
			got := collect(t, r)
			return w, func() []byte { w.CloseWrite(); return got() }
		}},
		{"file", func(t *testing.T) (io.Writer, func() []byte) {
			f := tempFile(t, "dst")
			return f, func() []byte { b, _ := os.ReadFile(f.Name()); return b }
		}},
		{"unix", func(t *testing.T) (io.Writer, func() []byte) {
			w, r := unixPair(t)
			got := collect(t, r)
			return w, func() []byte { w.CloseWrite(); return got() }
		}},
		{"pipe", func(t *testing.T) (io.Writer, func() []byte) {
			r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			got := collect(t, r)
			return w, func() []byte { w.Close(); return got() }
		}},
		{"blocking-pipe", func(t *testing.T) (io.Writer, func() []byte) {
			r, w := newPipe(t, pipe.O_CLOEXEC)
			got := collect(t, r)
			return w, func() []byte { w.Close(); return got() }
		}},
	}
	for _, p := range pats {
		for _, d := range dests {
			for _, holding := range []string{"conn", "file"} {
				for _, limit := range []int64{0, 4000, 5000, 5001, 16 << 10, 100 << 10} {
					t.Run(p.name+"/"+d.name+"/"+holding+"/"+itoa(int(limit)), func(t *testing.T) {
						// The reference: what read(2) delivers (the second of
						// two urgent bytes in a row makes the first plain data).
						want, _, err := readPlain(loadedUrgent(t, p, holding))
						if err != nil {
							t.Fatal(err)
						}
						for i := 0; i < 3; i++ {
							src := loadedUrgent(t, p, holding)
							dst, got := d.open(t)
							want := want
							var from io.Reader = src
							var lr *io.LimitedReader
							if limit > 0 {
								lr = &io.LimitedReader{R: src, N: limit}
								from = lr
								want = want[:min(int64(len(want)), limit)]
							}
							c := goCall(func() (int64, error) { return pipe.Copy(dst, from) })
							if !returnsWithin(t, c, 5*time.Second, func() { src.(io.Closer).Close() }) {
								t.Fatalf("try %d: Copy hung (%d, %v once unblocked)", i, c.n, c.err)
							}
							if c.n != int64(len(want)) || c.err != nil {
								t.Fatalf("try %d: Copy = %d, %v; want %d, nil", i, c.n, c.err, len(want))
							}
							if lr != nil && lr.N != limit-c.n {
								t.Fatalf("try %d: lr.N = %d after copying %d of %d", i, lr.N, c.n, limit)
							}
							if g := got(); !bytes.Equal(g, want) {
								t.Fatalf("try %d: the destination got %d bytes; want %d", i, len(g), len(want))
							}
						}
					})
				}
			}
		}
	}
}

// ---- Parking, CPU, Close and deadlines on each way ----

// r4Way is one of Copy's ways from a TCP source into a pipe.
type r4Way struct {
	name    string
	holding string // the source: conn, file or blocking
	limited bool   // an io.LimitedReader of 16 KiB (markReader)
	dst     int    // the destination pipe's flags
	appendW bool   // O_APPEND set on the destination later
}

var r4Ways = []r4Way{
	{"limited-conn", "conn", true, pipe.O_CLOEXEC | pipe.O_NONBLOCK, false},
	{"limited-file", "file", true, pipe.O_CLOEXEC | pipe.O_NONBLOCK, false},
	{"whole-conn", "conn", false, pipe.O_CLOEXEC | pipe.O_NONBLOCK, false},
	{"whole-file", "file", false, pipe.O_CLOEXEC | pipe.O_NONBLOCK, false},
	{"append-conn", "conn", false, pipe.O_CLOEXEC | pipe.O_NONBLOCK, true},
	{"append-file", "file", false, pipe.O_CLOEXEC | pipe.O_NONBLOCK, true},
	{"blocking-pipe-conn", "conn", false, pipe.O_CLOEXEC, false},
	{"blocking-socket", "blocking", false, pipe.O_CLOEXEC | pipe.O_NONBLOCK, false},
	{"blocking-socket-append", "blocking", false, pipe.O_CLOEXEC | pipe.O_NONBLOCK, true},
}

// r4Start starts Copy on way from a source in state (see r4Sources) and
// returns the call, the source, the destination's ends and what the
// destination must get.
func r4Start(t *testing.T, way r4Way, state string) (c *call, src io.Reader, r, w *os.File, want []byte) {
	t.Helper()
	src, peer := r4Sock(t, way.holding, state == "urgent-only-inline")
	switch state {
	case "empty":
	case "urgent-only", "urgent-only-inline":
		sendOOB(t, peer, "X")
		if state == "urgent-only-inline" {
			want = []byte("X")
		}
	case "urgent-after-data":
		mustWrite(t, peer, bytes.Repeat([]byte("a"), 3000))
		sendOOB(t, peer, "X")
		want = bytes.Repeat([]byte("a"), 3000)
	case "half-closed-own":
		// This side shut its sending half: the socket still reads.
		if err := control(src, func(fd int) error { return unix.Shutdown(fd, unix.SHUT_WR) }); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("unknown state %q", state)
	}
	time.Sleep(20 * time.Millisecond) // loopback: all arrived
	r, w = newPipe(t, way.dst)
	if way.appendW {
		setFlags(t, w, unix.O_APPEND)
	}
	var from io.Reader = src
	if way.limited {
		from = &io.LimitedReader{R: src, N: 16 << 10}
	}
	c = goCall(func() (int64, error) { return pipe.Copy(w, from) })
	return c, src, r, w, want
}

var r4Sources = []string{"empty", "urgent-only", "urgent-only-inline", "urgent-after-data", "half-closed-own"}

// TestReview4ParkedCopyIsIdle: a Copy waiting on a TCP source that holds
// nothing readable (only the urgent byte, SO_OOBINLINE or not; the data
// before it taken; its own sending half shut) parks, on every way: it is
// seen blocked again and again and the process uses next to no CPU. Then
// the source's read deadline ends it with os.ErrDeadlineExceeded (Close
// for a blocking socket, which has no deadline, is in
// TestReview4BlockingSocketCloseEndsCopy).
func TestReview4ParkedCopyIsIdle(t *testing.T) {
	for _, way := range r4Ways {
		for _, state := range r4Sources {
			t.Run(way.name+"/"+state, func(t *testing.T) {
				c, src, _, _, want := r4Start(t, way, state)
				r4Wait(t, "pipe.Copy(")
				checkIdle(t, "Copy waiting on a TCP source", 300*time.Millisecond)
				// 17 of 20: on a blocking socket the wait is poll(2) on a
				// duplicate, which wakes every closedCheck (100 ms) to see
				// whether the socket was closed, and a sample's
				// stop-the-world can leave the woken goroutine runnable
				// for a while (seen: 18 of 20 once in go test -race
				// -count=10, the others [syscall] again at once). A spin
				// is seen running in most samples, and checkIdle above
				// measures its CPU.
				if parked, others := r4States("pipe.Copy(", 20, 5*time.Millisecond); parked < 17 {
					t.Errorf("Copy parked in %d of 20 samples; otherwise %q", parked, others)
				}
				if way.holding == "blocking" {
					// No deadline on a blocking descriptor: the peer's end
					// of stream ends the wait.
					if err := control(src, func(fd int) error { return unix.Shutdown(fd, unix.SHUT_RD) }); err != nil {
						t.Fatal(err)
					}
				} else if err := src.(interface{ SetReadDeadline(time.Time) error }).SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
					t.Fatal(err)
				}
				if !returnsWithin(t, c, 2*time.Second, func() { src.(io.Closer).Close() }) {
					t.Fatal("Copy did not end at the source's read deadline (or SHUT_RD)")
				}
				if way.holding == "blocking" {
					if c.err != nil {
						t.Errorf("Copy ended by SHUT_RD = %d, %v; want nil", c.n, c.err)
					}
				} else if !errors.Is(c.err, os.ErrDeadlineExceeded) {
					t.Errorf("Copy = %d, %v; want os.ErrDeadlineExceeded", c.n, c.err)
				}
				if c.n != int64(len(want)) {
					t.Errorf("Copy copied %d; want %d", c.n, len(want))
				}
			})
		}
	}
}

// TestReview4CloseSourceEndsParkedCopy: Close of the source (not a
// blocking socket) ends a parked Copy at once, with an error matching
// os.ErrClosed (an *os.File) or net.ErrClosed (a *net.TCPConn).
func TestReview4CloseSourceEndsParkedCopy(t *testing.T) {
	for _, way := range r4Ways {
		if way.holding == "blocking" {
			continue
		}
		for _, state := range []string{"empty", "urgent-only", "urgent-after-data"} {
			t.Run(way.name+"/"+state, func(t *testing.T) {
				c, src, _, _, _ := r4Start(t, way, state)
				r4Wait(t, "pipe.Copy(")
				start := time.Now()
				src.(io.Closer).Close()
				if !returnsWithin(t, c, 2*time.Second, func() {}) {
					t.Fatal("Copy did not end at Close of its source")
				}
				if d := time.Since(start); d > time.Second {
					t.Errorf("Copy took %v to end after Close", d)
				}
				want := error(os.ErrClosed)
				if way.holding == "conn" {
					want = net.ErrClosed
				}
				if !errors.Is(c.err, want) {
					t.Errorf("Copy = %d, %v (%T); want an error matching %v", c.n, c.err, c.err, want)
				}
			})
		}
	}
}

// TestReview4BlockingSocketCloseEndsCopy: the documentation says a
// blocking socket is read with MSG_DONTWAIT "so that its Close never waits
// for Copy". Close returns; does Copy end too, or go on waiting in poll(2)
// on its duplicate, holding the socket open (the peer sees no end)?
func TestReview4BlockingSocketCloseEndsCopy(t *testing.T) {
	for _, way := range r4Ways {
		if way.holding != "blocking" {
			continue
		}
		t.Run(way.name, func(t *testing.T) {
			src, peer := r4Sock(t, "blocking", false)
			_, w := newPipe(t, way.dst)
			if way.appendW {
				setFlags(t, w, unix.O_APPEND)
			}
			c := goCall(func() (int64, error) { return pipe.Copy(w, src) })
			r4Wait(t, "pipe.Copy(")
			closed := goCall(func() (int64, error) { return 0, src.(io.Closer).Close() })
			if !closed.wait(time.Second) {
				t.Fatal("Close of the blocking socket waited for Copy")
			}
			if !returnsWithin(t, c, time.Second, func() { mustWrite(t, peer, []byte("wake")) }) {
				// Also: the socket stays open, the peer reads nothing.
				t.Errorf("Copy went on waiting after Close of its blocking source (the socket stays open through Copy's duplicate); ended with %d, %v once the peer wrote", c.n, c.err)
				return
			}
			if !errors.Is(c.err, os.ErrClosed) {
				t.Errorf("Copy = %d, %v; want os.ErrClosed", c.n, c.err)
			}
		})
	}
}

// TestReview4CloseDestinationAfterMark: past the urgent mark Copy reads the
// TCP source itself (relay, markReader); Close of a full destination pipe
// must end it with os.ErrClosed.
func TestReview4CloseDestinationAfterMark(t *testing.T) {
	for _, way := range r4Ways {
		if way.dst&pipe.O_NONBLOCK == 0 {
			continue // a blocking pipe's Close does not wake its writer
		}
		t.Run(way.name, func(t *testing.T) {
			src, peer := r4Sock(t, way.holding, false)
			mustWrite(t, peer, bytes.Repeat([]byte("a"), 100))
			sendOOB(t, peer, "X")
			go func() { _, _ = peer.Write(make([]byte, 1<<20)) }()
			_, w := newPipe(t, way.dst)
			if err := control(w, func(fd int) error { _, err := unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, 4096); return err }); err != nil {
				t.Fatal(err)
			}
			if way.appendW {
				setFlags(t, w, unix.O_APPEND)
			}
			var from io.Reader = src
			if way.limited {
				from = &io.LimitedReader{R: src, N: 16 << 10}
			}
			c := goCall(func() (int64, error) { return pipe.Copy(w, from) })
			r4Wait(t, "pipe.Copy(")
			checkIdle(t, "Copy waiting on a full pipe", 200*time.Millisecond)
			w.Close()
			if !returnsWithin(t, c, 2*time.Second, func() { src.(io.Closer).Close() }) {
				t.Fatal("Copy did not end at Close of its destination")
			}
			if !errors.Is(c.err, os.ErrClosed) {
				t.Errorf("Copy = %d, %v; want os.ErrClosed", c.n, c.err)
			}
		})
	}
}

// ---- markReader: any *os.File in a small limited copy ----

// r4FileCase makes a fresh source; each case is made twice, once read with
// os.File.Read (the reference) and once copied by Copy.
type r4FileCase struct {
	name string
	n    int64
	open func(t *testing.T) *os.File
}

func r4FileCases() []r4FileCase {
	pipeWith := func(flags int, data []byte, keepWriter bool) func(t *testing.T) *os.File {
		return func(t *testing.T) *os.File {
			r, w := newPipe(t, flags)
			mustWrite(t, w, data)
			if !keepWriter {
				w.Close()
			}
			return r
		}
	}
	return []r4FileCase{
		{"nonblocking-pipe-eof", 16 << 10, pipeWith(pipe.O_CLOEXEC|pipe.O_NONBLOCK, []byte("hello"), false)},
		{"nonblocking-pipe-limit", 10000, pipeWith(pipe.O_CLOEXEC|pipe.O_NONBLOCK, bytes.Repeat([]byte("p"), 20000), true)},
		{"blocking-pipe-eof", 32 << 10, pipeWith(pipe.O_CLOEXEC, bytes.Repeat([]byte("q"), 5000), false)},
		{"blocking-pipe-limit", 1000, pipeWith(pipe.O_CLOEXEC, bytes.Repeat([]byte("q"), 5000), true)},
		{"os-pipe", 100, func(t *testing.T) *os.File {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close(); w.Close() })
			mustWrite(t, w, bytes.Repeat([]byte("o"), 300))
			return r
		}},
		{"nonblock-set-by-sharer-empty", 100, func(t *testing.T) *os.File {
			r, _ := newPipe(t, pipe.O_CLOEXEC) // blocking: not in the poller
			setFlags(t, r, unix.O_NONBLOCK)
			return r
		}},
		{"nonblock-set-by-sharer-data", 100, func(t *testing.T) *os.File {
			r, w := newPipe(t, pipe.O_CLOEXEC)
			mustWrite(t, w, []byte("some"))
			setFlags(t, r, unix.O_NONBLOCK)
			return r
		}},
		{"regular-file", 1000, func(t *testing.T) *os.File { return fileWith(t, bytes.Repeat([]byte("f"), 5000)) }},
		{"regular-file-eof", 32 << 10, func(t *testing.T) *os.File { return fileWith(t, bytes.Repeat([]byte("f"), 5000)) }},
		{"empty-file", 10, func(t *testing.T) *os.File { return fileWith(t, nil) }},
		{"dev-zero", 32 << 10, func(t *testing.T) *os.File {
			f, err := os.Open("/dev/zero")
			if err != nil {
				t.Skip(err)
			}
			t.Cleanup(func() { f.Close() })
			return f
		}},
		{"directory", 100, func(t *testing.T) *os.File {
			f, err := os.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			return f
		}},
		{"write-only", 100, func(t *testing.T) *os.File {
			_, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			return w
		}},
		{"fifo-no-writer", 100, func(t *testing.T) *os.File {
			name := filepath.Join(t.TempDir(), "fifo")
			if err := unix.Mkfifo(name, 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			return f
		}},
		{"fifo-writer-gone", 100, func(t *testing.T) *os.File {
			name := filepath.Join(t.TempDir(), "fifo")
			if err := unix.Mkfifo(name, 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			if err := os.WriteFile(name, []byte("fifo data"), 0); err != nil {
				t.Fatal(err)
			}
			return f
		}},
		{"closed", 100, func(t *testing.T) *os.File {
			f := fileWith(t, []byte("x"))
			f.Close()
			return f
		}},
		{"nil", 100, func(t *testing.T) *os.File { return nil }},
		{"udp-datagrams", 7, func(t *testing.T) *os.File {
			a, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			b, err := net.DialUDP("udp", nil, a.LocalAddr().(*net.UDPAddr))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			mustWrite(t, b, []byte("abc"))
			mustWrite(t, b, []byte("defg"))
			time.Sleep(10 * time.Millisecond)
			return socketFile(t, a)
		}},
		{"pty-master", 6, func(t *testing.T) *os.File {
			m, s := openPty(t)
			mustWrite(t, s, []byte("hello\n")) // "hello\r\n" at the master
			time.Sleep(20 * time.Millisecond)
			return m
		}},
	}
}

// r4SameErr reports whether two errors say the same: both nil, or both
// matching one of the usual sentinels or the same errno.
func r4SameErr(a, b error) bool {
	if (a == nil) != (b == nil) {
		return false
	}
	if a == nil {
		return true
	}
	for _, e := range []error{io.EOF, os.ErrClosed, os.ErrInvalid, os.ErrDeadlineExceeded, net.ErrClosed} {
		if errors.Is(a, e) != errors.Is(b, e) {
			return false
		}
	}
	var ea, eb syscall.Errno
	if errors.As(a, &ea) != errors.As(b, &eb) || ea != eb {
		return false
	}
	return true
}

// TestReview4MarkReaderMatchesRead: a small limited Copy of any *os.File
// into a pipe delivers what io.Copy with the file's Read delivers: the same
// bytes, the same count, the same error, and the same lr.N.
func TestReview4MarkReaderMatchesRead(t *testing.T) {
	for _, tc := range r4FileCases() {
		t.Run(tc.name, func(t *testing.T) {
			ref := tc.open(t)
			var want bytes.Buffer
			wlr := &io.LimitedReader{R: struct{ io.Reader }{ref}, N: tc.n}
			rc := goCall(func() (int64, error) { return io.Copy(struct{ io.Writer }{&want}, wlr) })
			if !returnsWithin(t, rc, 2*time.Second, func() { ref.Close() }) {
				t.Skip("the reference io.Copy itself waits")
			}
			src := tc.open(t)
			r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			got := collect(t, r)
			lr := &io.LimitedReader{R: src, N: tc.n}
			c := goCall(func() (int64, error) { return pipe.Copy(w, lr) })
			if !returnsWithin(t, c, 2*time.Second, func() { src.Close() }) {
				t.Fatalf("Copy hung where the file's Read returned (%d, %v)", rc.n, rc.err)
			}
			w.Close()
			if c.n != rc.n || !r4SameErr(c.err, rc.err) {
				t.Errorf("Copy = %d, %v; io.Copy with Read = %d, %v", c.n, c.err, rc.n, rc.err)
			}
			if lr.N != wlr.N {
				t.Errorf("lr.N = %d; io.Copy left %d", lr.N, wlr.N)
			}
			if g := got(); !bytes.Equal(g, want.Bytes()) {
				t.Errorf("the pipe got %q; Read delivered %q", tail(g), tail(want.Bytes()))
			}
		})
	}
}

// TestReview4MarkReaderWriteError: the destination fails (no reader: EPIPE)
// after a read: the error is the write's and lr.N counts what was read, as
// io.Copy's LimitedReader does.
func TestReview4MarkReaderWriteError(t *testing.T) {
	for _, holding := range []string{"pipe", "conn", "file"} {
		t.Run(holding, func(t *testing.T) {
			var src io.Reader
			switch holding {
			case "pipe":
				r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
				mustWrite(t, w, bytes.Repeat([]byte("z"), 3000))
				src = r
			default:
				s, peer := r4Sock(t, holding, false)
				mustWrite(t, peer, bytes.Repeat([]byte("z"), 3000))
				time.Sleep(20 * time.Millisecond)
				src = s
			}
			dr, dw := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			dr.Close()
			lr := &io.LimitedReader{R: src, N: 10000}
			n, err := pipe.Copy(dw, lr)
			if n != 0 || !errors.Is(err, syscall.EPIPE) {
				t.Errorf("Copy = %d, %v; want 0, EPIPE", n, err)
			}
			if lr.N != 10000-3000 {
				t.Errorf("lr.N = %d; want %d (3000 read, as LimitedReader counts)", lr.N, 10000-3000)
			}
		})
	}
}

// TestReview4MarkReaderParksAndEnds: small limited copies of files in the
// poller that have nothing to read park (no CPU), and Close and the read
// deadline end them with os.ErrClosed and os.ErrDeadlineExceeded.
func TestReview4MarkReaderParksAndEnds(t *testing.T) {
	opens := map[string]func(t *testing.T) *os.File{
		"pipe": func(t *testing.T) *os.File { r, _ := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK); return r },
		"fifo": func(t *testing.T) *os.File {
			name := filepath.Join(t.TempDir(), "fifo")
			if err := unix.Mkfifo(name, 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(name, os.O_RDWR, 0) // a writer of its own: no EOF
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			return f
		},
		"pty": func(t *testing.T) *os.File { m, _ := openPty(t); return m },
		"tcp": func(t *testing.T) *os.File { s, _ := r4Sock(t, "file", false); return s.(*os.File) },
	}
	for name, open := range opens {
		for _, end := range []string{"close", "deadline"} {
			t.Run(name+"/"+end, func(t *testing.T) {
				f := open(t)
				_, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
				c := goCall(func() (int64, error) { return pipe.Copy(w, &io.LimitedReader{R: f, N: 1000}) })
				r4Wait(t, "pipe.Copy(")
				checkIdle(t, "small limited Copy waiting", 200*time.Millisecond)
				want := os.ErrClosed
				if end == "close" {
					f.Close()
				} else {
					want = os.ErrDeadlineExceeded
					if err := f.SetReadDeadline(time.Now()); err != nil {
						t.Fatal(err)
					}
				}
				if !returnsWithin(t, c, time.Second, func() { f.Close() }) {
					t.Fatalf("Copy did not end at %s", end)
				}
				if !errors.Is(c.err, want) {
					t.Errorf("Copy = %d, %v; want %v", c.n, c.err, want)
				}
			})
		}
	}
}

// ---- POLLERR / POLLIN with nothing to read: poll(2) says ready for ever ----

// TestReview4ErrorQueueDoesNotStall: a TCP socket whose error queue holds a
// MSG_ZEROCOPY completion polls POLLERR while read(2) answers EAGAIN. ready
// counts POLLERR as readable, so Copy's loops (markReader, dontWait.Read,
// and splice's stall path) never park: they retry every few milliseconds
// for as long as the peer is silent, where the socket's own Read parks.
func TestReview4ErrorQueueDoesNotStall(t *testing.T) {
	for _, way := range r4Ways {
		t.Run(way.name, func(t *testing.T) {
			src, peer := r4Sock(t, way.holding, false)
			if !r5ErrorQueue(t, src, peer) {
				return
			}
			_, w := newPipe(t, way.dst)
			if way.appendW {
				setFlags(t, w, unix.O_APPEND)
			}
			var from io.Reader = src
			if way.limited {
				from = &io.LimitedReader{R: src, N: 16 << 10}
			}
			c := goCall(func() (int64, error) { return pipe.Copy(w, from) })
			time.Sleep(100 * time.Millisecond)
			cpu0, t0 := cpuTime(t), time.Now()
			time.Sleep(300 * time.Millisecond)
			t.Logf("waiting: the process used %v of CPU in %v", cpuTime(t)-cpu0, time.Since(t0))
			parked, others := r4States("pipe.Copy(", 40, 5*time.Millisecond)
			if parked < 36 {
				t.Errorf("Copy waiting on a socket with only an error-queue entry parked in %d of 40 samples; otherwise %q", parked, others[:min(len(others), 3)])
			}
			_ = control(src, func(fd int) error { return unix.Shutdown(fd, unix.SHUT_RD) })
			if !returnsWithin(t, c, 2*time.Second, func() { src.(io.Closer).Close() }) {
				t.Fatal("Copy did not end at SHUT_RD")
			}
		})
	}
}

// TestReview4UDPShutReadDoesNotStall: a UDP socket (an *os.File) shut for
// reading polls POLLIN while read(2) answers EAGAIN: the socket's Read
// parks; a small limited Copy's markReader retries every few ms for ever.
func TestReview4UDPShutReadDoesNotStall(t *testing.T) {
	a, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := net.DialUDP("udp", nil, a.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	f := socketFile(t, b)
	if err := control(f, func(fd int) error { return unix.Shutdown(fd, unix.SHUT_RD) }); err != nil {
		t.Skip(err)
	}
	_, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	c := goCall(func() (int64, error) { return pipe.Copy(w, &io.LimitedReader{R: f, N: 100}) })
	time.Sleep(50 * time.Millisecond)
	parked, others := r4States("pipe.Copy(", 40, 5*time.Millisecond)
	if parked < 36 {
		t.Errorf("Copy parked in %d of 40 samples; otherwise %q", parked, others[:min(len(others), 3)])
	}
	if err := f.SetReadDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	if !returnsWithin(t, c, time.Second, func() { f.Close() }) {
		t.Fatal("Copy did not end at the deadline")
	}
	if !errors.Is(c.err, os.ErrDeadlineExceeded) {
		t.Errorf("Copy = %d, %v; want os.ErrDeadlineExceeded", c.n, c.err)
	}
}

// r4Conn is a user's wrapper of a TCP connection, as a counting or
// logging conn is: still a syscall.Conn, but neither an *os.File nor a
// *net.TCPConn.
type r4Conn struct{ *net.TCPConn }

// TestReview4UrgentWrappedConnLimitedWithSignals: a small limited copy of a
// TCP connection held in a type of the user's: Copy recognises only
// *os.File and *net.TCPConn for markReader and otherwise uses the
// wrapper's Read, which parks for ever at the urgent mark when read(2)
// answers EAGAIN with a signal pending. (Unlimited, Copy learns from the
// kernel that it is TCP and reads it itself.)
func TestReview4UrgentWrappedConnLimitedWithSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("floods the process with signals")
	}
	signalFlood(t)
	for _, limit := range []int64{0, 16 << 10} {
		t.Run(itoa(int(limit)), func(t *testing.T) {
			for i := 0; i < 60; i++ {
				peer, sock := tcpPair(t)
				mustWrite(t, peer, bytes.Repeat([]byte("a"), 5000))
				sendOOB(t, peer, "X")
				if err := peer.CloseWrite(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(20 * time.Millisecond)
				if err := sock.SetReadDeadline(time.Now().Add(hangLimit)); err != nil {
					t.Fatal(err)
				}
				var src io.Reader = r4Conn{sock}
				if limit > 0 {
					src = &io.LimitedReader{R: src, N: limit}
				}
				r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
				got := collect(t, r)
				c := goCall(func() (int64, error) { return pipe.Copy(w, src) })
				if !returnsWithin(t, c, 5*time.Second, func() { sock.Close() }) {
					t.Fatalf("try %d: Copy(pipe, wrapped TCP conn at urgent data) hung with everything queued (%d, %v once unblocked)", i, c.n, c.err)
				}
				w.Close()
				if c.n != 5000 || c.err != nil {
					t.Fatalf("try %d: Copy = %d, %v; want 5000, nil", i, c.n, c.err)
				}
				if g := got(); len(g) != 5000 {
					t.Fatalf("try %d: the pipe got %d bytes", i, len(g))
				}
			}
		})
	}
}

// TestReview4UrgentBlockingSocketWithSignals: a TCP socket whose
// descriptor is blocking (an *os.File outside the poller) at urgent data,
// everything queued, signals arriving: every way delivers what read(2)
// delivers and returns.
func TestReview4UrgentBlockingSocketWithSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("floods the process with signals")
	}
	signalFlood(t)
	want := bytes.Repeat([]byte("a"), 5000)
	for _, way := range []string{"whole", "limited", "append", "limited-big"} {
		t.Run(way, func(t *testing.T) {
			for i := 0; i < 10; i++ {
				src, peer := r4Sock(t, "blocking", false)
				mustWrite(t, peer, want)
				sendOOB(t, peer, "X")
				if err := peer.CloseWrite(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(20 * time.Millisecond)
				r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
				got := collect(t, r)
				var from io.Reader = src
				switch way {
				case "limited":
					from = &io.LimitedReader{R: src, N: 16 << 10}
				case "limited-big":
					from = &io.LimitedReader{R: src, N: 100 << 10}
				case "append":
					setFlags(t, w, unix.O_APPEND)
				}
				c := goCall(func() (int64, error) { return pipe.Copy(w, from) })
				if !returnsWithin(t, c, 5*time.Second, func() {
					_ = control(src, func(fd int) error { return unix.Shutdown(fd, unix.SHUT_RDWR) })
				}) {
					t.Fatalf("try %d: Copy hung (%d, %v once unblocked)", i, c.n, c.err)
				}
				w.Close()
				if c.n != int64(len(want)) || c.err != nil {
					t.Fatalf("try %d: Copy = %d, %v; want %d, nil", i, c.n, c.err, len(want))
				}
				if g := got(); !bytes.Equal(g, want) {
					t.Fatalf("try %d: the pipe got %d bytes", i, len(g))
				}
				src.(io.Closer).Close()
				peer.Close()
			}
		})
	}
}

// TestReview4UrgentCopiesLeakNoFDs: Copy through each way at urgent data
// (limited, whole, append, blocking socket), a hundred times, leaves no
// descriptor open (pollAlone's duplicates, buffer pipes).
func TestReview4UrgentCopiesLeakNoFDs(t *testing.T) {
	once := func(holding string, limited, appendW bool) {
		src, peer := r4Sock(t, holding, false)
		mustWrite(t, peer, bytes.Repeat([]byte("a"), 3000))
		sendOOB(t, peer, "X")
		mustWrite(t, peer, bytes.Repeat([]byte("b"), 3000))
		peer.CloseWrite()
		r, w, err := pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_NONBLOCK)
		if err != nil {
			t.Fatal(err)
		}
		if appendW {
			setFlags(t, w, unix.O_APPEND)
		}
		var from io.Reader = src
		if limited {
			from = &io.LimitedReader{R: src, N: 16 << 10}
		}
		if n, err := pipe.Copy(w, from); n != 6000 || err != nil {
			t.Errorf("Copy = %d, %v; want 6000, nil", n, err)
		}
		r.Close()
		w.Close()
		src.(io.Closer).Close()
		peer.Close()
	}
	all := func() {
		for _, holding := range []string{"conn", "file", "blocking"} {
			once(holding, false, false)
			once(holding, true, false)
			once(holding, false, true)
		}
	}
	settle := func() int {
		// Buffer pipes the pool dropped (the race detector drops items
		// at random) close in cleanups after a collection.
		for i := 0; i < 3; i++ {
			runtime.GC()
			time.Sleep(10 * time.Millisecond)
		}
		return len(openFDs())
	}
	all() // warm up: the poller, the buffer pipe pool
	before := settle()
	for i := 0; i < 30; i++ {
		all()
	}
	if after := settle(); after > before+2 {
		links := []string{}
		for _, fd := range openFDs() {
			l, _ := os.Readlink("/proc/self/fd/" + itoa(fd))
			links = append(links, l)
		}
		t.Errorf("open descriptors grew from %d to %d over 270 Copy calls: %v", before, after, links)
	}
}
