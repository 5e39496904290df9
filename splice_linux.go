package pipe

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// This file is the mechanism behind Splice, Tee, Vmsplice and Copy: one
// system call between two descriptors, and the waiting around it.
//
// Two rules keep Close and the CPU honest:
//
//  1. A call that holds both descriptors (RawConn.Control on each) never
//     sleeps in the kernel: pipes are passed SPLICE_F_NONBLOCK, and a side
//     that could still sleep (a blocking socket or terminal, say) is polled
//     ready first, holding only its own reference. So Close of either side
//     never waits for a call that sleeps on the other.
//  2. Every EAGAIN parks: in the runtime poller on the side that is not
//     ready, or in poll(2) on that side alone when it is a blocking
//     descriptor. When both sides poll ready and the kernel still answers
//     EAGAIN (TCP urgent data stops tcp_splice_read so), a stallGuard sleeps
//     between tries and soon gives up with errRefused.

// errRefused reports a pair the kernel will not splice although both sides
// are ready. Splice wraps it; Copy finishes with read and write instead.
var errRefused = errors.New("the kernel answers EAGAIN although both sides poll ready (for example TCP urgent data)")

// An fdConn is one side of a transfer: a file or socket, its RawConn, and
// what the transfer must know about its descriptor.
type fdConn struct {
	c  syscall.Conn
	rc syscall.RawConn
	// flags are the descriptor's F_GETFL flags.
	flags int
	// mayBlock marks a blocking descriptor that a call can sleep on even
	// with SPLICE_F_NONBLOCK: not a pipe, a regular file or a memory
	// device such as /dev/null. Such a side is polled ready, alone, before
	// each call that holds both sides (rule 1).
	mayBlock bool
	// steady marks a side that never answers EAGAIN (a regular file, a
	// disk, /dev/null): an EAGAIN is then the other side's.
	steady bool
	// socket marks a socket, the only kind of side seen to answer EAGAIN
	// while poll(2) says it is ready; tcp a TCP one.
	socket, tcp bool
	// regular marks a regular file.
	regular bool
}

// netConn is what *net.TCPConn and *net.UnixConn have and *os.File lacks.
// net's sockets are always non-blocking, so they need no F_GETFL.
type netConn interface {
	syscall.Conn
	CloseRead() error
}

// open gets c's RawConn and what a transfer must know of its descriptor:
// for a file its F_GETFL flags and, only when it is blocking, its type. A
// nil c gives os.ErrInvalid, and so does a nil *os.File in it, whose
// SyscallConn says so; a closed one os.ErrClosed.
func open(op string, c syscall.Conn) (*fdConn, error) {
	if c == nil {
		return nil, &os.PathError{Op: op, Path: "<nil>", Err: os.ErrInvalid}
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, &os.PathError{Op: op, Path: nameOf(c), Err: err}
	}
	s := &fdConn{c: c, rc: rc}
	if _, ok := c.(netConn); ok {
		s.flags, s.socket = unix.O_RDWR|unix.O_NONBLOCK, true
		_, s.tcp = c.(interface{ SetKeepAlive(bool) error }) // *net.TCPConn
		return s, nil
	}
	var errno error
	err = rc.Control(func(fd uintptr) {
		if s.flags, errno = unix.FcntlInt(fd, unix.F_GETFL, 0); errno != nil || s.flags&unix.O_NONBLOCK != 0 {
			return
		}
		var st unix.Stat_t
		if errno = unix.Fstat(int(fd), &st); errno != nil {
			return
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFIFO:
			// A pipe obeys SPLICE_F_NONBLOCK.
		case unix.S_IFREG, unix.S_IFBLK:
			s.steady = true // disks are not waited for
			s.regular = st.Mode&unix.S_IFMT == unix.S_IFREG
		case unix.S_IFCHR:
			// Major 1 is the memory devices (/dev/null, /dev/zero, ...),
			// always ready.
			s.steady = unix.Major(uint64(st.Rdev)) == 1
			s.mayBlock = !s.steady
		case unix.S_IFSOCK:
			s.mayBlock, s.socket = true, true
		default:
			s.mayBlock = true
		}
	})
	if err != nil {
		return nil, s.closedOr(op, err)
	}
	if errno != nil {
		return nil, os.NewSyscallError("fcntl", errno)
	}
	return s, nil
}

// nameOf names c in errors: a file's name, or its type.
func nameOf(c syscall.Conn) string {
	if f, ok := c.(*os.File); ok && f != nil {
		return f.Name()
	}
	return fmt.Sprintf("%T", c)
}

// closedOr returns the error for a RawConn call of s that failed with err.
// If s is now closed, that is the cause: a file says os.ErrClosed (the
// poller's own error for it matches nothing), a network connection keeps
// net.ErrClosed. Other errors, such as os.ErrDeadlineExceeded, pass through.
func (s *fdConn) closedOr(op string, err error) error {
	if s.rc.Control(func(uintptr) {}) == nil {
		return err
	}
	if _, ok := s.c.(*os.File); ok {
		return &os.PathError{Op: op, Path: nameOf(s.c), Err: os.ErrClosed}
	}
	return err
}

// both runs call with the descriptors of dst and src, each kept open by its
// RawConn's Control for the duration, and retries it on EINTR. call must not
// sleep (rule 1). err reports a closed side; errno is the call's own.
//
// A side that may block (see mayBlock) can make even a call on a ready pair
// sleep: a blocking socket or terminal takes everything it is given before
// it returns. Then the other side, the pipe, is held by a duplicate
// descriptor of this call's own instead of its RawConn, so that its Close
// never waits; the blocking side's Close does not wait for calls anyway.
func both(op string, dst, src *fdConn, call func(dfd, sfd int) (int, error)) (n int, errno, err error) {
	if dst.mayBlock || src.mayBlock {
		return bothDup(op, dst, src, call)
	}
	var dstErr error
	err = src.rc.Control(func(s uintptr) {
		dstErr = dst.rc.Control(func(d uintptr) {
			n, errno = ignoringEINTR(func() (int, error) { return call(int(d), int(s)) })
		})
	})
	if err != nil {
		return 0, nil, src.closedOr(op, err)
	}
	if dstErr != nil {
		return 0, nil, dst.closedOr(op, dstErr)
	}
	return n, errno, nil
}

// bothDup is both for a pair with a side that may block.
func bothDup(op string, dst, src *fdConn, call func(dfd, sfd int) (int, error)) (n int, errno, err error) {
	blocking, other := dst, src
	if src.mayBlock {
		blocking, other = src, dst
	}
	dup := -1
	if err = other.rc.Control(func(fd uintptr) {
		dup, errno = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return 0, nil, other.closedOr(op, err)
	}
	if errno != nil {
		return 0, os.NewSyscallError("fcntl", errno), nil // EMFILE, say
	}
	defer func() { _ = unix.Close(dup) }() // our own duplicate; nothing to report
	if err = blocking.rc.Control(func(fd uintptr) {
		d, s := int(fd), dup
		if blocking == src {
			d, s = dup, int(fd)
		}
		n, errno = ignoringEINTR(func() (int, error) { return call(d, s) })
	}); err != nil {
		return 0, nil, blocking.closedOr(op, err)
	}
	return n, errno, nil
}

// transfer runs call, one splice(2) or tee(2) from src to dst, which
// always includes SPLICE_F_NONBLOCK, until it moves something, finds EOF (0)
// or fails. On EAGAIN it parks on the side that is not ready (rule 2),
// unless the caller asked for SPLICE_F_NONBLOCK, which gets EAGAIN back.
func transfer(op string, dst, src *fdConn, flags int, call func(dfd, sfd int) (int, error)) (int64, error) {
	t := &attempt{op: op, dst: dst, src: src, call: call}
	var stalls stallGuard
	for {
		if err := src.readyFirst(op, unix.POLLIN); err != nil {
			return 0, err
		}
		if err := dst.readyFirst(op, unix.POLLOUT); err != nil {
			return 0, err
		}
		// When one side never answers EAGAIN, an EAGAIN is the other's: make
		// each attempt inside that side's wait, as internal/poll does, so
		// that the attempt itself tells whether to park.
		var side *fdConn
		switch {
		case flags&SPLICE_F_NONBLOCK != 0:
		case dst.steady:
			side = src
		case src.steady:
			side = dst
		}
		var (
			parked bool
			err    error
		)
		if side != nil {
			parked, err = t.inWait(side)
		} else {
			t.run()
		}
		switch {
		case err != nil:
			return 0, err
		case t.err != nil:
			return 0, t.err
		case t.errno == nil && t.n == 0 && src.socket && !src.atEOF():
			// A blocking socket's splice answers 0, not EAGAIN, at TCP
			// urgent data, though the stream goes on.
			return 0, errRefused
		case t.errno == nil:
			return int64(t.n), nil
		case t.errno != unix.EAGAIN || flags&SPLICE_F_NONBLOCK != 0:
			if t.errno == unix.EINVAL && op == "splice" && dst.flags&unix.O_APPEND != 0 {
				return 0, fmt.Errorf("pipe: splice: destination %s was opened with O_APPEND: %w",
					nameOf(dst.c), os.NewSyscallError(op, t.errno))
			}
			return 0, os.NewSyscallError(op, t.errno)
		}
		if side == nil {
			if parked, err = waitEither(op, dst, src); err != nil {
				return 0, err
			}
		}
		if parked {
			stalls = 0
		} else if err := stalls.next(); err != nil {
			return 0, err
		}
	}
}

// An attempt is one call of a transfer, and its outcome.
type attempt struct {
	op       string
	dst, src *fdConn
	call     func(dfd, sfd int) (int, error)

	n          int
	errno, err error
}

func (t *attempt) run() {
	t.n, t.errno, t.err = both(t.op, t.dst, t.src, t.call)
}

// inWait makes attempts inside side's RawConn.Read (side is the source) or
// Write (the destination), parking in the runtime poller while they say
// EAGAIN. A socket that answers EAGAIN but polls ready is not waited for:
// inWait returns, reporting it did not park. A side the poller does not
// watch is waited for in poll(2).
func (t *attempt) inWait(side *fdConn) (parked bool, err error) {
	events := int16(unix.POLLOUT)
	if side == t.src {
		events = unix.POLLIN
	}
	calls := 0
	try := func(fd uintptr) bool {
		calls++
		t.run()
		if t.err != nil || t.errno != unix.EAGAIN {
			return true
		}
		return side.socket && ready(int(fd), events)
	}
	if events == unix.POLLIN {
		err = side.rc.Read(try)
	} else {
		err = side.rc.Write(try)
	}
	switch {
	case err == nil:
		return calls > 1, nil
	case calls == 0 || errors.Is(err, os.ErrDeadlineExceeded):
		return false, side.closedOr(t.op, err) // closed, or the deadline struck
	}
	// Not in the poller (or closed while parked): wait in poll(2), holding
	// only this side, and let the caller try again.
	t.errno = unix.EAGAIN
	if cerr := side.rc.Control(func(fd uintptr) { pollFD(int(fd), events, -1) }); cerr != nil {
		return false, side.closedOr(t.op, cerr)
	}
	return true, nil
}

// readyFirst waits, for a side that may sleep in the kernel (see mayBlock),
// until poll(2) reports it ready, holding only its own reference; for other
// sides it does nothing.
func (s *fdConn) readyFirst(op string, events int16) error {
	if !s.mayBlock {
		return nil
	}
	if err := s.rc.Control(func(fd uintptr) { pollFD(int(fd), events, -1) }); err != nil {
		return s.closedOr(op, err)
	}
	return nil
}

// waitEither finds, after an EAGAIN, which side is not ready, with one
// poll(2) of both, and waits for it: the source if it is empty, else the
// destination if it is full. It reports whether it waited; false means both
// sides were ready. Only the side waited on is touched, so the other side's
// deadline, even one long past, plays no part.
func waitEither(op string, dst, src *fdConn) (parked bool, err error) {
	var srcReady, dstReady bool
	_, _, err = both(op, dst, src, func(dfd, sfd int) (int, error) {
		fds := []unix.PollFd{{Fd: int32(sfd), Events: unix.POLLIN}, {Fd: int32(dfd), Events: unix.POLLOUT}}
		if _, err := unix.Poll(fds, 0); err != nil {
			return 0, err // EINTR is retried; nothing else happens with a zero timeout
		}
		srcReady, dstReady = fds[0].Revents != 0, fds[1].Revents != 0
		return 0, nil
	})
	switch {
	case err != nil:
		return false, err
	case !srcReady:
		return src.wait(op, unix.POLLIN)
	case !dstReady:
		return dst.wait(op, unix.POLLOUT)
	}
	return false, nil
}

// atEOF reports whether the socket s has reached end of stream: a peek of
// one byte without waiting finds 0. Data waiting, or none yet (EAGAIN),
// means it has not.
func (s *fdConn) atEOF() bool {
	var n int
	var err error
	if s.rc.Control(func(fd uintptr) {
		n, _, err = unix.Recvfrom(int(fd), make([]byte, 1), unix.MSG_PEEK|unix.MSG_DONTWAIT)
	}) != nil {
		return true // closed: nothing more will come
	}
	return err == nil && n == 0
}

// wait returns false at once if s is ready for events (POLLIN or POLLOUT);
// otherwise it parks until the runtime poller sees s become ready, through
// the RawConn's Read or Write, which also applies s's deadline and wakes if
// s is closed, and returns true. Readiness is checked with poll(2) inside
// that call: the poller is edge-triggered and only events after the call
// began would wake it.
//
// A descriptor the poller does not watch (a blocking one) makes the RawConn
// refuse to wait; then poll(2) waits, holding only s, as its own Read or
// Write would hold the thread.
func (s *fdConn) wait(op string, events int16) (parked bool, err error) {
	first, wasReady := true, false
	check := func(fd uintptr) bool {
		if !first {
			return true // woken by the poller
		}
		first = false
		wasReady = ready(int(fd), events)
		return wasReady
	}
	if events == unix.POLLIN {
		err = s.rc.Read(check)
	} else {
		err = s.rc.Write(check)
	}
	switch {
	case err == nil:
		return !wasReady, nil
	case first || errors.Is(err, os.ErrDeadlineExceeded):
		// The check never ran (closed, or deadline already past), or the
		// deadline struck while parked.
		return false, s.closedOr(op, err)
	case wasReady:
		return false, nil
	}
	// Not in the poller: wait in poll(2).
	if cerr := s.rc.Control(func(fd uintptr) { pollFD(int(fd), events, -1) }); cerr != nil {
		return false, s.closedOr(op, cerr)
	}
	return true, nil
}

// ready reports whether fd is ready for events without waiting. Errors and
// hang-ups count as ready: the next call reports them.
func ready(fd int, events int16) bool {
	return pollFD(fd, events, 0)
}

// pollFD waits up to timeout milliseconds (-1: for ever) for fd to be ready
// for events, and reports whether it is.
func pollFD(fd int, events int16, timeout int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
	n, err := ignoringEINTR(func() (int, error) { return unix.Poll(fds, timeout) })
	return err != nil || (n > 0 && fds[0].Revents != 0)
}

// A stallGuard counts the EAGAIN answers in a row that came while both
// sides polled ready, which no waiting can cure. A race (data arriving
// between the call and the poll) gives one; TCP urgent data gives them for
// ever. next lets the caller try again at once the first time, then after
// sleeping 1, 2, 4 and 8 ms, and then reports errRefused.
type stallGuard int

func (g *stallGuard) next() error {
	*g++
	switch {
	case *g == 1:
		return nil
	case *g <= 5:
		time.Sleep(time.Millisecond << (*g - 2))
		return nil
	}
	return errRefused
}

// refusedError is what Splice and Tee return for errRefused: EAGAIN, with
// the reason.
func refusedError(op string, c syscall.Conn) error {
	return fmt.Errorf("pipe: %s to %s: %w: %w", op, nameOf(c), errRefused, os.NewSyscallError(op, unix.EAGAIN))
}

func splice(dst, src syscall.Conn, n int, flags int) (int64, error) {
	if n < 0 {
		return 0, os.NewSyscallError("splice", unix.EINVAL)
	}
	d, s, err := openBoth("splice", dst, src)
	if err != nil || n == 0 {
		return 0, err
	}
	m, err := transfer("splice", d, s, flags, func(dfd, sfd int) (int, error) {
		m, err := unix.Splice(sfd, nil, dfd, nil, n, flags|SPLICE_F_NONBLOCK)
		return int(m), err // int64 on 64-bit arches, int on 386, arm, mips and ppc
	})
	if err == errRefused {
		err = refusedError("splice", dst)
	}
	return m, err
}

func tee(dst, src *os.File, n int, flags int) (int64, error) {
	if n < 0 {
		return 0, os.NewSyscallError("tee", unix.EINVAL)
	}
	d, s, err := openBoth("tee", dst, src) // a nil *os.File's SyscallConn says os.ErrInvalid
	if err != nil || n == 0 {
		return 0, err
	}
	m, err := transfer("tee", d, s, flags, func(dfd, sfd int) (int, error) {
		m, err := unix.Tee(sfd, dfd, n, flags|SPLICE_F_NONBLOCK)
		return int(m), err
	})
	if err == errRefused {
		err = refusedError("tee", dst)
	}
	return m, err
}

// openBoth opens both sides of a transfer, dst first, as in the signatures.
func openBoth(op string, dst, src syscall.Conn) (d, s *fdConn, err error) {
	if d, err = open(op, dst); err != nil {
		return nil, nil, err
	}
	if s, err = open(op, src); err != nil {
		return nil, nil, err
	}
	return d, s, nil
}

// maxIovecs is the most iovecs one vmsplice(2) takes (UIO_MAXIOV).
const maxIovecs = 1024

func vmsplice(w *os.File, bufs [][]byte, flags int) (int, error) {
	s, err := openWriteEnd(w)
	if err != nil {
		return 0, err
	}
	return s.vmsplice(bufs, flags)
}

// openWriteEnd opens w for vmsplice(2), refusing a read end, on which
// vmsplice(2) would read the pipe into the buffers instead.
func openWriteEnd(w *os.File) (*fdConn, error) {
	s, err := open("vmsplice", w)
	if err != nil {
		return nil, err
	}
	if s.flags&unix.O_ACCMODE == unix.O_RDONLY {
		return nil, fmt.Errorf("pipe: vmsplice: %s is a read end: %w", w.Name(), os.NewSyscallError("vmsplice", unix.EBADF))
	}
	return s, nil
}

// vmsplice maps all of bufs into the pipe behind the write end s.
func (s *fdConn) vmsplice(bufs [][]byte, flags int) (int, error) {
	var (
		total  int
		i, off int // bufs[i][off:] is the first byte not yet in the pipe
		iovs   []unix.Iovec
		stalls stallGuard
	)
	for {
		iovs = iovs[:0]
		for j := i; j < len(bufs) && len(iovs) < maxIovecs; j++ {
			b := bufs[j]
			if j == i {
				b = b[off:]
			}
			if len(b) > 0 {
				iov := unix.Iovec{Base: &b[0]}
				iov.SetLen(len(b))
				iovs = append(iovs, iov)
			}
		}
		if len(iovs) == 0 {
			return total, nil
		}
		// vmsplice(2), unlike splice and tee, ignores the descriptor's
		// O_NONBLOCK, so SPLICE_F_NONBLOCK is always passed, and the call
		// is made inside w's RawConn.Write, which parks in the poller
		// while the pipe is full, as Write does. A blocking pipe, which
		// the poller does not watch, is waited for in poll(2).
		var (
			n     int
			errno error
			calls int
		)
		try := func(fd uintptr) bool {
			calls++
			n, errno = ignoringEINTR(func() (int, error) {
				return unix.Vmsplice(int(fd), iovs, flags|SPLICE_F_NONBLOCK)
			})
			return errno != unix.EAGAIN || flags&SPLICE_F_NONBLOCK != 0
		}
		if err := s.rc.Write(try); err != nil {
			if calls == 0 || errors.Is(err, os.ErrDeadlineExceeded) {
				return total, s.closedOr("vmsplice", err)
			}
			parked, err := s.wait("vmsplice", unix.POLLOUT) // not in the poller: poll(2)
			if err != nil {
				return total, err
			}
			if parked {
				stalls = 0
			} else if stalls.next() != nil {
				return total, refusedError("vmsplice", s.c)
			}
			continue
		}
		switch {
		case errno == unix.EAGAIN: // SPLICE_F_NONBLOCK from the caller
			if total > 0 {
				return total, nil // a partial move; the caller asked not to wait
			}
			return 0, os.NewSyscallError("vmsplice", errno)
		case errno != nil:
			return total, os.NewSyscallError("vmsplice", errno)
		case n == 0:
			// A write end never maps nothing without an error; do not
			// loop on it.
			return total, io.ErrShortWrite
		}
		total += n
		stalls = 0
		for n > 0 { // advance past what the kernel took
			if k := len(bufs[i]) - off; n >= k {
				n -= k
				i, off = i+1, 0
			} else {
				off += n
				n = 0
			}
		}
	}
}
