package pipe

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Flags for [Splice], [Tee] and [Vmsplice].
const (
	// SPLICE_F_MOVE asks to move pages rather than copy them. Since Linux
	// 2.6.21 it has no effect; it is accepted for compatibility.
	SPLICE_F_MOVE = unix.SPLICE_F_MOVE

	// SPLICE_F_NONBLOCK makes the call return EAGAIN instead of waiting
	// when a pipe side is not ready. The other side still blocks or not
	// according to its own O_NONBLOCK flag.
	SPLICE_F_NONBLOCK = unix.SPLICE_F_NONBLOCK

	// SPLICE_F_MORE hints that more data follows, as MSG_MORE does for a
	// socket destination.
	SPLICE_F_MORE = unix.SPLICE_F_MORE

	// SPLICE_F_GIFT, for Vmsplice only, gives the pages to the kernel: the
	// buffers must be page-aligned whole pages that the program never
	// touches again.
	SPLICE_F_GIFT = unix.SPLICE_F_GIFT
)

// maxCopyChunk is how much Copy asks splice(2) to move at once: the default
// pipe-max-size, as internal/poll uses. A pipe moves at most its capacity
// per call anyway; the size only bounds the request.
const maxCopyChunk = 1 << 20

// end is one side of a zero-copy transfer.
type end struct {
	c  syscall.Conn
	rc syscall.RawConn
}

// newEnd gets c's RawConn. A nil c gives os.ErrInvalid, and so does a nil
// *os.File in it, whose SyscallConn says so.
func newEnd(op string, c syscall.Conn) (*end, error) {
	if c == nil {
		return nil, &os.PathError{Op: op, Path: "<nil>", Err: os.ErrInvalid}
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, &os.PathError{Op: op, Path: nameOf(c), Err: err}
	}
	return &end{c: c, rc: rc}, nil
}

// nameOf names c in errors: a file's name, or its type.
func nameOf(c syscall.Conn) string {
	if f, ok := c.(*os.File); ok && f != nil {
		return f.Name()
	}
	return fmt.Sprintf("%T", c)
}

// closedOr returns the error for a RawConn call of e that failed with err.
// If e is now closed, that is the cause: a file says os.ErrClosed (the
// poller's own error for it matches nothing), a network connection keeps
// net.ErrClosed. Other errors, such as os.ErrDeadlineExceeded, pass through.
func (e *end) closedOr(op string, err error) error {
	if e.rc.Control(func(uintptr) {}) == nil {
		return err
	}
	if _, ok := e.c.(*os.File); ok {
		return &os.PathError{Op: op, Path: nameOf(e.c), Err: os.ErrClosed}
	}
	return err
}

// withFDs runs fn with the descriptors of src and dst, each kept open by
// its RawConn's Control for the duration. Waiting never happens here, so a
// Close of either side proceeds once fn returns.
func withFDs(op string, src, dst *end, fn func(sfd, dfd int)) error {
	var dstErr error
	err := src.rc.Control(func(s uintptr) {
		dstErr = dst.rc.Control(func(d uintptr) { fn(int(s), int(d)) })
	})
	if err != nil {
		return src.closedOr(op, err)
	}
	if dstErr != nil {
		return dst.closedOr(op, dstErr)
	}
	return nil
}

// transfer runs call, one splice(2) or tee(2) from src to dst, until it
// moves something, finds EOF (0) or fails. On EAGAIN (a non-blocking side
// not ready) it parks the goroutine in the runtime poller on the side that is
// not ready, which honours that side's deadline and wakes if it is closed: a
// stalled destination is waited for, never spun on. With SPLICE_F_NONBLOCK
// in flags EAGAIN is returned instead.
func transfer(op string, dst, src *end, flags int, call func(sfd, dfd int) (int, error)) (int64, error) {
	for {
		var (
			n     int
			errno error
		)
		err := withFDs(op, src, dst, func(sfd, dfd int) {
			n, errno = ignoringEINTR(func() (int, error) { return call(sfd, dfd) })
			if errno == unix.EINVAL && op == "splice" && hasAppend(dfd) {
				errno = errAppend
			}
		})
		switch {
		case err != nil:
			return 0, err
		case errno == nil:
			return int64(n), nil
		case errno == errAppend:
			return 0, fmt.Errorf("pipe: %s: destination %s was opened with O_APPEND: %w",
				op, nameOf(dst.c), os.NewSyscallError(op, unix.EINVAL))
		case errno != unix.EAGAIN || flags&SPLICE_F_NONBLOCK != 0:
			return 0, os.NewSyscallError(op, errno)
		}
		// EAGAIN: if the source has nothing, wait for it; otherwise the
		// destination is full.
		srcReady, err := src.wait(op, unix.POLLIN)
		if err == nil && srcReady {
			_, err = dst.wait(op, unix.POLLOUT)
		}
		if err != nil {
			return 0, err
		}
	}
}

// errAppend marks an EINVAL from splice(2) whose cause is an O_APPEND
// destination.
var errAppend = errors.New("O_APPEND destination")

// wait returns at once, reporting true, if e is ready for events (POLLIN or
// POLLOUT); otherwise it parks until the runtime poller sees e become ready,
// through the RawConn's Read or Write, which also applies e's deadline and
// wakes if e is closed. Readiness is checked with poll(2) inside that call:
// the poller is edge-triggered and only events after the call began would
// wake it. After a wake-up the caller simply retries.
//
// A blocking descriptor is not in the poller, and the RawConn refuses to
// wait on it; then poll(2) waits, holding the thread, as a blocking read
// would. Asking fcntl(2) only then keeps it off the common path.
func (e *end) wait(op string, events int16) (wasReady bool, err error) {
	first := true
	check := func(fd uintptr) bool {
		if !first {
			return true // woken by the poller
		}
		first = false
		wasReady = ready(int(fd), events)
		return wasReady
	}
	if events == unix.POLLIN {
		err = e.rc.Read(check)
	} else {
		err = e.rc.Write(check)
	}
	if err == nil {
		return wasReady, nil
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		blocking := false
		if e.rc.Control(func(fd uintptr) {
			fl, ferr := unix.FcntlInt(fd, unix.F_GETFL, 0)
			if blocking = ferr == nil && fl&unix.O_NONBLOCK == 0; blocking {
				pollFD(int(fd), events, -1)
			}
		}) == nil && blocking {
			return false, nil
		}
	}
	return false, e.closedOr(op, err)
}

// ready reports whether fd is ready for events without waiting. Errors and
// hang-ups count as ready: the next call reports them.
func ready(fd int, events int16) bool {
	return pollFD(fd, events, 0)
}

func pollFD(fd int, events int16, timeout int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
	n, err := ignoringEINTR(func() (int, error) { return unix.Poll(fds, timeout) })
	return err != nil || (n > 0 && fds[0].Revents != 0)
}

// hasAppend reports whether fd was opened with O_APPEND.
func hasAppend(fd int) bool {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	return err == nil && fl&unix.O_APPEND != 0
}

func ignoringEINTR(fn func() (int, error)) (int, error) {
	for {
		n, err := fn()
		if err != unix.EINTR {
			return n, err
		}
	}
}

func splice(dst, src syscall.Conn, n int, flags int) (int64, error) {
	if n < 0 {
		return 0, os.NewSyscallError("splice", unix.EINVAL)
	}
	s, d, err := ends("splice", src, dst)
	if err != nil {
		return 0, err
	}
	return transfer("splice", d, s, flags, func(sfd, dfd int) (int, error) {
		m, err := unix.Splice(sfd, nil, dfd, nil, n, flags)
		return int(m), err // int64 on 64-bit arches, int on 386, arm, mips and ppc
	})
}

func tee(dst, src *os.File, n int, flags int) (int64, error) {
	if n < 0 {
		return 0, os.NewSyscallError("tee", unix.EINVAL)
	}
	s, d, err := ends("tee", src, dst) // a nil *os.File's SyscallConn says os.ErrInvalid
	if err != nil {
		return 0, err
	}
	return transfer("tee", d, s, flags, func(sfd, dfd int) (int, error) {
		m, err := unix.Tee(sfd, dfd, n, flags)
		return int(m), err
	})
}

// ends gets both sides' RawConns.
func ends(op string, src, dst syscall.Conn) (s, d *end, err error) {
	if s, err = newEnd(op, src); err != nil {
		return nil, nil, err
	}
	if d, err = newEnd(op, dst); err != nil {
		return nil, nil, err
	}
	return s, d, nil
}

func vmsplice(w *os.File, bufs [][]byte, flags int) (int, error) {
	e, err := newEnd("vmsplice", w)
	if err != nil {
		return 0, err
	}
	var (
		total  int
		i, off int // bufs[i][off:] is the first byte not yet in the pipe
		iovs   []unix.Iovec
	)
	for {
		iovs = iovs[:0]
		for j := i; j < len(bufs) && len(iovs) < 1024; j++ { // 1024: the kernel's limit per call
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
		// O_NONBLOCK, so SPLICE_F_NONBLOCK is always passed: a full pipe
		// then waits in the poller (or in poll(2), for a blocking pipe)
		// instead of blocking the thread.
		var n int
		var errno error
		if err := e.rc.Control(func(fd uintptr) {
			n, errno = ignoringEINTR(func() (int, error) {
				return unix.Vmsplice(int(fd), iovs, flags|SPLICE_F_NONBLOCK)
			})
		}); err != nil {
			return total, e.closedOr("vmsplice", err)
		}
		switch {
		case errno == unix.EAGAIN && flags&SPLICE_F_NONBLOCK != 0:
			if total > 0 {
				return total, nil // a partial move; the caller asked not to wait
			}
			return 0, os.NewSyscallError("vmsplice", errno)
		case errno == unix.EAGAIN:
			if _, err := e.wait("vmsplice", unix.POLLOUT); err != nil {
				return total, err
			}
			continue
		case errno != nil:
			return total, os.NewSyscallError("vmsplice", errno)
		}
		total += n
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

// kind is what Copy needs to know about a side.
type kind int

const (
	kindOther  kind = iota
	kindPipe        // pipe or FIFO
	kindFile        // regular file without O_APPEND
	kindDevice      // character device, such as /dev/null
	kindStream      // stream socket: TCP or Unix
)

// kindOf finds e's kind with fstat(2), and getsockopt(SO_TYPE) or
// fcntl(F_GETFL) where that decides.
func kindOf(e *end) kind {
	k := kindOther
	e.rc.Control(func(fd uintptr) {
		var st unix.Stat_t
		if unix.Fstat(int(fd), &st) != nil {
			return
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFIFO:
			k = kindPipe
		case unix.S_IFREG:
			if !hasAppend(int(fd)) { // splice(2) refuses O_APPEND; io.Copy does not
				k = kindFile
			}
		case unix.S_IFCHR:
			k = kindDevice
		case unix.S_IFSOCK:
			if t, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE); err == nil && t == unix.SOCK_STREAM {
				k = kindStream
			}
		}
	})
	return k // a closed side stays kindOther: io.Copy reports it
}

func copyPipe(dst io.Writer, src io.Reader) (written int64, err error) {
	lr, limited := src.(*io.LimitedReader)
	inner := src
	if limited {
		if lr.N <= 0 {
			return 0, nil
		}
		inner = lr.R
	}
	sc, ok1 := inner.(syscall.Conn)
	dc, ok2 := dst.(syscall.Conn)
	if !ok1 || !ok2 {
		return io.Copy(dst, src)
	}
	s, d, err := ends("splice", sc, dc)
	if err != nil {
		return io.Copy(dst, src)
	}
	sk, dk := kindOf(s), kindOf(d)
	// Pipe to socket is left to io.Copy: splicing into a socket measured at
	// half the speed of io.Copy's read and write (BenchmarkCopy, loopback
	// TCP, Linux 6.18). Splice still does it when asked.
	if !(sk == kindPipe && dk != kindOther && dk != kindStream || dk == kindPipe && sk != kindOther) {
		return io.Copy(dst, src)
	}
	for {
		chunk := maxCopyChunk
		if limited && lr.N < int64(chunk) {
			chunk = int(lr.N)
		}
		n, err := transfer("splice", d, s, 0, func(sfd, dfd int) (int, error) {
			// No SPLICE_F_MORE: on a socket it would hold back the last bytes.
			m, err := unix.Splice(sfd, nil, dfd, nil, chunk, 0)
			return int(m), err
		})
		if errors.Is(err, unix.EINVAL) && written == 0 {
			// This pair cannot splice after all (some devices and file
			// systems refuse); nothing moved, so io.Copy can start over.
			return io.Copy(dst, src)
		}
		written += n
		if limited {
			lr.N -= n
		}
		if err != nil || n == 0 || limited && lr.N <= 0 {
			return written, err
		}
	}
}
