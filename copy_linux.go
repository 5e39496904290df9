package pipe

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// This file decides whether Copy splices; splice_linux.go moves the bytes.

// smallCopy is the largest *io.LimitedReader copy done with read and write:
// below it, the F_GETFL and fstat calls that tell which way to splice cost
// more than splicing saves (BenchmarkCopy, size=1KiB).
const smallCopy = 32 << 10

// copyChunk is how much Copy asks splice(2) to move at once: the default
// pipe-max-size, as internal/poll uses. A call moves at most what the pipe
// holds or has room for anyway; the size only bounds the request.
const copyChunk = 1 << 20

func copyPipe(dst io.Writer, src io.Reader) (int64, error) {
	written, handled, err := spliceCopy(dst, src)
	if handled {
		return written, err
	}
	return io.Copy(dst, src)
}

// spliceCopy copies src to dst with splice(2) where it can, or with read and
// write where io.Copy would go wrong (route). When handled is false nothing
// was moved and io.Copy is to do the whole job: a side that is no
// descriptor, a pairing route leaves to io.Copy, a pair splice(2) refuses
// before moving anything (EINVAL: a file system without splice), a nil or
// closed side (io.Copy reports it as Read or Write would).
func spliceCopy(dst io.Writer, src io.Reader) (written int64, handled bool, err error) {
	lr, limited := src.(*io.LimitedReader)
	inner := src
	if limited {
		if lr.N <= 0 {
			return 0, true, nil
		}
		inner = lr.R
	}
	sc, ok := inner.(syscall.Conn)
	if !ok {
		return 0, false, nil
	}
	dc, dstConn := dst.(syscall.Conn)
	if !dstConn || limited && lr.N <= smallCopy {
		// No descriptor to splice into, or too small to gain from
		// splicing: plain read and write cost fewer system calls than
		// learning what each side is.
		return readCopy(dst, src, sc, dstConn)
	}
	d, err := open("splice", dc, learnAll)
	if err != nil {
		return 0, false, nil
	}
	if d.kind == kindPipe && d.flags&(unix.O_NONBLOCK|unix.O_APPEND) == unix.O_NONBLOCK && isNetType(inner, "UnixConn") {
		// From a Unix socket into a pipe in the poller, io.Copy splices
		// too, through a buffer pipe, and measured faster (BenchmarkCopy:
		// unix-pipe). A *net.UnixConn is, by the net package's making, a
		// non-blocking AF_UNIX socket, never TCP: io.Copy is right for
		// every type it can have (stream, datagram, seqpacket), so the
		// system calls that would tell which are spared.
		return 0, false, nil
	}
	s, err := open("splice", sc, learnAll)
	if err != nil {
		return 0, false, nil
	}
	switch route(d, s) {
	case viaIOCopy:
		return 0, false, nil
	case viaReadWrite:
		n, err := relay(dst, src, d, s)
		return n, true, err
	case viaSamePipe:
		if !limited && samePipe(d, s) {
			return 0, true, errSamePipe(d, s)
		}
		n, err := relay(dst, src, d, s)
		return n, true, err
	case viaBufPipe:
		if bp := getBufPipe(); bp != nil {
			goSched().point() // for a loop of short Copy calls (see goScheds)
			return staged(dst, src, d, s, bp)
		}
		if d.kind != kindPipe { // out of descriptors: no splice without a pipe
			n, err := relay(dst, src, d, s)
			return n, true, err
		}
	}
	// The splicer's sides are new, and their own schedPoints fall due only
	// in a Copy that lasts; a loop of short Copy calls has the goroutine's
	// (the ways above copy as io.Copy would, and pass through the
	// scheduler as often as it does).
	goSched().point()
	sp := newSplicer(d, s)
	for {
		chunk := copyChunk
		if limited && lr.N < int64(chunk) {
			chunk = int(lr.N)
		}
		n, err := sp.splice(chunk)
		written += n
		if limited {
			lr.N -= n
		}
		switch {
		case err == errRefused:
			// The kernel will not splice this pair any further (TCP urgent
			// data, say): read(2) and write(2) can, and read(2) is what
			// io.Copy would have seen.
			m, err := relay(dst, src, d, s)
			return written + m, true, err
		case written == 0 && errors.Is(err, unix.EINVAL):
			if !limited && samePipe(d, s) {
				return 0, true, errSamePipe(d, s)
			}
			return 0, false, nil // io.Copy can; a limited copy of a pipe into itself ends
		case err != nil || n == 0 || limited && lr.N <= 0:
			return written, true, err
		}
	}
}

// readCopy copies src, whose descriptor sc holds, to dst with read and
// write. A source that may be a TCP socket (mayBeTCP) is read with
// markReader, since its own Read can wait for ever at urgent data; any
// other with its Read, through io.Copy if dst has no descriptor (handled
// false).
func readCopy(dst io.Writer, src io.Reader, sc syscall.Conn, dstConn bool) (int64, bool, error) {
	lr, limited := src.(*io.LimitedReader)
	limit := int64(math.MaxInt64)
	if limited {
		limit = lr.N
	}
	var mr *markReader
	if mayBeTCP(sc) {
		mr = newMarkReader(sc, limit)
	}
	if mr == nil {
		if !dstConn {
			return 0, false, nil
		}
		n, err := readWrite(dst, src)
		return n, true, err
	}
	defer putMarkReader(mr)
	var n int64
	var err error
	if dstConn {
		n, err = readWrite(dst, mr)
	} else {
		n, err = io.Copy(dst, mr) // dst's ReadFrom, say
	}
	if limited {
		lr.N = mr.left
	}
	return n, true, err
}

// readSource returns what reads r's bytes: a markReader if r may be a TCP
// socket (mayBeTCP), else r; done returns the markReader to its pool.
func readSource(r io.Reader) (io.Reader, func()) {
	if c, ok := r.(syscall.Conn); ok && mayBeTCP(c) {
		if mr := newMarkReader(c, math.MaxInt64); mr != nil {
			return mr, func() { putMarkReader(mr) }
		}
	}
	return r, func() {}
}

// mayBeTCP reports whether c may hold a TCP socket: an *os.File or a
// *net.TCPConn may, a *net.UnixConn, *net.UDPConn or *net.IPConn never
// (by the net package's making), and of any other type the kernel is
// asked (getsockopt(2)).
func mayBeTCP(c syscall.Conn) bool {
	if _, isFile := c.(*os.File); isFile || isNetType(c, "TCPConn") {
		return true
	}
	if isNetType(c, "UnixConn") || isNetType(c, "UDPConn") || isNetType(c, "IPConn") {
		return false
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	k := kindOther
	_ = rc.Control(func(fd uintptr) { k, _ = kindOf(int(fd), true) })
	return k == kindTCP
}

// A way is how Copy moves bytes between two sides.
type way int

const (
	viaIOCopy    way = iota // io.Copy does the whole job
	viaSplice               // splice(2) from s to d
	viaBufPipe              // splice(2) through a pipe of Copy's own (staged)
	viaSamePipe             // io.Copy, unless d and s are one pipe (O_APPEND)
	viaReadWrite            // read and write, never splicing (relay)
)

// route decides, from what the kernel says each side is, how Copy moves
// bytes from s to d. It splices only pairings it knows: pipes, regular
// files, /dev/null and /dev/zero, TCP and Unix stream sockets (kind's
// table); everything else is io.Copy's.
func route(d, s *fdConn) way {
	switch {
	case d.blockingSocket() || s.blockingSocket():
		// splice(2) can sleep on a blocking socket with the pipe locked,
		// and so can a Read or Write of its *os.File with the file held:
		// if the file is in the poller, its Close would wait.
		return viaReadWrite
	case !d.kind.copyable() || !s.kind.copyable():
		// A datagram or seqpacket socket would have its messages cut or
		// merged; a terminal or unknown device is read and written as
		// it is meant to be.
		if s.kind == kindTCP || d.kind == kindMessage {
			// io.Copy would splice from a *net.TCPConn into an
			// *os.File, stopping at urgent data, or from a stream into
			// a message socket's *os.File, making one message of it.
			return viaReadWrite
		}
		return viaIOCopy
	case d.flags&unix.O_APPEND != 0:
		// splice(2) refuses O_APPEND; read and write append. Not io.Copy:
		// an *os.File whose O_APPEND came later (F_SETFL) splices from a
		// socket, to EINVAL after draining it, or to the urgent mark. And
		// a pipe copied into itself would go on for ever.
		return viaSamePipe
	case s.kind == kindUnix && d.kind == kindPipe && d.flags&unix.O_NONBLOCK != 0:
		// From a Unix socket into a pipe in the poller, io.Copy splices
		// too, through a buffer pipe, and measured faster
		// (BenchmarkCopy: unix-pipe). Into a blocking pipe it would spin
		// (golang/go#75304), and a TCP socket can carry urgent data,
		// where io.Copy stalls: those are Copy's.
		return viaIOCopy
	case s.kind == kindTCP || s.kind == kindUnix:
		return viaBufPipe
	case d.kind == kindTCP || d.kind == kindFile:
		// Splicing a pipe into a TCP socket or a file holds the pipe
		// locked while the kernel sends or copies, which stalls the
		// pipe's writer; io.Copy's read and write let it run alongside,
		// and were as fast or faster with a child process writing
		// (BenchmarkCopy: child-pipe-tcp, child-pipe-file).
		return viaIOCopy
	case d.kind != kindPipe && s.kind != kindPipe:
		return viaIOCopy // file to /dev/null, say: splice(2) needs a pipe
	}
	return viaSplice
}

// relay copies src to dst with read and write, never splicing: with their
// Read and Write methods, or, for a socket whose descriptor is blocking and
// for a TCP source, with recvfrom(2) and sendmsg(2) and MSG_DONTWAIT,
// waiting in the poller (or poll(2)) in between, so that no call sleeps
// holding the file and none waits at urgent data for ever (dontWait).
func relay(dst io.Writer, src io.Reader, d, s *fdConn) (int64, error) {
	if d.blockingSocket() {
		dst = dontWait{d}
	}
	if !s.blockingSocket() && s.kind != kindTCP {
		return readWrite(dst, src)
	}
	if lr, ok := src.(*io.LimitedReader); ok {
		limited := &io.LimitedReader{R: dontWait{s}, N: lr.N}
		n, err := readWrite(dst, limited)
		lr.N = limited.N
		return n, err
	}
	return readWrite(dst, dontWait{s})
}

// dontWait reads and writes a socket as its *os.File would, with two
// differences. The system calls never sleep (MSG_DONTWAIT), and the waits
// happen in the runtime poller, or in poll(2) on a duplicate descriptor, so
// that Close never waits for them (a socket whose descriptor is blocking).
// And a read that meets an EAGAIN at TCP urgent data with more to read
// past it tries again rather than park (afterEAGAIN): read(2) answers so
// while a signal is pending, and a Read of the net package or os then waits
// for an edge that never comes (a TCP source); one on a socket shut for
// reading ends, as a blocking read(2) does.
type dontWait struct{ s *fdConn }

func (w dontWait) Read(b []byte) (int, error) {
	var (
		n     int
		errno error
		again bool
		stall stallGuard
	)
	recv := func(fd int) (int, error) {
		return ignoringEINTR(func() (int, error) {
			n, _, err := unix.Recvfrom(fd, b, unix.MSG_DONTWAIT)
			return n, err
		})
	}
	for {
		if _, err := w.s.await("read", unix.POLLIN, func(fd int) bool {
			n, errno = recv(fd)
			again = false
			if errno == unix.EAGAIN {
				var shut bool
				if again, shut = afterEAGAIN(fd); shut {
					// Shut for reading, seen after the first try: bytes
					// may have come in between. Asked again, a stream
					// gives them or 0; an EAGAIN now is the end, where a
					// blocking read(2) returns 0 (a datagram socket).
					if n, errno = recv(fd); errno == unix.EAGAIN {
						n, errno = 0, nil
					}
				}
			}
			return errno != unix.EAGAIN || again
		}); err != nil {
			return 0, err
		}
		if !again {
			break
		}
		stall.pause()
	}
	switch {
	case errno != nil:
		return 0, os.NewSyscallError("recvfrom", errno)
	case n == 0 && len(b) > 0:
		return 0, io.EOF // as an *os.File says of a 0 from read(2)
	}
	return n, nil
}

func (w dontWait) Write(b []byte) (int, error) {
	written := 0
	for written < len(b) {
		var (
			n     int
			errno error
		)
		if _, err := w.s.await("write", unix.POLLOUT, func(fd int) bool {
			n, errno = ignoringEINTR(func() (int, error) {
				return unix.SendmsgN(fd, b[written:], nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
			})
			return errno != unix.EAGAIN
		}); err != nil {
			return written, err
		}
		if errno != nil {
			return written, os.NewSyscallError("sendmsg", errno)
		}
		written += n
	}
	return written, nil
}

// markReader reads up to a limit from a stream as its Read method would,
// read(2) by read(2) in its RawConn, with one difference: an EAGAIN at TCP
// urgent data with more to read past it is tried again (afterEAGAIN). There
// read(2) answers EAGAIN while a signal is pending (the runtime's preemption
// signal, say), although all the data may already be there; the Read
// methods of os and net then wait for an edge that never comes. Copy reads
// with it what may be a TCP socket where it has not learnt what the
// descriptor is (readCopy). Pooled, so that a copy allocates only its
// RawConn.
type markReader struct {
	c     syscall.Conn
	rc    syscall.RawConn
	left  int64 // bytes still to read
	b     []byte
	n     int
	errno error
	again bool
	try   func(fd uintptr) bool
}

var markReaders = sync.Pool{New: func() any {
	r := &markReader{}
	r.try = r.read
	return r
}}

// newMarkReader returns a pooled markReader of c, which putMarkReader
// returns, or nil if c has no RawConn.
func newMarkReader(c syscall.Conn, limit int64) *markReader {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	r := markReaders.Get().(*markReader)
	r.c, r.rc, r.left = c, rc, limit
	return r
}

func putMarkReader(r *markReader) {
	r.c, r.rc, r.b, r.errno = nil, nil, nil, nil
	markReaders.Put(r)
}

// read is one try: read(2), and on EAGAIN whether to try again at once
// (afterEAGAIN) or park.
func (r *markReader) read(fd uintptr) bool {
	r.n, r.errno = ignoringEINTR(func() (int, error) { return unix.Read(int(fd), r.b) })
	r.again = false
	if r.errno == unix.EAGAIN {
		r.again, _ = afterEAGAIN(int(fd)) // shut for reading: its Read waits too
	}
	return r.errno != unix.EAGAIN || r.again
}

func (r *markReader) Read(b []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > r.left {
		b = b[:r.left]
	}
	r.b = b
	defer func() { r.b = nil }()
	var stall stallGuard
	for {
		r.errno = nil
		if err := r.rc.Read(r.try); err != nil {
			closed := r.rc.Control(func(uintptr) {}) != nil
			if r.errno == unix.EAGAIN && !closed && !errors.Is(err, os.ErrDeadlineExceeded) {
				// Not in the poller (its descriptor was blocking): its
				// Read reports the EAGAIN.
				return 0, &os.PathError{Op: "read", Path: nameOf(r.c), Err: unix.EAGAIN}
			}
			if closed {
				return 0, (&fdConn{c: r.c, rc: r.rc}).closedOr("read", err)
			}
			if _, isFile := r.c.(*os.File); isFile {
				err = &os.PathError{Op: "read", Path: nameOf(r.c), Err: err} // as its Read says
			}
			return 0, err
		}
		if !r.again {
			break
		}
		stall.pause()
	}
	switch {
	case r.errno != nil:
		return 0, &os.PathError{Op: "read", Path: nameOf(r.c), Err: r.errno}
	case r.n == 0 && len(b) > 0:
		return 0, io.EOF
	}
	r.left -= int64(r.n)
	return r.n, nil
}

// isNetType reports whether c is a pointer to the type of package net
// named name, by its type's identity (a type of package net cannot be
// defined elsewhere), without importing net.
func isNetType(c any, name string) bool {
	t := reflect.TypeOf(c)
	return t != nil && t.Kind() == reflect.Pointer && t.Elem().PkgPath() == "net" && t.Elem().Name() == name
}

// readWrite copies src to dst with their Read and Write methods only, so
// that no ReaderFrom or WriterTo splices again, through a pooled buffer of
// io.Copy's size.
func readWrite(dst io.Writer, src io.Reader) (int64, error) {
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, *buf)
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, smallCopy); return &b }}

// errSamePipe is Copy's error for a pipe copied into itself.
func errSamePipe(d, s *fdConn) error {
	return fmt.Errorf("pipe: Copy from %s to %s: the source and destination are the same pipe: %w",
		nameOf(s.c), nameOf(d.c), os.NewSyscallError("splice", unix.EINVAL))
}

// samePipe reports whether d and s are descriptors of one pipe, which
// splice(2) refuses with EINVAL and io.Copy would copy into itself for ever.
func samePipe(d, s *fdConn) bool {
	var ds, ss unix.Stat_t
	_, errno, err := both("fstat", d, s, func(dfd, sfd int) (int, error) {
		if err := unix.Fstat(dfd, &ds); err != nil {
			return 0, err
		}
		return 0, unix.Fstat(sfd, &ss)
	})
	return err == nil && errno == nil && ds.Mode&unix.S_IFMT == unix.S_IFIFO && ds.Dev == ss.Dev && ds.Ino == ss.Ino
}

// A splicer splices from s into d again and again, up to n bytes a call,
// through one transferer: each chunk allocates nothing.
type splicer struct {
	n int
	t *transferer
}

func newSplicer(d, s *fdConn) *splicer {
	sp := &splicer{}
	sp.t = newTransferer("splice", d, s, 0, sp.call)
	return sp
}

// call is the transfer's call. No SPLICE_F_MORE: on a socket it would hold
// back the last bytes.
func (sp *splicer) call(dfd, sfd int) (int, error) {
	m, err := unix.Splice(sfd, nil, dfd, nil, sp.n, SPLICE_F_NONBLOCK)
	return int(m), err // int64 on 64-bit arches, int on 386, arm, mips and ppc
}

// splice moves up to n bytes, as transfer does.
func (sp *splicer) splice(n int) (int64, error) {
	sp.n = n
	return sp.t.run()
}

// staged copies from a socket s into d, which must be a pipe for any
// splice to work, through the buffer pipe bp: each round drains what the
// socket holds into bp, up to copyChunk in one call, then pumps it all into d.
// Spliced straight into d, a socket moves only what d has room for per
// call, and internal/poll's own splice, which io.Copy uses from a socket
// to a pipe, goes through such a buffer pipe too (BenchmarkCopy: tcp-pipe,
// unix-pipe).
func staged(dst io.Writer, src io.Reader, d, s *fdConn, bp *bufPipe) (written int64, handled bool, err error) {
	lr, limited := src.(*io.LimitedReader)
	defer func() { putBufPipe(bp) }()
	in, out := newSplicer(bp.wc, s), newSplicer(d, bp.rc)
	for {
		chunk := copyChunk
		if limited && lr.N < int64(chunk) {
			chunk = int(lr.N)
		}
		n, err := in.splice(chunk)
		switch {
		case err == errRefused:
			m, err := relay(dst, src, d, s)
			return written + m, true, err
		case written == 0 && errors.Is(err, unix.EINVAL):
			return 0, false, nil // not a pipe: io.Copy's turn
		case err != nil || n == 0:
			return written, true, err
		}
		if limited {
			lr.N -= n
		}
		bp.held += n
		for bp.held > 0 {
			m, err := out.splice(int(bp.held))
			written += m
			bp.held -= m
			if err == nil && m == 0 {
				err = io.ErrUnexpectedEOF // bp held data yet gave none
			}
			if errors.Is(err, unix.EINVAL) {
				// d refuses splice(2) after all (a regular file of procfs,
				// say): what bp holds goes with read and write, and so does
				// the rest.
				m, err := unstage(dst, bp)
				written += m
				if err != nil {
					return written, true, err
				}
				m, err = relay(dst, src, d, s)
				return written + m, true, err
			}
			if err != nil {
				return written, true, err
			}
		}
		if limited && lr.N <= 0 {
			return written, true, nil
		}
	}
}

// unstage writes what bp holds to dst with its Write method, and returns
// how many bytes it wrote.
func unstage(dst io.Writer, bp *bufPipe) (int64, error) {
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	fd := int(bp.rc.rc.(rawFD))
	var written int64
	for bp.held > 0 {
		n, err := ignoringEINTR(func() (int, error) { return unix.Read(fd, (*buf)[:min(int64(len(*buf)), bp.held)]) })
		switch {
		case err != nil:
			return written, os.NewSyscallError("read", err)
		case n == 0:
			return written, io.ErrUnexpectedEOF // bp held data yet gave none
		}
		bp.held -= int64(n)
		m, err := dst.Write((*buf)[:n])
		written += int64(m)
		if err == nil && m < n {
			err = io.ErrShortWrite
		}
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// A bufPipe is a pipe of Copy's own, between a socket and the destination
// pipe. Its descriptors are raw: only Copy uses them, never waiting on them.
type bufPipe struct {
	rc, wc  *fdConn // the read and write ends
	held    int64   // bytes in the pipe
	cleanup runtime.Cleanup
}

// bufPipes keeps buffer pipes between Copy calls; a pipe the pool drops is
// closed by its cleanup.
var bufPipes sync.Pool

func getBufPipe() *bufPipe {
	if bp, ok := bufPipes.Get().(*bufPipe); ok {
		return bp
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil // out of descriptors, say: splice directly
	}
	// A larger pipe drains more per call; past pipe-max-size or the user's
	// page limits the default capacity still works, so the error is
	// ignored.
	_, _ = unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, copyChunk)
	// Copy drains into bp only when it is empty and pumps out of it only
	// what it holds, so neither end ever answers EAGAIN: steady.
	// They are pipes, but it says steady (kindFile) of them, since an
	// EAGAIN from a transfer with one of them is the other side's.
	bp := &bufPipe{
		rc: &fdConn{rc: rawFD(p[0]), flags: unix.O_RDONLY | unix.O_NONBLOCK, kind: kindFile},
		wc: &fdConn{rc: rawFD(p[1]), flags: unix.O_WRONLY | unix.O_NONBLOCK, kind: kindFile},
	}
	bp.cleanup = runtime.AddCleanup(bp, func(p [2]int) {
		_ = unix.Close(p[0]) // nothing to report to
		_ = unix.Close(p[1])
	}, p)
	return bp
}

// putBufPipe returns an empty bp to the pool. One that still holds bytes (a
// copy failed midway) is closed at once: its pages count against the user's
// pipe limits, and its bytes must never reach another copy.
func putBufPipe(bp *bufPipe) {
	if bp.held == 0 {
		bufPipes.Put(bp)
		return
	}
	bp.cleanup.Stop()
	_ = unix.Close(int(bp.rc.rc.(rawFD))) // nothing to report to
	_ = unix.Close(int(bp.wc.rc.(rawFD)))
}

// rawFD is a syscall.RawConn for a descriptor that only this package holds
// and that is not in the runtime poller: Control runs at once, and Read and
// Write cannot wait.
type rawFD int

func (fd rawFD) Control(f func(uintptr)) error    { f(uintptr(fd)); return nil }
func (fd rawFD) Read(f func(uintptr) bool) error  { return fd.run(f) }
func (fd rawFD) Write(f func(uintptr) bool) error { return fd.run(f) }

func (fd rawFD) run(f func(uintptr) bool) error {
	if f(uintptr(fd)) {
		return nil
	}
	return errNotPolled
}

// errNotPolled is rawFD's answer to a wait; fdConn.await then uses poll(2).
var errNotPolled = errors.New("pipe: descriptor not in the runtime poller")
