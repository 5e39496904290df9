package pipe_test

// The matrix (issue #15): Copy and Splice over every kind of source and
// every kind of destination, since the breaks came from pairings nobody
// listed. The kinds: a pipe (non-blocking and blocking), a FIFO, a regular
// file (and one opened with O_APPEND), /dev/null (destination), /dev/zero
// (source), and TCP, Unix stream, UDP, unixgram and seqpacket sockets, each
// held four ways (see holdings). The properties:
//
//   - TestMatrix: Copy delivers what io.Copy with plain Read and Write
//     delivers from an identical source (the same count, an error or not,
//     the same bytes, the same datagrams; TCP urgent data skipped as read(2)
//     skips it), and Splice moves the bytes or refuses with a documented
//     error;
//   - TestMatrixWait: a wait on an empty source or a full destination ends
//     at its deadline or Close, Close of either side never waits, and
//     SPLICE_F_NONBLOCK never waits;
//   - TestMatrixIdle: those waits do not spin.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/pipe2go/pipe"
	"golang.org/x/sys/unix"
)

const (
	streamSize = 150_000          // the bytes of a stream source
	urgentAt   = 100_000          // where a TCP source's peer sends its urgent byte
	ioCopyBuf  = 32 << 10         // io.Copy's buffer: the largest datagram it sends
	waitLimit  = time.Second      // how soon a woken call, or a Close, must return
	hangLimit  = 10 * time.Second // how long a call may take before the test gives up on it
)

// dgramSizes are the datagrams a datagram source's peer sends before the
// transfer starts. The first, larger than a page, meets a destination pipe
// with one page free; the empty one is end of file to an *os.File's Read
// (and a seqpacket conn's) but not to a UDP or unixgram conn's.
var dgramSizes = []int{10_000, 1_000, 0, 3_000, 10_000}

// sentinel is the datagram that ends what a datagram destination collects.
var sentinel = []byte("\x00the end of what the matrix test sent\x00")

// A side is what a transfer is given: an *os.File or a net conn.
type side interface {
	syscall.Conn
	io.ReadWriteCloser
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// A kind is a kind of source or destination, as the tests' expectations
// need to know it.
type kind struct {
	name   string
	pipe   bool // a pipe or FIFO: Splice takes anything on the other side
	dgram  bool // a datagram or seqpacket socket, which Splice refuses
	tcp    bool // a TCP socket: a source carries urgent data
	append bool // opened with O_APPEND, which Splice refuses
	poll   bool // in the runtime poller and non-blocking: a deadline or Close wakes a wait on it
	steady bool // a source never empty, a destination never full: nothing to wait for
	// blocking marks a socket whose descriptor is blocking, which Splice
	// refuses as a destination: splice(2) would sleep there until it took
	// everything, whatever Close or deadlines say.
	blocking bool
}

// A src is an open source.
type src struct {
	r     io.Reader // what Copy reads: c, or an *io.LimitedReader of it
	c     side      // what Splice reads
	limit int       // /dev/zero: how much Splice moves
	exact bool      // its reads return the same pieces in every run
	// end makes the source end: end of file for a stream, and for a
	// datagram socket, which has none, a past read deadline (in the
	// poller) or shutdown(SHUT_RD) (blocking).
	end func()
	// drained reports, for a datagram source, that every datagram sent
	// has been read.
	drained func() bool
}

// A dst is an open destination.
type dst struct {
	c side
	// release starts a pipe's reader, held back until the transfer waits
	// so that its first write finds one page free.
	release func()
	// finish ends the writing side and returns what arrived: a stream's
	// bytes or each datagram (nil, nil for /dev/null).
	finish func() (stream []byte, dgrams [][]byte)
	// unblock ends a wait on a full destination by closing its reader.
	unblock func()
}

type srcKind struct {
	kind
	open func(t *testing.T, load bool) *src // load false: empty, its writer open
}

type dstKind struct {
	kind
	open func(t *testing.T, full bool) *dst // full: full, and nobody reads
}

// A sockKind is a kind of socket; pair returns both ends, connected.
type sockKind struct {
	name       string
	dgram, tcp bool
	pair       func(t *testing.T) (held, peer net.Conn)
}

var sockKinds = []sockKind{
	{"tcp", false, true, func(t *testing.T) (net.Conn, net.Conn) { a, b := tcpPair(t); return b, a }},
	{"unix", false, false, socketpair(unix.SOCK_STREAM)},
	{"udp", true, false, udpPair},
	{"unixgram", true, false, socketpair(unix.SOCK_DGRAM)},
	{"seqpacket", true, false, socketpair(unix.SOCK_SEQPACKET)},
}

// A holding is a way the code under test holds a socket.
type holding struct {
	name string
	poll bool
	hold func(t *testing.T, c net.Conn) side
}

var holdings = []holding{
	// As its net type: *net.TCPConn, *net.UnixConn or *net.UDPConn.
	{"conn", true, func(_ *testing.T, c net.Conn) side { return c.(side) }},
	// conn.File(): a duplicate in the poller, non-blocking.
	{"file", true, func(t *testing.T, c net.Conn) side { return connFile(t, c) }},
	// A blocking descriptor, outside the poller, as inetd hands one over.
	{"blockingfile", false, blockingFile},
	// conn.File() made blocking: in the poller, its descriptor blocking.
	{"pollblockingfile", false, func(t *testing.T, c net.Conn) side {
		f := connFile(t, c)
		if err := pipe.SetNonblock(f, false); err != nil {
			t.Fatal(err)
		}
		return f
	}},
}

func srcKinds() []srcKind {
	ks := []srcKind{
		{kind{name: "pipe", pipe: true, poll: true}, pipeSrc(nonblockingPipe)},
		{kind{name: "blockingpipe", pipe: true}, pipeSrc(blockingPipe)},
		{kind{name: "fifo", pipe: true, poll: true}, pipeSrc(fifo)},
		{kind{name: "file", steady: true}, func(t *testing.T, _ bool) *src {
			f := fileWith(t, testData(t, streamSize))
			return &src{r: f, c: f, exact: true}
		}},
		{kind{name: "devzero", steady: true}, func(t *testing.T, _ bool) *src {
			f, err := os.Open("/dev/zero")
			if err != nil {
				t.Skip(err)
			}
			t.Cleanup(func() { f.Close() })
			return &src{r: &io.LimitedReader{R: f, N: streamSize}, c: f, limit: streamSize, exact: true}
		}},
	}
	for _, sk := range sockKinds {
		for _, h := range holdings {
			ks = append(ks, srcKind{sk.kind(h), sockSrc(sk, h)})
		}
	}
	return ks
}

func dstKinds() []dstKind {
	ks := []dstKind{
		{kind{name: "pipe", pipe: true, poll: true}, pipeDst(nonblockingPipe)},
		{kind{name: "blockingpipe", pipe: true}, pipeDst(blockingPipe)},
		{kind{name: "fifo", pipe: true, poll: true}, pipeDst(fifo)},
		{kind{name: "file", steady: true}, fileDst("")},
		{kind{name: "appendfile", append: true, steady: true}, fileDst("written before\n")},
		{kind{name: "devnull", steady: true}, func(t *testing.T, _ bool) *dst {
			return &dst{c: devNull(t), release: nop, finish: func() ([]byte, [][]byte) { return nil, nil }}
		}},
	}
	for _, sk := range sockKinds {
		for _, h := range holdings {
			k := sk.kind(h)
			k.steady = sk.name == "udp" // UDP drops what does not fit: never full
			ks = append(ks, dstKind{k, sockDst(sk, h)})
		}
	}
	return ks
}

func (sk sockKind) kind(h holding) kind {
	return kind{name: sk.name + "-" + h.name, dgram: sk.dgram, tcp: sk.tcp, poll: h.poll, blocking: !h.poll}
}

func nonblockingPipe(t *testing.T) (r, w *os.File) { return newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK) }
func blockingPipe(t *testing.T) (r, w *os.File)    { return newPipe(t, pipe.O_CLOEXEC) }

// fifo opens both ends of a new FIFO, in the poller as os.OpenFile puts
// them: the reader first, without waiting for a writer, then the writer.
func fifo(t *testing.T) (r, w *os.File) {
	t.Helper()
	name := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(name, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	r, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if w, err = os.OpenFile(name, os.O_WRONLY, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return r, w
}

// pipeSrc is a pipe source. Loaded, it holds all its data and end of file
// before the transfer starts, so that every Read returns the same pieces.
func pipeSrc(ends func(t *testing.T) (r, w *os.File)) func(*testing.T, bool) *src {
	return func(t *testing.T, load bool) *src {
		r, w := ends(t)
		if load {
			if _, err := pipe.SetCapacity(w, streamSize); err != nil {
				t.Skipf("SetCapacity(%d): %v", streamSize, err)
			}
			mustWrite(t, w, testData(t, streamSize))
			w.Close()
		}
		return &src{r: r, c: r, exact: true, end: func() { w.Close() }}
	}
}

// pipeDst is a pipe destination. It starts full of zeros but for one page:
// a datagram spliced into it whole would be cut to that page.
func pipeDst(ends func(t *testing.T) (r, w *os.File)) func(*testing.T, bool) *dst {
	return func(t *testing.T, full bool) *dst {
		r, w := ends(t)
		fill(t, w)
		d := &dst{c: w, release: nop, unblock: func() { r.Close() }}
		if full {
			return d
		}
		if _, err := io.ReadFull(r, make([]byte, os.Getpagesize())); err != nil {
			t.Fatal(err)
		}
		zeros, err := pipe.Buffered(r)
		if err != nil {
			t.Fatal(err)
		}
		var got func() []byte
		d.release = func() {
			if got == nil {
				got = collect(t, r)
			}
		}
		d.finish = func() ([]byte, [][]byte) {
			d.release()
			w.Close()
			b := got()
			if len(b) < zeros || !bytes.Equal(b[:zeros], make([]byte, zeros)) {
				t.Errorf("the %d bytes the pipe held before the transfer did not come out first", zeros)
				return b, nil
			}
			return b[zeros:], nil
		}
		return d
	}
}

// fileDst is a regular file holding prefix, opened with O_APPEND if
// prefix is not empty.
func fileDst(prefix string) func(*testing.T, bool) *dst {
	return func(t *testing.T, _ bool) *dst {
		name := filepath.Join(t.TempDir(), "dst")
		if err := os.WriteFile(name, []byte(prefix), 0o600); err != nil {
			t.Fatal(err)
		}
		flags := os.O_WRONLY
		if prefix != "" {
			flags |= os.O_APPEND
		}
		f, err := os.OpenFile(name, flags, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return &dst{c: f, release: nop, finish: func() ([]byte, [][]byte) {
			b, err := os.ReadFile(name)
			if err != nil {
				t.Error(err)
			}
			if !bytes.HasPrefix(b, []byte(prefix)) {
				t.Errorf("the file lost what it held before: it starts %.40q", b)
				return b, nil
			}
			return b[len(prefix):], nil
		}}
	}
}

// sockSrc is a socket source whose peer sends, when loaded, a stream
// (with urgent data for TCP) and shuts down, or datagrams, all queued
// before the transfer starts.
func sockSrc(sk sockKind, h holding) func(*testing.T, bool) *src {
	return func(t *testing.T, load bool) *src {
		held, peer := sk.pair(t)
		c := h.hold(t, held)
		s := &src{r: c, c: c, exact: sk.dgram}
		if !sk.dgram {
			s.end = func() { _ = peer.(interface{ CloseWrite() error }).CloseWrite() }
			if load {
				go feedStream(peer, sk.tcp, testData(t, streamSize))
			}
			return s
		}
		s.end = func() {
			if h.poll {
				_ = c.SetReadDeadline(time.Now())
			} else {
				_ = control(held, func(fd int) error { return unix.Shutdown(fd, unix.SHUT_RD) })
			}
		}
		s.drained = func() bool {
			return control(held, func(fd int) error {
				_, _, err := unix.Recvfrom(fd, make([]byte, 1), unix.MSG_PEEK|unix.MSG_DONTWAIT)
				return err
			}) == unix.EAGAIN
		}
		if load {
			data := testData(t, 30_000)
			for _, size := range dgramSizes {
				if err := send(peer, data[:size], 0); err != nil {
					t.Fatalf("sending a datagram of %d bytes: %v", size, err)
				}
				data = data[size:]
			}
			for start := time.Now(); s.drained(); time.Sleep(time.Millisecond) {
				if time.Since(start) > 5*time.Second {
					t.Fatal("the datagrams sent did not arrive in 5s")
				}
			}
		}
		return s
	}
}

// feedStream sends data from peer, with an urgent byte at urgentAt for
// TCP, and shuts down peer's sending side. It stops at the first error:
// the reader then sees less than was sent, which the test reports.
func feedStream(peer net.Conn, tcp bool, data []byte) {
	defer func() { _ = peer.(interface{ CloseWrite() error }).CloseWrite() }()
	if tcp {
		if _, err := peer.Write(data[:urgentAt]); err != nil {
			return
		}
		if send(peer, []byte("U"), unix.MSG_OOB) != nil {
			return
		}
		data = data[urgentAt:]
	}
	_, _ = peer.Write(data)
}

// sockDst is a socket destination whose peer collects the stream, or the
// datagrams up to the sentinel that finish sends.
func sockDst(sk sockKind, h holding) func(*testing.T, bool) *dst {
	return func(t *testing.T, full bool) *dst {
		held, peer := sk.pair(t)
		d := &dst{c: h.hold(t, held), release: nop, unblock: func() { peer.Close() }}
		if full {
			fillSocket(t, held)
			return d
		}
		if !sk.dgram {
			got := collect(t, peer)
			d.finish = func() ([]byte, [][]byte) {
				if err := control(held, func(fd int) error { return unix.Shutdown(fd, unix.SHUT_WR) }); err != nil {
					t.Errorf("shutting down the destination: %v", err)
				}
				return got(), nil
			}
			return d
		}
		got := collectDatagrams(t, peer)
		d.finish = func() ([]byte, [][]byte) {
			// Sent on the same socket after the transfer, it arrives last.
			if err := send(held, sentinel, 0); err != nil {
				t.Errorf("sending the end marker: %v", err)
			}
			return nil, got()
		}
		return d
	}
}

// collectDatagrams reads datagrams from peer in a goroutine until the
// sentinel; the returned func waits for it and returns them.
func collectDatagrams(t *testing.T, peer net.Conn) func() [][]byte {
	var got [][]byte
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1<<20) // larger than any datagram: none is cut here
		for {
			n, err := peer.Read(buf)
			if err != nil || bytes.Equal(buf[:n], sentinel) {
				return
			}
			got = append(got, bytes.Clone(buf[:n]))
		}
	}()
	return func() [][]byte {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("the end marker sent after the transfer did not arrive in 5s")
			_ = peer.SetReadDeadline(time.Now())
			<-done
		}
		return got
	}
}

// socketpair returns a func making a connected pair of Unix sockets of typ.
func socketpair(typ int) func(t *testing.T) (net.Conn, net.Conn) {
	return func(t *testing.T) (net.Conn, net.Conn) {
		t.Helper()
		fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Skipf("socketpair(AF_UNIX, %d): %v", typ, err)
		}
		return connOf(t, fds[0]), connOf(t, fds[1])
	}
}

// udpPair returns two loopback UDP sockets connected to each other.
func udpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	var fds [2]int
	for i := range fds {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		fds[i] = fd
		t.Cleanup(func() { unix.Close(fd) }) // connOf works on a duplicate
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			t.Fatal(err)
		}
		// Loopback UDP drops what the receive buffer has no room for.
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	}
	for i, fd := range fds {
		sa, err := unix.Getsockname(fds[1-i])
		if err == nil {
			err = unix.Connect(fd, sa)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return connOf(t, fds[0]), connOf(t, fds[1])
}

// connOf returns a net conn for a duplicate of the socket fd.
func connOf(t *testing.T, fd int) net.Conn {
	t.Helper()
	f := os.NewFile(uintptr(fd), "socket")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// connFile returns c.File(), closed when the test ends.
func connFile(t *testing.T, c net.Conn) *os.File {
	t.Helper()
	f, err := c.(interface{ File() (*os.File, error) }).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// blockingFile returns a blocking duplicate of c, outside the poller. The
// blocking mode is shared with c, which the test only shuts down or peeks
// at from then on.
func blockingFile(t *testing.T, c net.Conn) side {
	t.Helper()
	fd := -1
	if err := control(c.(syscall.Conn), func(s int) (err error) {
		if fd, err = unix.FcntlInt(uintptr(s), unix.F_DUPFD_CLOEXEC, 0); err != nil {
			return err
		}
		return unix.SetNonblock(fd, false)
	}); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "blocking-socket")
	t.Cleanup(func() { f.Close() })
	return f
}

// control runs f with c's descriptor and returns f's error.
func control(c any, f func(fd int) error) error {
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// send sends b on c as one message with flags, without waiting in the
// kernel, retrying for up to 5s while the socket is full.
func send(c any, b []byte, flags int) error {
	for start := time.Now(); ; time.Sleep(time.Millisecond) {
		err := control(c, func(fd int) error { return unix.Sendto(fd, b, flags|unix.MSG_DONTWAIT, nil) })
		if err != unix.EAGAIN || time.Since(start) > 5*time.Second {
			return err
		}
	}
}

// fillSocket sends on c until it takes nothing more, even after a pause
// for the data in flight, its peer reading nothing.
func fillSocket(t *testing.T, c any) {
	t.Helper()
	buf := make([]byte, 64<<10)
	for start := time.Now(); time.Since(start) < hangLimit; time.Sleep(20 * time.Millisecond) {
		took := false
		for _, size := range []int{len(buf), 4096, 1} {
			for {
				err := control(c, func(fd int) error { return unix.Sendto(fd, buf[:size], unix.MSG_DONTWAIT, nil) })
				if err == unix.EAGAIN {
					break
				}
				if err != nil {
					t.Fatalf("filling the socket: %v", err)
				}
				took = true
			}
		}
		if !took {
			return
		}
	}
	t.Fatalf("the socket still took data after %v", hangLimit)
}

// parkedCount is blockedCount(frame) when it holds over 20ms: a goroutine
// that waits stays blocked, and one caught in a short system call does not.
func parkedCount(frame string) int {
	n := blockedCount(frame)
	if n == 0 {
		return 0
	}
	time.Sleep(20 * time.Millisecond)
	return min(n, blockedCount(frame))
}

// A call is a transfer running on its own goroutine.
type call struct {
	done chan struct{}
	n    int64
	err  error
}

func goCall(f func() (int64, error)) *call {
	c := &call{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		c.n, c.err = f()
	}()
	return c
}

func (c *call) returned() bool { return c.wait(0) }

func (c *call) wait(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-c.done:
		return true
	case <-timer.C:
		return false
	}
}

// run calls f, a transfer from s to d (d nil: a recorder), on a goroutine
// and returns its result. Meanwhile it releases d's reader once f waits,
// ends a datagram source once every datagram was read, and gives up after
// hangLimit.
func run(t *testing.T, frame string, s *src, d *dst, f func() (int64, error)) (n int64, err error, ok bool) {
	t.Helper()
	c := goCall(f)
	released, ended := d == nil, false
	for start := time.Now(); !c.wait(2 * time.Millisecond); {
		if !released && (blockedCount(frame) > 0 || time.Since(start) > 2*time.Second) {
			d.release()
			released = true
		}
		if !ended && s.drained != nil && s.drained() {
			s.end()
			ended = true
		}
		if time.Since(start) > hangLimit {
			t.Errorf("%s did not return in %v", frame, hangLimit)
			if s.end != nil {
				s.end()
			}
			go s.c.Close()
			if d != nil {
				go d.c.Close()
			}
			return 0, nil, false
		}
	}
	if !released {
		d.release()
	}
	return c.n, c.err, true
}

// A ref is what io.Copy, reading with Read and writing with Write only,
// delivers from a kind of source: each piece it wrote, and its result.
// Only so is it what read(2) delivers: io.Copy's own splicing (from a
// *net.TCPConn into an *os.File or another socket) stops at TCP urgent
// data, and with the peer's FIN already in takes it for end of file,
// delivering here 100,000 of the 150,000 bytes without an error.
type ref struct {
	n      int64
	err    error
	chunks [][]byte
}

func (r ref) stream() []byte { return bytes.Join(r.chunks, nil) }

type recorder struct{ chunks [][]byte }

func (r *recorder) Write(p []byte) (int, error) {
	r.chunks = append(r.chunks, bytes.Clone(p))
	return len(p), nil
}

func reference(t *testing.T, sk srcKind) ref {
	t.Helper()
	s := sk.open(t, true)
	var rec recorder
	n, err, ok := run(t, "io.Copy(", s, nil, func() (int64, error) {
		return io.Copy(&rec, struct{ io.Reader }{s.r})
	})
	if !ok {
		t.FailNow()
	}
	return ref{n, err, rec.chunks}
}

// TestMatrix runs Copy and Splice from every kind of source to every kind
// of destination.
func TestMatrix(t *testing.T) {
	refs := map[string]ref{}
	for _, sk := range srcKinds() {
		for _, dk := range dstKinds() {
			t.Run("src="+sk.name+"/dst="+dk.name, func(t *testing.T) {
				want, ok := refs[sk.name]
				if !ok {
					want = reference(t, sk)
					refs[sk.name] = want
				}
				t.Run("Copy", func(t *testing.T) { checkCopy(t, sk, dk, want) })
				t.Run("Splice", func(t *testing.T) { checkSplice(t, sk, dk, want) })
			})
		}
	}
}

// checkCopy checks that Copy delivers what io.Copy delivers.
func checkCopy(t *testing.T, sk srcKind, dk dstKind, want ref) {
	s, d := sk.open(t, true), dk.open(t, false)
	n, err, ok := run(t, "pipe.Copy(", s, d, func() (int64, error) { return pipe.Copy(d.c, s.r) })
	if !ok {
		return
	}
	stream, dgrams := d.finish()
	if n != want.n || (err == nil) != (want.err == nil) {
		t.Errorf("Copy = %d, %v; io.Copy = %d, %v", n, err, want.n, want.err)
	}
	switch {
	case dk.dgram && s.exact:
		if lens(dgrams) != lens(want.chunks) {
			t.Errorf("datagrams of %s bytes arrived; io.Copy sends %s", lens(dgrams), lens(want.chunks))
			break
		}
		for i := range dgrams {
			if !bytes.Equal(dgrams[i], want.chunks[i]) {
				t.Errorf("datagram %d differs from what io.Copy sends", i)
			}
		}
	case dk.dgram:
		// Where io.Copy's pieces depend on timing, they only have bounds.
		for i, b := range dgrams {
			if len(b) == 0 || len(b) > ioCopyBuf {
				t.Errorf("datagram %d of %s has %d bytes; io.Copy sends 1 to %d", i, lens(dgrams), len(b), ioCopyBuf)
				break
			}
		}
		checkBytes(t, bytes.Join(dgrams, nil), want.stream())
	case stream != nil:
		checkBytes(t, stream, want.stream())
	}
}

// checkSplice checks that Splice moves the stream io.Copy delivers, or
// refuses with a documented error.
func checkSplice(t *testing.T, sk srcKind, dk dstKind, want ref) {
	s, d := sk.open(t, true), dk.open(t, false)
	n, err, ok := run(t, "pipe.Splice(", s, d, func() (int64, error) { return spliceToEnd(d.c, s) })
	if !ok {
		return
	}
	stream, dgrams := d.finish()
	kept := stream != nil || dk.dgram
	got := append(stream, bytes.Join(dgrams, nil)...)
	switch why := refusal(sk.kind, dk.kind); {
	case why != "":
		if n != 0 || !errors.Is(err, syscall.EINVAL) || len(got) > 0 {
			t.Errorf("Splice = %d, %v, and %d bytes arrived; want 0 and EINVAL (%s)", n, err, len(got), why)
		}
	case err == nil:
		if n != int64(len(want.stream())) {
			t.Errorf("Splice moved %d bytes to end of file; want %d", n, len(want.stream()))
		}
		if kept {
			checkBytes(t, got, want.stream())
		}
	case sk.tcp && errors.Is(err, syscall.EAGAIN):
		// The kernel splices no further than TCP urgent data.
		if n != urgentAt {
			t.Errorf("Splice stopped with %v after %d bytes; the urgent data is at %d", err, n, urgentAt)
		}
		if kept {
			checkBytes(t, got, want.stream()[:urgentAt])
		}
	default:
		t.Errorf("Splice = %d, %v", n, err)
	}
}

// refusal says why Splice must refuse a pair with EINVAL, or is "".
func refusal(s, d kind) string {
	switch {
	case !s.pipe && !d.pipe:
		return "neither side is a pipe"
	case d.append:
		return "the destination has O_APPEND"
	case s.dgram || d.dgram:
		return "a side is a datagram or seqpacket socket"
	case d.blocking:
		return "the destination is a blocking socket"
	}
	return ""
}

// spliceToEnd calls Splice until end of file, or s.limit bytes.
func spliceToEnd(d side, s *src) (int64, error) {
	var total int64
	for {
		ask := 1 << 20
		if s.limit > 0 {
			if ask = min(ask, s.limit-int(total)); ask == 0 {
				return total, nil
			}
		}
		n, err := pipe.Splice(d, s.c, ask, 0)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

func checkBytes(t *testing.T, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	t.Errorf("%d bytes arrived, differing from the %d expected at byte %d", len(got), len(want), i)
}

// lens lists the sizes of bs, as "[10000 1000]".
func lens(bs [][]byte) string {
	ls := make([]int, len(bs))
	for i, b := range bs {
		ls[i] = len(b)
	}
	return fmt.Sprint(ls)
}

// A waitCase is a transfer that has to wait: from an empty source (its
// writer open) into a pipe with room, or from a pipe holding data (its
// writer open) into a full destination.
type waitCase struct {
	name  string // src=<kind> or dst=<kind>
	kind  kind   // the kind of the side waited on
	onSrc bool
	open  func(t *testing.T) *waiting
}

// waiting is an open waitCase.
type waiting struct {
	s             *src
	d             *dst
	waited, other side
	unblock       func() // makes the waited side ready (end of file, or an error)
}

func waitCases() []waitCase {
	var cs []waitCase
	for _, sk := range srcKinds() {
		if sk.steady {
			continue
		}
		cs = append(cs, waitCase{"src=" + sk.name, sk.kind, true, func(t *testing.T) *waiting {
			s := sk.open(t, false)
			_, w := nonblockingPipe(t)
			return &waiting{s, &dst{c: w}, s.c, w, s.end}
		}})
	}
	for _, dk := range dstKinds() {
		if dk.steady {
			continue
		}
		cs = append(cs, waitCase{"dst=" + dk.name, dk.kind, false, func(t *testing.T) *waiting {
			r, w := nonblockingPipe(t)
			mustWrite(t, w, testData(t, 4096))
			d := dk.open(t, true)
			return &waiting{&src{r: r, c: r}, d, d.c, r, d.unblock}
		}})
	}
	return cs
}

// end makes w's call c return by every means and waits for it.
func (w *waiting) end(t *testing.T, c *call) {
	t.Helper()
	w.unblock()
	go w.waited.Close()
	go w.other.Close()
	if !c.wait(hangLimit) {
		t.Errorf("the call did not return in %v with both sides closed and the side it waited on made ready", hangLimit)
	}
}

type op struct {
	name, frame string
	call        func(w *waiting, flags int) (int64, error)
}

var ops = []op{
	{"Splice", "pipe.Splice(", func(w *waiting, flags int) (int64, error) { return pipe.Splice(w.d.c, w.s.c, 1<<16, flags) }},
	{"Copy", "pipe.Copy(", func(w *waiting, _ int) (int64, error) { return pipe.Copy(w.d.c, w.s.r) }},
}

// refusesAtOnce reports whether op may return EINVAL at once instead of
// waiting: Splice refuses datagram sockets.
func refusesAtOnce(wc waitCase, o op, err error) bool {
	refused := wc.kind.dgram || !wc.onSrc && wc.kind.blocking
	return o.name == "Splice" && refused && errors.Is(err, syscall.EINVAL)
}

// parked waits until a goroutine is parked with o's frame, c being the
// only call waiting, and reports whether it is; if c returned first, it
// checks that it could.
func (w *waiting) parked(t *testing.T, wc waitCase, o op, c *call) bool {
	t.Helper()
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(time.Millisecond) {
		if c.returned() {
			if !refusesAtOnce(wc, o, c.err) {
				t.Errorf("%s returned %d, %v without waiting", o.name, c.n, c.err)
			}
			return false
		}
		if parkedCount(o.frame) > 0 {
			return true
		}
	}
	t.Errorf("%s neither returned nor stayed parked in 5s: does it spin?", o.name)
	w.end(t, c)
	return false
}

// TestMatrixWait checks how a transfer waits on every kind of empty source
// and full destination: with SPLICE_F_NONBLOCK not at all; in the poller
// until the deadline or Close of the side waited on; and never so that
// Close of either side waits for it.
func TestMatrixWait(t *testing.T) {
	for _, wc := range waitCases() {
		t.Run(wc.name+"/Splice/SPLICE_F_NONBLOCK", func(t *testing.T) { checkNonblock(t, wc) })
		for _, o := range ops {
			if wc.kind.poll {
				t.Run(wc.name+"/"+o.name+"/deadline", func(t *testing.T) { checkDeadline(t, wc, o) })
			}
			t.Run(wc.name+"/"+o.name+"/close", func(t *testing.T) { checkClose(t, wc, o) })
		}
	}
}

func checkNonblock(t *testing.T, wc waitCase) {
	w := wc.open(t)
	c := goCall(func() (int64, error) { return ops[0].call(w, pipe.SPLICE_F_NONBLOCK) })
	if !c.wait(waitLimit) {
		t.Errorf("Splice(SPLICE_F_NONBLOCK) still waits after %v", waitLimit)
		w.end(t, c)
		return
	}
	want := syscall.EAGAIN
	if wc.kind.dgram || !wc.onSrc && wc.kind.blocking {
		want = syscall.EINVAL
	}
	if c.n != 0 || !errors.Is(c.err, want) {
		t.Errorf("Splice(SPLICE_F_NONBLOCK) = %d, %v; want 0, %s", c.n, c.err, unix.ErrnoName(want))
	}
}

func checkDeadline(t *testing.T, wc waitCase, o op) {
	w := wc.open(t)
	const after = 50 * time.Millisecond
	setDeadline := w.waited.SetWriteDeadline
	if wc.onSrc {
		setDeadline = w.waited.SetReadDeadline
	}
	if err := setDeadline(time.Now().Add(after)); err != nil {
		t.Fatal(err)
	}
	c := goCall(func() (int64, error) { return o.call(w, 0) })
	if !c.wait(after + waitLimit) {
		t.Errorf("%s still waits %v after the deadline of the side it waits on", o.name, waitLimit)
		w.end(t, c)
		return
	}
	if !errors.Is(c.err, os.ErrDeadlineExceeded) && !refusesAtOnce(wc, o, c.err) {
		t.Errorf("%s = %d, %v; want os.ErrDeadlineExceeded", o.name, c.n, c.err)
	}
}

// checkClose closes both sides while the transfer waits: each Close must
// return at once, and Close of a side in the poller wakes the wait on it.
// A blocking side is then made ready, to end the wait.
func checkClose(t *testing.T, wc waitCase, o op) {
	w := wc.open(t)
	c := goCall(func() (int64, error) { return o.call(w, 0) })
	if !w.parked(t, wc, o, c) {
		return
	}
	if took := closeTakes(w.other, waitLimit, w.unblock); took >= waitLimit {
		t.Errorf("Close of the side %s does not wait on took %v", o.name, took)
	}
	if took := closeTakes(w.waited, waitLimit, w.unblock); took >= waitLimit {
		t.Errorf("Close of the side %s waits on took %v", o.name, took)
	}
	if !wc.kind.poll {
		w.unblock() // neither a deadline nor Close wakes a wait outside the poller
		if !c.wait(hangLimit) {
			t.Errorf("%s did not return once the side it waited on was made ready", o.name)
		}
		return
	}
	if !c.wait(waitLimit) {
		t.Errorf("%s still waits %v after Close of the side it waits on", o.name, waitLimit)
		w.end(t, c)
		return
	}
	if !errors.Is(c.err, os.ErrClosed) && !errors.Is(c.err, net.ErrClosed) {
		t.Errorf("%s = %d, %v after Close; want os.ErrClosed or net.ErrClosed", o.name, c.n, c.err)
	}
}

// TestMatrixIdle starts every wait case at once and checks that the
// process is idle while they wait; if it is not, it measures each case
// alone to name the ones that spin.
func TestMatrixIdle(t *testing.T) {
	for _, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			cases := waitCases()
			ws, calls := make([]*waiting, len(cases)), make([]*call, len(cases))
			for i, wc := range cases {
				ws[i] = wc.open(t)
				calls[i] = goCall(func() (int64, error) { return o.call(ws[i], 0) })
			}
			running := 0
			for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(time.Millisecond) {
				running = 0
				for _, c := range calls {
					if !c.returned() {
						running++
					}
				}
				if parkedCount(o.frame) >= running {
					break
				}
			}
			checkIdle(t, fmt.Sprintf("%d %s calls waiting", running, o.name), 300*time.Millisecond)
			for i, w := range ws {
				w.end(t, calls[i])
			}
			if !t.Failed() {
				return
			}
			for _, wc := range cases {
				t.Run(wc.name, func(t *testing.T) {
					w := wc.open(t)
					c := goCall(func() (int64, error) { return o.call(w, 0) })
					if w.parked(t, wc, o, c) {
						checkIdle(t, o.name+" waiting on "+wc.name, 100*time.Millisecond)
						w.end(t, c)
					}
				})
			}
		})
	}
}
