package pipe_test

// Attacks on issue #15's change (kinds, waits, Copy's routes). The tests
// named in the review report as problems fail; the others are regression
// tests of attacks that the change withstands. Every test is bounded: a
// call that hangs is unblocked (its peer made ready) and reported.

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pipe2go/pipe"
)

// returnsWithin waits up to limit for c. If c is still running, it calls
// unblock, which must make c return, waits up to hangLimit more, and
// reports false.
func returnsWithin(t *testing.T, c *call, limit time.Duration, unblock func()) bool {
	t.Helper()
	if c.wait(limit) {
		return true
	}
	unblock()
	if !c.wait(hangLimit) {
		t.Fatalf("the call still runs %v after it was unblocked", hangLimit)
	}
	return false
}

// setFlags ORs flags into f's file status flags (F_SETFL) after f was made,
// as another process sharing the open file description may.
func setFlags(t testing.TB, f any, flags int) {
	t.Helper()
	if err := control(f, func(fd int) error {
		fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err != nil {
			return err
		}
		_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl|flags)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// sendOOB sends b on c as TCP urgent data.
func sendOOB(t testing.TB, c *net.TCPConn, b string) {
	t.Helper()
	if err := send(c, []byte(b), unix.MSG_OOB); err != nil {
		t.Fatal(err)
	}
}

// readPlain is the reference: what read(2) delivers from r's descriptor,
// call after call, until it returns 0 (nil, as io.Copy says) or fails, or
// hangLimit passes. Not r's Read method: at TCP urgent data, read(2)
// answers EAGAIN while a signal is pending (the runtime preempts with
// SIGURG), and the Read of net or os then waits for an edge that never
// comes. Here an EAGAIN waits in poll(2) for up to 10ms and tries again.
func readPlain(r io.Reader) ([]byte, int64, error) {
	var buf bytes.Buffer
	b := make([]byte, 32<<10)
	for end := time.Now().Add(hangLimit); ; {
		var n int
		var errno error
		if err := control(r, func(fd int) error {
			n, errno = unix.Read(fd, b)
			if errno == unix.EAGAIN || errno == unix.EINTR {
				_, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 10)
			}
			return nil
		}); err != nil {
			return buf.Bytes(), int64(buf.Len()), err
		}
		switch {
		case errno == unix.EAGAIN || errno == unix.EINTR:
			if time.Now().After(end) {
				return buf.Bytes(), int64(buf.Len()), os.ErrDeadlineExceeded
			}
		case errno != nil:
			return buf.Bytes(), int64(buf.Len()), errno
		case n == 0:
			return buf.Bytes(), int64(buf.Len()), nil
		default:
			buf.Write(b[:n])
		}
	}
}

// TestAttackCopyIntoAppendSetLater: O_APPEND set on a destination after its
// *os.File was made (F_SETFL, or by another process sharing the open file
// description) is invisible to os.File, whose ReadFrom then splices from a
// net conn: at TCP urgent data that splice sees end of file, and into a
// regular file it fails with EINVAL after the bytes were drained from the
// socket. Copy must deliver what plain Read and Write deliver.
func TestAttackCopyIntoAppendSetLater(t *testing.T) {
	t.Run("tcp-urgent-into-pipe", func(t *testing.T) {
		peer, sock := tcpPair(t)
		r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
		setFlags(t, w, unix.O_APPEND)
		want := urgentStream(t, peer)
		time.Sleep(20 * time.Millisecond) // all of it, FIN included, has arrived
		got := collect(t, r)
		c := goCall(func() (int64, error) { return pipe.Copy(w, sock) })
		if !returnsWithin(t, c, hangLimit, func() { sock.Close(); peer.Close() }) {
			t.Errorf("Copy from a TCP socket with urgent data into an O_APPEND pipe hung")
		}
		w.Close()
		if c.n != int64(len(want)) || c.err != nil {
			t.Errorf("Copy = %d, %v; want %d, nil as plain Read and Write deliver", c.n, c.err, len(want))
		}
		if g := got(); !bytes.Equal(g, want) {
			t.Errorf("the pipe got %d bytes; want %d", len(g), len(want))
		}
	})
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network+"-into-file", func(t *testing.T) {
			var sock, peer net.Conn
			if network == "tcp" {
				sock, peer = tcpPair(t)
			} else {
				sock, peer = unixPair(t)
			}
			data := testData(t, 100_000)
			go feed(halfCloser{peer, peer.(interface{ CloseWrite() error }).CloseWrite}, data)
			dst := tempFile(t, "dst")
			setFlags(t, dst, unix.O_APPEND)
			c := goCall(func() (int64, error) { return pipe.Copy(dst, sock) })
			if !returnsWithin(t, c, hangLimit, func() { sock.Close() }) {
				t.Errorf("Copy hung")
			}
			if c.n != int64(len(data)) || c.err != nil {
				t.Errorf("Copy from a %s socket into a file with O_APPEND = %d, %v; want %d, nil as plain Read and Write deliver", network, c.n, c.err, len(data))
			}
			if got, _ := os.ReadFile(dst.Name()); !bytes.Equal(got, data) {
				t.Errorf("the file holds %d bytes; want the %d sent", len(got), len(data))
			}
		})
	}
}

// TestAttackSpliceIntoBlockingSocketSleeps: once a blocking socket or
// terminal polls writable, splice(2) into it sleeps until it took all the
// pipe holds, SPLICE_F_NONBLOCK or not (the kernel sends without
// MSG_DONTWAIT), with the pipe locked: Splice(SPLICE_F_NONBLOCK) waits; a
// socket file in the poller gets no wake-up from its own Close; and any
// other call on the pipe, even Splice(SPLICE_F_NONBLOCK), blocks on the pipe
// lock holding its file, so the pipe's Close waits too.
func TestAttackSpliceIntoBlockingSocketSleeps(t *testing.T) {
	t.Run("unix/SPLICE_F_NONBLOCK", func(t *testing.T) {
		a, b := blockingSocketpair(t)
		if err := control(a, func(fd int) error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096) }); err != nil {
			t.Fatal(err)
		}
		r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
		if _, err := pipe.SetCapacity(w, 1<<20); err != nil {
			t.Skip(err)
		}
		mustWrite(t, w, make([]byte, 1<<20))
		c := goCall(func() (int64, error) { return pipe.Splice(a, r, 1<<20, pipe.SPLICE_F_NONBLOCK) })
		ok := returnsWithin(t, c, waitLimit, func() { go io.Copy(io.Discard, b) })
		t.Logf("Splice = %d, %v", c.n, c.err)
		if !ok {
			t.Errorf("Splice(SPLICE_F_NONBLOCK) into a writable blocking Unix socket with less room than the pipe holds waited (it returned %d, %v once the peer read)", c.n, c.err)
		}
	})
	t.Run("pty/SPLICE_F_NONBLOCK", func(t *testing.T) {
		master, slave := openPty(t)
		r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
		if _, err := pipe.SetCapacity(w, 1<<20); err != nil {
			t.Skip(err)
		}
		mustWrite(t, w, bytes.Repeat([]byte("line of text\n"), 1<<20/13))
		c := goCall(func() (int64, error) { return pipe.Splice(slave, r, 1<<20, pipe.SPLICE_F_NONBLOCK) })
		if !returnsWithin(t, c, waitLimit, func() { drainForever(t, master) }) {
			t.Errorf("Splice(SPLICE_F_NONBLOCK) into a writable blocking terminal with less room than the pipe holds waited (it returned %d, %v once the master read)", c.n, c.err)
		}
	})
	// bigPipe returns a read end holding 1 MiB, more than a loopback TCP
	// socket f with a small send buffer takes while its peer does not read.
	bigPipe := func(t *testing.T, f *os.File) *os.File {
		if err := control(f, func(fd int) error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096) }); err != nil {
			t.Fatal(err)
		}
		r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
		if _, err := pipe.SetCapacity(w, 1<<20); err != nil {
			t.Skip(err)
		}
		mustWrite(t, w, make([]byte, 1<<20))
		return r
	}
	// A socket file in the poller whose descriptor is blocking: splice(2)
	// into it would sleep past its Close and deadline, holding the pipe
	// locked so that other calls on the pipe wait too. Splice refuses it
	// at once, and a Splice of the same pipe elsewhere goes on.
	t.Run("poll-blocking-tcp/refused", func(t *testing.T) {
		f, _ := inPollerBlocking(t)
		r := bigPipe(t, f)
		c := goCall(func() (int64, error) { return pipe.Splice(f, r, 1<<20, 0) })
		if !c.wait(waitLimit) {
			t.Fatalf("Splice into a socket file in the poller (descriptor blocking) waited")
		}
		if c.n != 0 || !errors.Is(c.err, syscall.EINVAL) {
			t.Errorf("Splice into a blocking socket = %d, %v; want 0, EINVAL at once", c.n, c.err)
		}
		null := devNull(t)
		second := goCall(func() (int64, error) { return pipe.Splice(null, r, 100, pipe.SPLICE_F_NONBLOCK) })
		if !second.wait(waitLimit) || second.n != 100 || second.err != nil {
			t.Errorf("Splice(/dev/null, r, 100) after the refusal = %d, %v; want 100, nil at once", second.n, second.err)
		}
	})
}

// openPty returns a pty's master, non-blocking in the poller, and its slave,
// blocking, outside it, closed when the test ends.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	master = os.NewFile(uintptr(m), "ptmx")
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetUint32(m, unix.TIOCGPTN)
	if err != nil {
		t.Skipf("ptsname: %v", err)
	}
	s, err := unix.Open(filepath.Join("/dev/pts", itoa(int(n))), unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("opening the pty's slave: %v", err)
	}
	slave = os.NewFile(uintptr(s), "pts")
	t.Cleanup(func() { slave.Close() })
	return master, slave
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// TestAttackSpliceFromNeverReadySide: a blocking side splice(2) refuses at
// once (a listening socket: ENOTCONN; an eventfd: EINVAL) is first waited
// on for readiness, which may never come: Splice hangs where the kernel
// would answer at once. (Copy tries first and answers at once: see
// TestAttackMisuseAnswersAtOnce.)
func TestAttackSpliceFromNeverReadySide(t *testing.T) {
	t.Run("blocking-listener", func(t *testing.T) {
		ln := blockingListener(t)
		_, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
		c := goCall(func() (int64, error) { return pipe.Splice(w, ln, 100, 0) })
		if !returnsWithin(t, c, waitLimit, func() { dialTo(t, ln) }) {
			t.Errorf("Splice from a blocking listening socket waited for a connection; then it returned %v (ENOTCONN at once wanted)", c.err)
		}
		if !errors.Is(c.err, syscall.ENOTCONN) {
			t.Errorf("Splice from a listening socket = %d, %v; want ENOTCONN", c.n, c.err)
		}
	})
	t.Run("blocking-listener-as-destination", func(t *testing.T) {
		ln := blockingListener(t)
		src := pipeSource(t, []byte("data"))
		c := goCall(func() (int64, error) { return pipe.Splice(ln, src, 100, 0) })
		shutdown := func() { _ = control(ln, func(fd int) error { return unix.Shutdown(fd, unix.SHUT_RDWR) }) }
		if !returnsWithin(t, c, waitLimit, shutdown) {
			t.Errorf("Splice into a blocking listening socket waited for it to be writable, which it never is (an error at once wanted)")
		}
	})
	t.Run("blocking-eventfd", func(t *testing.T) {
		efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
		if err != nil {
			t.Skip(err)
		}
		ev := os.NewFile(uintptr(efd), "eventfd")
		t.Cleanup(func() { ev.Close() })
		_, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
		c := goCall(func() (int64, error) { return pipe.Splice(w, ev, 100, 0) })
		if !returnsWithin(t, c, waitLimit, func() { _, _ = unix.Write(efd, []byte{1, 0, 0, 0, 0, 0, 0, 0}) }) {
			t.Errorf("Splice from a blocking eventfd waited for it to be readable; then it returned %v (EINVAL at once wanted)", c.err)
		}
		if !errors.Is(c.err, syscall.EINVAL) {
			t.Errorf("Splice from an eventfd = %d, %v; want EINVAL", c.n, c.err)
		}
	})
}

// blockingListener returns a blocking listening TCP socket, outside the
// poller, as inetd or systemd hand one over.
func blockingListener(t *testing.T) *os.File {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "listener")
	t.Cleanup(func() { f.Close() })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 8); err != nil {
		t.Fatal(err)
	}
	return f
}

// dialTo connects to the listening socket ln, making it readable.
func dialTo(t *testing.T, ln *os.File) {
	var sa unix.Sockaddr
	_ = control(ln, func(fd int) (err error) { sa, err = unix.Getsockname(fd); return err })
	in, ok := sa.(*unix.SockaddrInet4)
	if !ok {
		return
	}
	c, err := net.Dial("tcp", (&net.TCPAddr{IP: in.Addr[:], Port: in.Port}).String())
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
}

// TestAttackCopySocketIntoProcFile: fstat's S_IFREG does not tell that
// splice(2) works: a procfs file refuses it (EINVAL). From a socket, Copy
// drains the socket into its own buffer pipe first and then fails to pump
// into the file: the bytes are lost and Copy errs where plain Read and
// Write deliver everything.
func TestAttackCopySocketIntoProcFile(t *testing.T) {
	const name = "/proc/thread-self/comm" // this thread's name: harmless to write
	runtime.LockOSThread()                // the test's own thread, for the duration
	defer runtime.UnlockOSThread()
	old, err := os.ReadFile(name)
	if err != nil {
		t.Skip(err)
	}
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		t.Skip(err)
	}
	defer func() { f.Close(); _ = os.WriteFile(name, bytes.TrimSpace(old), 0) }()
	sock, peer := unixPair(t)
	data := bytes.Repeat([]byte("n"), 100_000)
	go feed(halfCloser{peer, peer.CloseWrite}, data)
	c := goCall(func() (int64, error) { return pipe.Copy(f, sock) })
	if !returnsWithin(t, c, hangLimit, func() { sock.Close() }) {
		t.Fatal("Copy hung")
	}
	if c.n != int64(len(data)) || c.err != nil {
		t.Errorf("Copy(%s, unix socket) = %d, %v; want %d, nil as plain Read and Write deliver (comm takes any write)", name, c.n, c.err, len(data))
	}
}

// ---- Attacks the change withstands: regression tests. ----

// urgentPattern sends a TCP stream with urgent data from peer, shuts down
// its sending side, and waits until it has all arrived.
type urgentPattern struct {
	name     string
	inline   bool // SO_OOBINLINE on the receiver
	sendFrom func(t testing.TB, peer *net.TCPConn)
}

var urgentPatterns = []urgentPattern{
	{"first", false, func(t testing.TB, p *net.TCPConn) {
		sendOOB(t, p, "X")
		mustWrite(t, p, bytes.Repeat([]byte("b"), 5000))
	}},
	{"twice", false, func(t testing.TB, p *net.TCPConn) {
		mustWrite(t, p, bytes.Repeat([]byte("a"), 5000))
		sendOOB(t, p, "X")
		sendOOB(t, p, "Y")
		mustWrite(t, p, bytes.Repeat([]byte("b"), 5000))
	}},
	{"last", false, func(t testing.TB, p *net.TCPConn) {
		mustWrite(t, p, bytes.Repeat([]byte("a"), 5000))
		sendOOB(t, p, "X")
	}},
	{"only", false, func(t testing.TB, p *net.TCPConn) { sendOOB(t, p, "X") }},
	{"oobinline", true, func(t testing.TB, p *net.TCPConn) {
		mustWrite(t, p, bytes.Repeat([]byte("a"), 5000))
		sendOOB(t, p, "X")
		mustWrite(t, p, bytes.Repeat([]byte("b"), 70000))
	}},
}

// loadedUrgent returns a receiving TCP socket, held as holding says
// ("conn" or "file"), with pattern pt queued and end of stream.
func loadedUrgent(t *testing.T, pt urgentPattern, holding string) io.Reader {
	peer, sock := tcpPair(t)
	if pt.inline {
		if err := control(sock, func(fd int) error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_OOBINLINE, 1) }); err != nil {
			t.Fatal(err)
		}
	}
	pt.sendFrom(t, peer)
	if err := peer.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // loopback: everything has arrived
	var c interface {
		io.Reader
		SetReadDeadline(time.Time) error
	} = sock
	if holding == "file" {
		c = socketFile(t, sock)
	}
	if err := c.SetReadDeadline(time.Now().Add(hangLimit)); err != nil { // a hang fails
		t.Fatal(err)
	}
	return c
}

// TestAttackUrgentEdgesMatchRead: urgent data at the start, twice in a row,
// last, alone, and inline (SO_OOBINLINE: read(2) delivers the byte): Copy
// delivers what plain Read delivers from an identical connection.
func TestAttackUrgentEdgesMatchRead(t *testing.T) {
	for _, pt := range urgentPatterns {
		for _, holding := range []string{"conn", "file"} {
			t.Run(pt.name+"/"+holding, func(t *testing.T) {
				want, wantN, wantErr := readPlain(loadedUrgent(t, pt, holding))
				src := loadedUrgent(t, pt, holding)
				r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
				got := collect(t, r)
				c := goCall(func() (int64, error) { return pipe.Copy(w, src) })
				if !returnsWithin(t, c, hangLimit, func() { src.(io.Closer).Close() }) {
					t.Fatal("Copy hung")
				}
				w.Close()
				if c.n != wantN || (c.err == nil) != (wantErr == nil) {
					t.Errorf("Copy = %d, %v; plain Read delivered %d, %v", c.n, c.err, wantN, wantErr)
				}
				if g := got(); !bytes.Equal(g, want) {
					t.Errorf("the pipe got %d bytes (%q...); plain Read delivered %d (%q...)", len(g), g[:min(len(g), 8)], len(want), want[:min(len(want), 8)])
				}
			})
		}
	}
}

// TestAttackUrgentWhileParked: urgent data arrives while Copy waits on an
// empty TCP socket: Copy wakes, stops splicing at the mark and delivers
// the rest as read(2) does.
func TestAttackUrgentWhileParked(t *testing.T) {
	peer, sock := tcpPair(t)
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	got := collect(t, r)
	c := goCall(func() (int64, error) { return pipe.Copy(w, sock) })
	waitBlocked(t, "pipe.Copy(")
	checkIdle(t, "Copy waiting on an empty TCP socket", 100*time.Millisecond)
	want := urgentStream(t, peer)
	if !returnsWithin(t, c, hangLimit, func() { sock.Close() }) {
		t.Fatal("Copy hung")
	}
	w.Close()
	if c.n != int64(len(want)) || c.err != nil {
		t.Errorf("Copy = %d, %v; want %d, nil", c.n, c.err, len(want))
	}
	if g := got(); !bytes.Equal(g, want) {
		t.Errorf("the pipe got %d bytes; want %d", len(g), len(want))
	}
}

// TestAttackCopyFromMPTCP: an MPTCP socket (IPPROTO_MPTCP, 262) is a stream
// the kind table does not name (kindSocket): Copy leaves it to io.Copy.
// Fallen back to TCP, it delivers a TCP peer's urgent byte inline, to read(2)
// and splice(2) alike: Copy must deliver what plain Read delivers.
func TestAttackCopyFromMPTCP(t *testing.T) {
	var lc net.ListenConfig
	lc.SetMultipathTCP(false) // a plain TCP peer: the MPTCP side falls back
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	load := func() net.Conn {
		var d net.Dialer
		d.SetMultipathTCP(true)
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		proto := 0
		_ = control(c, func(fd int) (err error) {
			proto, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
			return err
		})
		if proto != 262 {
			t.Skipf("no MPTCP socket (SO_PROTOCOL %d)", proto)
		}
		a, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		urgentStream(t, a.(*net.TCPConn))
		time.Sleep(20 * time.Millisecond)
		return c
	}
	want, wantN, _ := readPlain(load())
	src := load()
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	got := collect(t, r)
	c := goCall(func() (int64, error) { return pipe.Copy(w, src) })
	if !returnsWithin(t, c, hangLimit, func() { src.Close() }) {
		t.Fatal("Copy hung")
	}
	w.Close()
	if c.n != wantN || c.err != nil {
		t.Errorf("Copy = %d, %v; plain Read delivered %d", c.n, c.err, wantN)
	}
	if g := got(); !bytes.Equal(g, want) {
		t.Errorf("the pipe got %d bytes; plain Read delivered %d", len(g), len(want))
	}
}

// TestAttackSamePipeTwice: one pipe on both sides, through a FIFO opened
// twice or a duplicate descriptor (plain or O_APPEND): Copy, Splice and Tee
// fail at once with EINVAL, never copying the pipe into itself for ever.
func TestAttackSamePipeTwice(t *testing.T) {
	name := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(name, 0o600); err != nil {
		t.Skip(err)
	}
	fr, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fr.Close()
	fw, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	mustWrite(t, fw, []byte("data in the fifo"))
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	mustWrite(t, w, []byte("data in the pipe"))
	dupOf := func(f *os.File, flags int) *os.File {
		var d int
		if err := control(f, func(fd int) (err error) { d, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0); return err }); err != nil {
			t.Fatal(err)
		}
		g := os.NewFile(uintptr(d), "dup")
		t.Cleanup(func() { g.Close() })
		if flags != 0 {
			setFlags(t, g, flags) // shared with w: set last
		}
		return g
	}
	wdup := dupOf(w, 0)
	cases := map[string]func() (int64, error){
		"Copy/fifo":       func() (int64, error) { return pipe.Copy(fw, fr) },
		"Splice/fifo":     func() (int64, error) { return pipe.Splice(fw, fr, 100, 0) },
		"Tee/fifo":        func() (int64, error) { return pipe.Tee(fw, fr, 100, 0) },
		"Copy/dup":        func() (int64, error) { return pipe.Copy(wdup, r) },
		"Splice/dup":      func() (int64, error) { return pipe.Splice(wdup, r, 100, 0) },
		"Copy/dup-append": func() (int64, error) { return pipe.Copy(dupOf(w, unix.O_APPEND), r) },
		"Splice/nonblock": func() (int64, error) { return pipe.Splice(w, r, 100, pipe.SPLICE_F_NONBLOCK) },
	}
	for _, name := range []string{"Copy/fifo", "Splice/fifo", "Tee/fifo", "Copy/dup", "Splice/dup", "Splice/nonblock", "Copy/dup-append"} {
		c := goCall(cases[name])
		if !returnsWithin(t, c, waitLimit, func() { fr.Close(); fw.Close(); r.Close(); w.Close() }) {
			t.Fatalf("%s of a pipe into itself did not return in %v", name, waitLimit)
		}
		if !errors.Is(c.err, syscall.EINVAL) {
			t.Errorf("%s of a pipe into itself = %d, %v; want EINVAL", name, c.n, c.err)
		}
	}
}

// TestAttackMisuseAnswersAtOnce: misuse gives an errors.Is-matchable error
// at once: a read end as destination, a write end as source, nil, closed,
// a half-closed socket, sockets not connected or listening (Copy answers
// as read(2) does), vmsplice on a read end, and Vmsplice(SPLICE_F_NONBLOCK)
// on a full blocking pipe.
func TestAttackMisuseAnswersAtOnce(t *testing.T) {
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	mustWrite(t, w, []byte("data"))
	closed, _ := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	closed.Close()
	conn, _ := tcpPair(t)
	if err := conn.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	unconnected := func(domain int) *os.File {
		fd, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		f := os.NewFile(uintptr(fd), "unconnected") // blocking, outside the poller
		t.Cleanup(func() { f.Close() })
		return f
	}
	ln := blockingListener(t)
	pollLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pollLn.Close()
	br, bw := newPipe(t, pipe.O_CLOEXEC)
	fill(t, bw)
	cases := []struct {
		name string
		call func() (int64, error)
		want error
	}{
		{"Splice/read-end-as-dst", func() (int64, error) { return pipe.Splice(r, r, 100, 0) }, syscall.EBADF},
		{"Splice/write-end-as-src", func() (int64, error) { return pipe.Splice(devNull(t), w, 100, 0) }, syscall.EBADF},
		{"Splice/nil", func() (int64, error) { return pipe.Splice(w, nil, 100, 0) }, os.ErrInvalid},
		{"Splice/nil-file", func() (int64, error) { return pipe.Splice(w, (*os.File)(nil), 100, 0) }, os.ErrInvalid},
		{"Splice/closed", func() (int64, error) { return pipe.Splice(w, closed, 100, 0) }, os.ErrClosed},
		{"Tee/read-end-as-dst", func() (int64, error) { return pipe.Tee(r, r, 100, 0) }, syscall.EBADF},
		{"Splice/half-closed-tcp", func() (int64, error) { return pipe.Splice(conn, r, 100, 0) }, syscall.EPIPE},
		{"Splice/unconnected-tcp", func() (int64, error) { return pipe.Splice(w, unconnected(unix.AF_INET), 100, 0) }, syscall.ENOTCONN},
		{"Splice/unconnected-unix", func() (int64, error) { return pipe.Splice(w, unconnected(unix.AF_UNIX), 100, 0) }, syscall.EINVAL},
		{"Splice/poll-listener", func() (int64, error) { return pipe.Splice(w, pollLn.(*net.TCPListener), 100, 0) }, syscall.ENOTCONN},
		{"Copy/blocking-listener", func() (int64, error) { return pipe.Copy(w, ln) }, syscall.ENOTCONN},
		{"Copy/unconnected-tcp", func() (int64, error) { return pipe.Copy(w, unconnected(unix.AF_INET)) }, syscall.ENOTCONN},
		{"Vmsplice/read-end", func() (int64, error) {
			n, err := pipe.Vmsplice(r, [][]byte{make([]byte, 10)}, 0)
			return int64(n), err
		}, syscall.EBADF},
		{"Vmsplice/SPLICE_F_NONBLOCK-full-blocking", func() (int64, error) {
			n, err := pipe.Vmsplice(bw, [][]byte{make([]byte, 10)}, pipe.SPLICE_F_NONBLOCK)
			return int64(n), err
		}, syscall.EAGAIN},
	}
	for _, tc := range cases {
		c := goCall(tc.call)
		if !returnsWithin(t, c, waitLimit, func() { drainForever(t, br); dialTo(t, ln) }) {
			t.Errorf("%s waited", tc.name)
			continue
		}
		if !errors.Is(c.err, tc.want) {
			t.Errorf("%s = %d, %v; want an error matching %v", tc.name, c.n, c.err, tc.want)
		}
	}
}

// TestAttackConcurrentCopiesShareSource: two Copy calls on one source pipe
// park without spinning while it is empty, and between them deliver every
// byte exactly once.
func TestAttackConcurrentCopiesShareSource(t *testing.T) {
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	var dones [2]func() []byte
	var calls [2]*call
	for i := range calls {
		dst, done := pipeSink(t)
		dones[i] = done
		calls[i] = goCall(func() (int64, error) { return pipe.Copy(dst, r) })
	}
	// One parks in the poller; the other waits for the file's read lock.
	for start := time.Now(); parkedCount("pipe.Copy(") < 1; time.Sleep(time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatal("no Copy call parked")
		}
	}
	if calls[0].returned() || calls[1].returned() {
		t.Fatal("a Copy from an empty pipe returned")
	}
	checkIdle(t, "two Copy calls on one empty pipe", 200*time.Millisecond)
	data := testData(t, 4<<20)
	go feed(w, data)
	var total int64
	var sum, wantSum uint64
	for i, c := range calls {
		if !returnsWithin(t, c, hangLimit, func() { r.Close() }) {
			t.Fatal("Copy hung")
		}
		if c.err != nil {
			t.Errorf("Copy %d: %v", i, c.err)
		}
		total += c.n
		for _, b := range dones[i]() {
			sum += uint64(b)
		}
	}
	for _, b := range data {
		wantSum += uint64(b)
	}
	if total != int64(len(data)) || sum != wantSum {
		t.Errorf("the two copies moved %d bytes (byte sum %d); want %d (byte sum %d)", total, sum, len(data), wantSum)
	}
}

// TestAttackEINTRStorm: a Copy waiting in poll(2) on a blocking pipe
// outside the poller, its thread hit by SIGURG every millisecond, keeps
// waiting without spinning and then copies everything.
func TestAttackEINTRStorm(t *testing.T) {
	r, w := newPipe(t, pipe.O_CLOEXEC) // blocking: Copy waits in poll(2)
	dst, done := pipeSink(t)
	tids := make(chan int, 1)
	c := goCall(func() (int64, error) {
		runtime.LockOSThread() // the thread exits with the goroutine
		tids <- unix.Gettid()
		return pipe.Copy(dst, r)
	})
	tid := <-tids
	waitBlocked(t, "pipe.Copy(")
	stop := make(chan struct{})
	signals := make(chan int, 1)
	go func() {
		n := 0
		defer func() { signals <- n }()
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				if unix.Tgkill(unix.Getpid(), tid, unix.SIGURG) == nil {
					n++
				}
			}
		}
	}()
	checkIdle(t, "Copy in poll(2) under a SIGURG storm", 300*time.Millisecond)
	close(stop)
	t.Logf("%d signals sent", <-signals)
	data := testData(t, 1<<20)
	go feed(w, data)
	if !returnsWithin(t, c, hangLimit, func() { w.Close() }) {
		t.Fatal("Copy hung")
	}
	dst.Close()
	if c.n != int64(len(data)) || c.err != nil {
		t.Errorf("Copy = %d, %v; want %d, nil", c.n, c.err, len(data))
	}
	if got := done(); !bytes.Equal(got, data) {
		t.Errorf("the sink got %d bytes; want %d", len(got), len(data))
	}
}

// TestAttackPastDeadlines: a deadline already past on the side a transfer
// waits on ends it at once; for Splice, one on the other side plays no
// part: it waits for the side it needs and then moves the bytes.
func TestAttackPastDeadlines(t *testing.T) {
	past := time.Now().Add(-time.Hour)
	ops := map[string]func(dst, src *os.File) (int64, error){
		"Splice": func(dst, src *os.File) (int64, error) { return pipe.Splice(dst, src, 100, 0) },
		"Copy":   func(dst, src *os.File) (int64, error) { return pipe.Copy(dst, io.LimitReader(src, 100_000)) },
	}
	for name, op := range ops {
		t.Run(name+"/waited-side", func(t *testing.T) {
			r, _ := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			_, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			if err := r.SetReadDeadline(past); err != nil {
				t.Fatal(err)
			}
			c := goCall(func() (int64, error) { return op(w, r) })
			if !returnsWithin(t, c, waitLimit, func() { r.Close() }) {
				t.Errorf("%s on an empty source whose deadline has passed waited", name)
			}
			if !errors.Is(c.err, os.ErrDeadlineExceeded) {
				t.Errorf("%s = %d, %v; want os.ErrDeadlineExceeded", name, c.n, c.err)
			}
		})
		if name == "Copy" {
			// io.Copy's Write would fail at once on the destination's past
			// deadline, where Copy waits as Splice does: not enshrined here.
			continue
		}
		t.Run(name+"/other-side", func(t *testing.T) {
			r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			dst, done := pipeSink(t)
			if err := dst.SetWriteDeadline(past); err != nil {
				t.Fatal(err)
			}
			c := goCall(func() (int64, error) { return op(dst, r) })
			waitBlocked(t, "pipe."+name+"(")
			data := testData(t, 100)
			mustWrite(t, w, data)
			w.Close()
			if !returnsWithin(t, c, waitLimit, func() { r.Close() }) {
				t.Fatalf("%s did not return once the source had data", name)
			}
			dst.Close()
			if got := done(); c.n != 100 || c.err != nil || !bytes.Equal(got, data) {
				t.Errorf("%s with the destination's deadline past = %d, %v (%d bytes arrived); want 100, nil: only the side waited on has a say", name, c.n, c.err, len(got))
			}
		})
	}
}
