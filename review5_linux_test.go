package pipe_test

// Fifth review: attacks on d818bf5 (readyFor/wants, pollAlone's 100 ms
// close check and private epoll, afterEAGAIN, then stuckAtMark). Every test is bounded: a
// call that hangs is unblocked and reported.

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pipe2go/pipe"
)

// r5BlockingPipe returns a pipe whose descriptors are blocking, outside the
// runtime poller (os.NewFile of blocking descriptors), closed when the test
// ends.
func r5BlockingPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	r, w = os.NewFile(uintptr(p[0]), "blocking-r"), os.NewFile(uintptr(p[1]), "blocking-w")
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// r5BlockingUDP returns a connected UDP socket held as an *os.File of a
// blocking descriptor (outside the poller), and its peer.
func r5BlockingUDP(t *testing.T) (*os.File, *net.UDPConn) {
	t.Helper()
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	pa := peer.LocalAddr().(*net.UDPAddr)
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: pa.Port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "blocking-udp")
	t.Cleanup(func() { f.Close() })
	return f, peer
}

// r5Signals sends SIGURG (which the runtime takes as a harmless preemption
// request) to every thread of the process every interval, as a process
// that gets a steady stream of signals (SIGCHLD from children, a timer)
// would.
func r5Signals(t *testing.T, every time.Duration) (stopNow func()) {
	stop, done := make(chan struct{}), make(chan struct{})
	var once sync.Once
	stopNow = func() { once.Do(func() { close(stop); <-done }) }
	go func() {
		defer close(done)
		pid := os.Getpid()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			ents, _ := os.ReadDir("/proc/self/task")
			for _, e := range ents {
				if tid, err := strconv.Atoi(e.Name()); err == nil {
					_ = unix.Tgkill(pid, tid, unix.SIGURG)
				}
			}
		}
	}()
	t.Cleanup(stopNow)
	return stopNow
}

// ---- A blocking UDP socket shut for reading: poll says POLLIN, recv EAGAIN ----

// TestReview5BlockingUDPShutReadDoesNotSpin: a connected UDP socket with a
// blocking descriptor, shut for reading, polls POLLIN for ever while
// recvfrom(MSG_DONTWAIT) answers EAGAIN (read(2) without MSG_DONTWAIT
// returns 0). Copy reads it with dontWait (relay: a blocking socket), whose
// await falls back to pollAlone: poll(2) answers POLLIN at once, the try
// says EAGAIN, and since the answer holds the wanted events no stallGuard
// paces the next round: dup, poll, close, recvfrom, over and over.
func TestReview5BlockingUDPShutReadDoesNotSpin(t *testing.T) {
	f, _ := r5BlockingUDP(t)
	if err := control(f, func(fd int) error { return unix.Shutdown(fd, unix.SHUT_RD) }); err != nil {
		t.Skip(err)
	}
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	_ = r
	c := goCall(func() (int64, error) { return pipe.Copy(w, f) })
	time.Sleep(100 * time.Millisecond)
	if c.returned() {
		t.Logf("Copy returned %d, %v", c.n, c.err)
		return
	}
	checkIdle(t, "Copy from a blocking UDP socket shut for reading", 300*time.Millisecond)
	if !returnsWithin(t, c, 2*time.Second, func() { f.Close() }) {
		t.Error("Copy did not end at Close of its blocking source")
	}
}

// TestReview5BlockingUDPShutReadEndsAsRead: what its Read (and io.Copy)
// does with that socket: read(2) returns 0, the end. Copy instead waits
// (or spins) until the socket is closed.
func TestReview5BlockingUDPShutReadEndsAsRead(t *testing.T) {
	ref, _ := r5BlockingUDP(t)
	if err := control(ref, func(fd int) error { return unix.Shutdown(fd, unix.SHUT_RD) }); err != nil {
		t.Skip(err)
	}
	rc := goCall(func() (int64, error) { n, err := ref.Read(make([]byte, 100)); return int64(n), err })
	if !returnsWithin(t, rc, 2*time.Second, func() { ref.Close() }) {
		t.Skip("the reference Read waits too")
	}
	t.Logf("its own Read: %d, %v", rc.n, rc.err)

	f, _ := r5BlockingUDP(t)
	if err := control(f, func(fd int) error { return unix.Shutdown(fd, unix.SHUT_RD) }); err != nil {
		t.Skip(err)
	}
	_, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	c := goCall(func() (int64, error) { return pipe.Copy(w, f) })
	if !returnsWithin(t, c, 2*time.Second, func() { f.Close() }) {
		t.Fatalf("Copy from a blocking UDP socket shut for reading did not end, where its Read returns %d, %v (io.Copy: 0, nil); after Close: %d, %v", rc.n, rc.err, c.n, c.err)
	}
	if c.n != 0 || c.err != nil {
		t.Errorf("Copy = %d, %v; want 0, nil as io.Copy", c.n, c.err)
	}
}

// ---- The 100 ms close check against a steady stream of signals ----

// TestReview5CloseEndsBlockingWaitWithSignals: a Copy or Splice waiting in
// pollAlone on a blocking pipe must notice its Close within about
// closedCheck. poll(2) and epoll_wait(2) are never restarted after a signal
// handler: ignoringEINTR calls them again with the whole 100 ms timeout, so
// a signal every 20 ms on that thread keeps the check from ever running.
func TestReview5CloseEndsBlockingWaitWithSignals(t *testing.T) {
	ops := []struct {
		name string
		call func(t *testing.T, r *os.File) func() (int64, error)
	}{
		{"Copy-into-pipe", func(t *testing.T, r *os.File) func() (int64, error) {
			_, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			return func() (int64, error) { return pipe.Copy(w, r) }
		}},
		{"Splice-into-devnull", func(t *testing.T, r *os.File) func() (int64, error) {
			null := devNull(t)
			return func() (int64, error) { return pipe.Splice(null, r, 100, 0) }
		}},
		{"Tee", func(t *testing.T, r *os.File) func() (int64, error) {
			_, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			return func() (int64, error) { return pipe.Tee(w, r, 100, 0) }
		}},
	}
	for _, sig := range []time.Duration{0, 20 * time.Millisecond} {
		for _, o := range ops {
			name := o.name + "/no-signals"
			if sig > 0 {
				name = o.name + "/signal-every-" + sig.String()
			}
			t.Run(name, func(t *testing.T) {
				r, _ := r5BlockingPipe(t) // the writer stays open: empty, not at its end
				c := goCall(o.call(t, r))
				time.Sleep(150 * time.Millisecond)
				if c.returned() {
					t.Fatalf("returned %d, %v without waiting", c.n, c.err)
				}
				stopSignals := func() {}
				if sig > 0 {
					stopSignals = r5Signals(t, sig)
					time.Sleep(150 * time.Millisecond)
				}
				start := time.Now()
				r.Close()
				if !returnsWithin(t, c, 2*time.Second, stopSignals) {
					t.Errorf("still waiting 2s after Close of the blocking source (signals every %v); ended %v after Close once the signals stopped: %d, %v", sig, time.Since(start), c.n, c.err)
					return
				}
				t.Logf("ended %v after Close: %d, %v", time.Since(start), c.n, c.err)
				if !errors.Is(c.err, os.ErrClosed) {
					t.Errorf("= %d, %v; want os.ErrClosed", c.n, c.err)
				}
			})
		}
	}
}

// TestReview5CloseEndsErrorQueueWaitWithSignals: the same on the private
// epoll path: a blocking TCP source with only an error-queue entry.
func TestReview5CloseEndsErrorQueueWaitWithSignals(t *testing.T) {
	src, peer := r4Sock(t, "blocking", false)
	if !r5ErrorQueue(t, src, peer) {
		return
	}
	_, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	c := goCall(func() (int64, error) { return pipe.Copy(w, src) })
	time.Sleep(150 * time.Millisecond)
	if c.returned() {
		t.Fatalf("Copy returned %d, %v without waiting", c.n, c.err)
	}
	stopSignals := r5Signals(t, 20*time.Millisecond)
	time.Sleep(150 * time.Millisecond)
	start := time.Now()
	src.(io.Closer).Close()
	if !returnsWithin(t, c, 2*time.Second, stopSignals) {
		t.Errorf("Copy still waits 2s after Close of its blocking source (signals every 20ms); ended %v after Close once the signals stopped: %d, %v", time.Since(start), c.n, c.err)
		return
	}
	if !errors.Is(c.err, os.ErrClosed) {
		t.Errorf("Copy = %d, %v; want os.ErrClosed", c.n, c.err)
	}
}

// ---- The error-queue wait (private epoll): wakes on data, ends, idle ----

// r5ErrorQueue puts a MSG_ZEROCOPY completion in src's error queue and
// reports whether src then polls POLLERR (else the test is skipped).
func r5ErrorQueue(t *testing.T, src io.Reader, peer *net.TCPConn) bool {
	t.Helper()
	if err := control(src, func(fd int) error {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ZEROCOPY, 1); err != nil {
			return err
		}
		return unix.Sendto(fd, make([]byte, 10000), unix.MSG_ZEROCOPY|unix.MSG_DONTWAIT, nil)
	}); err != nil {
		t.Skipf("MSG_ZEROCOPY: %v", err)
		return false
	}
	go func() { _, _ = io.Copy(io.Discard, peer) }()
	time.Sleep(50 * time.Millisecond)
	var revents int16
	_ = control(src, func(fd int) error {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		_, err := unix.Poll(fds, 0)
		revents = fds[0].Revents
		return err
	})
	if revents&unix.POLLERR == 0 || revents&(unix.POLLIN|unix.POLLHUP) != 0 {
		t.Skipf("not an error-only socket (revents %#x)", revents)
		return false
	}
	return true
}

// TestReview5ErrorQueueWakesOnData: Copy from a TCP source whose only poll
// answer is POLLERR (an error-queue entry) parks, idle, and delivers data
// that arrives later at once, and ends at the peer's close, on every
// holding (the poller, and pollAlone's private epoll for a blocking one).
// Also through a full destination that drains later.
func TestReview5ErrorQueueWakesOnData(t *testing.T) {
	for _, holding := range []string{"conn", "file", "blocking"} {
		for _, limited := range []bool{false, true} {
			name := holding
			if limited {
				name += "-limited"
			}
			t.Run(name, func(t *testing.T) {
				src, peer := r4Sock(t, holding, false)
				if !r5ErrorQueue(t, src, peer) {
					return
				}
				r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
				var from io.Reader = src
				if limited {
					from = &io.LimitedReader{R: src, N: 1000}
				}
				c := goCall(func() (int64, error) { return pipe.Copy(w, from) })
				time.Sleep(100 * time.Millisecond)
				if c.returned() {
					t.Fatalf("Copy returned %d, %v with nothing to read", c.n, c.err)
				}
				checkIdle(t, "Copy waiting on an error-only source", 300*time.Millisecond)
				// Data arrives: delivered within a second.
				mustWrite(t, peer, []byte("hello"))
				buf := make([]byte, 16)
				if err := r.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
					t.Fatal(err)
				}
				n, err := r.Read(buf)
				if err != nil || string(buf[:n]) != "hello" {
					t.Fatalf("the destination read %q, %v; want hello (Copy: returned %v)", buf[:n], err, c.returned())
				}
				// A second batch after another completion is queued.
				_ = control(src, func(fd int) error {
					return unix.Sendto(fd, make([]byte, 10000), unix.MSG_ZEROCOPY|unix.MSG_DONTWAIT, nil)
				})
				time.Sleep(50 * time.Millisecond)
				mustWrite(t, peer, []byte("again"))
				n, err = r.Read(buf)
				if err != nil || string(buf[:n]) != "again" {
					t.Fatalf("the destination read %q, %v; want again", buf[:n], err)
				}
				if err := peer.CloseWrite(); err != nil {
					t.Fatal(err)
				}
				if !returnsWithin(t, c, 2*time.Second, func() { src.(io.Closer).Close() }) {
					t.Fatal("Copy did not end at the peer's end of stream")
				}
				if c.n != 10 || c.err != nil {
					t.Errorf("Copy = %d, %v; want 10, nil", c.n, c.err)
				}
			})
		}
	}
}

// ---- Ended sides: every call returns at once with the right answer ----

type r5Case struct {
	name string
	// setup returns the call and what it must return: want bytes and an
	// error to match (nil: none).
	setup func(t *testing.T) (f func() (int64, error), n int64, want error)
}

func r5TCP(t *testing.T, holding string) (io.Reader, *net.TCPConn) {
	return r4Sock(t, holding, false)
}

func r5EndedCases() []r5Case {
	var cases []r5Case
	type srcState struct {
		name   string
		make   func(t *testing.T) io.Reader
		n      int64
		want   error
		nonTCP bool
	}
	var states []srcState
	for _, blocking := range []bool{false, true} {
		blocking := blocking
		sfx := "nonblocking"
		if blocking {
			sfx = "blocking"
		}
		states = append(states,
			srcState{name: "pipe-writer-gone-" + sfx, nonTCP: true, make: func(t *testing.T) io.Reader {
				var r, w *os.File
				if blocking {
					r, w = r5BlockingPipe(t)
				} else {
					r, w = newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
				}
				w.Close()
				return r
			}},
			srcState{name: "fifo-writer-gone-" + sfx, nonTCP: true, make: func(t *testing.T) io.Reader {
				path := filepath.Join(t.TempDir(), "fifo")
				if err := unix.Mkfifo(path, 0o600); err != nil {
					t.Fatal(err)
				}
				fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
				if err != nil {
					t.Fatal(err)
				}
				wfd, err := unix.Open(path, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
				if err != nil {
					t.Fatal(err)
				}
				unix.Close(wfd)
				if blocking {
					_ = unix.SetNonblock(fd, false)
				}
				f := os.NewFile(uintptr(fd), "fifo")
				t.Cleanup(func() { f.Close() })
				return f
			}},
		)
	}
	for _, holding := range []string{"conn", "file", "blocking"} {
		holding := holding
		states = append(states,
			srcState{name: "tcp-reset-" + holding, want: syscall.ECONNRESET, make: func(t *testing.T) io.Reader {
				src, peer := r5TCP(t, holding)
				_ = peer.SetLinger(0)
				peer.Close()
				time.Sleep(50 * time.Millisecond)
				return src
			}},
			srcState{name: "tcp-shut-rd-own-" + holding, make: func(t *testing.T) io.Reader {
				src, _ := r5TCP(t, holding)
				if err := control(src, func(fd int) error { return unix.Shutdown(fd, unix.SHUT_RD) }); err != nil {
					t.Fatal(err)
				}
				return src
			}},
			srcState{name: "tcp-peer-fin-" + holding, n: 3, make: func(t *testing.T) io.Reader {
				src, peer := r5TCP(t, holding)
				mustWrite(t, peer, []byte("abc"))
				peer.CloseWrite()
				time.Sleep(20 * time.Millisecond)
				return src
			}},
			srcState{name: "tcp-peer-fin-errqueue-" + holding, n: 3, make: func(t *testing.T) io.Reader {
				src, peer := r5TCP(t, holding)
				_ = control(src, func(fd int) error {
					if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ZEROCOPY, 1); err != nil {
						return err
					}
					return unix.Sendto(fd, make([]byte, 10000), unix.MSG_ZEROCOPY|unix.MSG_DONTWAIT, nil)
				})
				go func() { _, _ = io.Copy(io.Discard, peer) }()
				mustWrite(t, peer, []byte("abc"))
				peer.CloseWrite()
				time.Sleep(20 * time.Millisecond)
				return src
			}},
		)
	}
	for _, s := range states {
		s := s
		cases = append(cases,
			r5Case{"Copy/" + s.name, func(t *testing.T) (func() (int64, error), int64, error) {
				src := s.make(t)
				_, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
				return func() (int64, error) { return pipe.Copy(w, src) }, s.n, s.want
			}},
			r5Case{"Copy-limited/" + s.name, func(t *testing.T) (func() (int64, error), int64, error) {
				src := s.make(t)
				_, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
				return func() (int64, error) { return pipe.Copy(w, &io.LimitedReader{R: src, N: 1000}) }, s.n, s.want
			}},
			r5Case{"Copy-blocking-pipe/" + s.name, func(t *testing.T) (func() (int64, error), int64, error) {
				src := s.make(t)
				_, w := r5BlockingPipe(t)
				return func() (int64, error) { return pipe.Copy(w, src) }, s.n, s.want
			}},
			r5Case{"Splice/" + s.name, func(t *testing.T) (func() (int64, error), int64, error) {
				src := s.make(t)
				_, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
				return func() (int64, error) { return pipe.Splice(w, src.(syscall.Conn), 1000, 0) }, s.n, s.want
			}},
			r5Case{"Splice-full-dst/" + s.name, func(t *testing.T) (func() (int64, error), int64, error) {
				// The destination is full at first, and drained later:
				// the call then must see the source's state.
				src := s.make(t)
				r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
				fill(t, w)
				return func() (int64, error) {
					go func() { time.Sleep(100 * time.Millisecond); _, _ = r.Read(make([]byte, 1<<20)) }()
					return pipe.Splice(w, src.(syscall.Conn), 1000, 0)
				}, s.n, s.want
			}},
			r5Case{"Splice-into-devnull/" + s.name, func(t *testing.T) (func() (int64, error), int64, error) {
				src := s.make(t)
				null := devNull(t)
				return func() (int64, error) { return pipe.Splice(null, src.(syscall.Conn), 1000, 0) }, s.n, s.want
			}},
		)
		if s.nonTCP {
			cases = append(cases, r5Case{"Tee/" + s.name, func(t *testing.T) (func() (int64, error), int64, error) {
				src := s.make(t)
				_, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
				return func() (int64, error) { return pipe.Tee(w, src.(*os.File), 1000, 0) }, 0, nil
			}})
		}
	}
	// Destinations that are ended.
	type dstState struct {
		name string
		make func(t *testing.T) io.Writer
		want error
		tee  bool
	}
	var dsts []dstState
	for _, blocking := range []bool{false, true} {
		blocking := blocking
		sfx := "nonblocking"
		if blocking {
			sfx = "blocking"
		}
		dsts = append(dsts, dstState{name: "pipe-reader-gone-" + sfx, want: syscall.EPIPE, tee: true, make: func(t *testing.T) io.Writer {
			var r, w *os.File
			if blocking {
				r, w = r5BlockingPipe(t)
			} else {
				r, w = newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			}
			r.Close()
			return w
		}})
	}
	for _, holding := range []string{"conn", "file", "blocking"} {
		holding := holding
		dsts = append(dsts,
			dstState{name: "tcp-shut-wr-own-" + holding, want: syscall.EPIPE, make: func(t *testing.T) io.Writer {
				s, _ := r5TCP(t, holding)
				if err := control(s, func(fd int) error { return unix.Shutdown(fd, unix.SHUT_WR) }); err != nil {
					t.Fatal(err)
				}
				return s.(io.Writer)
			}},
			dstState{name: "tcp-peer-reset-" + holding, want: nil, make: func(t *testing.T) io.Writer {
				s, peer := r5TCP(t, holding)
				_ = peer.SetLinger(0)
				peer.Close()
				time.Sleep(50 * time.Millisecond)
				return s.(io.Writer)
			}},
		)
	}
	for _, d := range dsts {
		d := d
		srcPipe := func(t *testing.T) *os.File {
			r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			mustWrite(t, w, []byte("data"))
			return r
		}
		cases = append(cases,
			r5Case{"Copy-into/" + d.name, func(t *testing.T) (func() (int64, error), int64, error) {
				dst, src := d.make(t), srcPipe(t)
				return func() (int64, error) { return pipe.Copy(dst, src) }, -1, d.want
			}},
			r5Case{"Splice-into/" + d.name, func(t *testing.T) (func() (int64, error), int64, error) {
				dst, src := d.make(t), srcPipe(t)
				return func() (int64, error) { return pipe.Splice(dst.(syscall.Conn), src, 100, 0) }, -1, d.want
			}},
		)
		if d.tee {
			cases = append(cases, r5Case{"Tee-into/" + d.name, func(t *testing.T) (func() (int64, error), int64, error) {
				dst, src := d.make(t), srcPipe(t)
				return func() (int64, error) { return pipe.Tee(dst.(*os.File), src, 100, 0) }, -1, d.want
			}})
		}
	}
	return cases
}

// TestReview5EndedSidesReturn: a source at its end or in error (a pipe or
// FIFO whose writers are gone, a TCP socket reset, shut for reading, at
// the peer's end, with an error-queue entry too), and a destination whose
// reader is gone or that is shut or reset, in and out of the poller: Copy,
// Splice and Tee return at once, with the bytes and error read(2), write(2)
// and splice(2) give, never waiting for readiness the stricter readyFor no
// longer sees.
func TestReview5EndedSidesReturn(t *testing.T) {
	for _, tc := range r5EndedCases() {
		t.Run(tc.name, func(t *testing.T) {
			f, n, want := tc.setup(t)
			c := goCall(f)
			if !returnsWithin(t, c, 3*time.Second, func() {
				t.Errorf("still waiting after 3s; closing everything")
			}) {
				return
			}
			if errors.Is(c.err, syscall.EINVAL) && c.n == 0 {
				t.Logf("refused: %v", c.err)
				return
			}
			switch {
			case want == nil && n >= 0 && c.err != nil:
				t.Errorf("= %d, %v; want %d, nil", c.n, c.err, n)
			case want != nil && !errors.Is(c.err, want):
				t.Errorf("= %d, %v; want an error matching %v", c.n, c.err, want)
			case n >= 0 && c.n != n:
				t.Errorf("= %d, %v; want %d bytes", c.n, c.err, n)
			}
			t.Logf("= %d, %v", c.n, c.err)
		})
	}
}

// ---- No descriptor leaks from the waits ----

// TestReview5BlockingWaitsLeakNoFDs: waits in pollAlone (a blocking pipe;
// a blocking TCP socket with an error-queue entry, through the private
// epoll) ended by Close, many times: no duplicate or epoll instance stays.
func TestReview5BlockingWaitsLeakNoFDs(t *testing.T) {
	checkNoLeak(t, "waits on blocking descriptors", func() {
		for i := 0; i < 10; i++ {
			func() {
				var p [2]int
				if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
					t.Fatal(err)
				}
				r, w := os.NewFile(uintptr(p[0]), "r"), os.NewFile(uintptr(p[1]), "w")
				defer w.Close()
				null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer null.Close()
				c := goCall(func() (int64, error) { return pipe.Splice(null, r, 100, 0) })
				time.Sleep(20 * time.Millisecond)
				r.Close()
				if !c.wait(2 * time.Second) {
					w.Close()
					t.Fatal("Splice did not end at Close")
				}
			}()
		}
		for i := 0; i < 5; i++ {
			func() {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				peerc, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				peer := peerc.(*net.TCPConn)
				defer peer.Close()
				acc, err := ln.Accept()
				if err != nil {
					t.Fatal(err)
				}
				var dup int
				_ = control(acc, func(fd int) error {
					dup, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
					return err
				})
				acc.Close()
				_ = unix.SetNonblock(dup, false)
				src := os.NewFile(uintptr(dup), "blocking-tcp")
				defer src.Close()
				_ = control(src, func(fd int) error {
					_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ZEROCOPY, 1)
					return unix.Sendto(fd, make([]byte, 10000), unix.MSG_ZEROCOPY|unix.MSG_DONTWAIT, nil)
				})
				go func() { _, _ = io.Copy(io.Discard, peer) }()
				var p [2]int
				if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
					t.Fatal(err)
				}
				pr, pw := os.NewFile(uintptr(p[0]), "r"), os.NewFile(uintptr(p[1]), "w")
				defer pr.Close()
				defer pw.Close()
				c := goCall(func() (int64, error) { return pipe.Copy(pw, src) })
				time.Sleep(150 * time.Millisecond)
				src.Close()
				if !c.wait(2 * time.Second) {
					peer.Close()
					c.wait(hangLimit)
					t.Fatal("Copy did not end at Close")
				}
			}()
		}
		time.Sleep(50 * time.Millisecond)
	})
}
