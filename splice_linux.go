package pipe

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// This file is the mechanism behind Splice, Tee, Vmsplice and Copy: one
// system call between two descriptors, repeated until it moves something.
// How it waits is wait_linux.go's; what each side is, kind_linux.go's.

// transfer runs call, one splice(2) or tee(2) from src to dst, which
// always includes SPLICE_F_NONBLOCK, until it moves something, finds EOF (0)
// or fails. On EAGAIN it parks on the side that is not ready, unless the
// caller asked for SPLICE_F_NONBLOCK, which gets EAGAIN back at once.
func transfer(op string, dst, src *fdConn, flags int, call func(dfd, sfd int) (int, error)) (int64, error) {
	return newTransferer(op, dst, src, flags, call).run()
}

// A transferer is transfer for a call made again and again, as Copy's
// chunks are: its closures are made once, so that a chunk allocates nothing.
type transferer struct {
	op       string
	dst, src *fdConn
	nonblock bool
	side     *fdConn // the side whose wait each try runs in, if any
	events   int16   // side's events
	pair     *pairCall

	// One try's answer.
	n              int
	errno, callErr error

	spinTry  func() (again bool)      // one try, for side's spinner
	awaitTry func(fd int) (done bool) // side's await: spin, then park or not
}

func newTransferer(op string, dst, src *fdConn, flags int, call func(dfd, sfd int) (int, error)) *transferer {
	t := &transferer{op: op, dst: dst, src: src, nonblock: flags&SPLICE_F_NONBLOCK != 0}
	// When one side is always ready, an EAGAIN is the other's: each try is
	// made inside that side's wait, as internal/poll does, so that the try
	// itself tells whether to park.
	switch {
	case t.nonblock:
	case dst.kind.steady():
		t.side = src
	case src.kind.steady():
		t.side = dst
	}
	if t.side != nil {
		t.events = eventsOf(t.side, src)
		// Only the spins of a pipe's reader may run long (see spinLong).
		t.side.spin.reader = t.side == src && src.kind == kindPipe
	}
	t.pair = newPairCall(op, dst, src, call)
	t.spinTry = func() bool {
		t.try()
		t.side.spin.add(t.n)
		return t.callErr == nil && t.errno == unix.EAGAIN
	}
	t.awaitTry = func(fd int) bool {
		// EAGAIN is retried for a moment first (see spinner).
		again := t.side.spin.attempt(t.spinTry)
		// An EAGAIN while side polls ready is not side's: parked, the
		// call would wait for ever for an edge that never comes. The
		// other side is then not so steady after all (a socket at urgent
		// data; a tracefs or procfs file that answers EAGAIN), and the
		// stall path below deals with it.
		if !again || readyFor(fd, t.events) {
			return true
		}
		t.side.spin.parking()
		return false
	}
	return t
}

// try makes the call once.
func (t *transferer) try() { t.n, t.errno, t.callErr = t.pair.run() }

// run is one transfer, as transfer describes.
func (t *transferer) run() (int64, error) {
	op, dst, src, nonblock := t.op, t.dst, t.src, t.nonblock
	var stall stallGuard
	for {
		if err := src.readyFirst(op, unix.POLLIN, nonblock); err != nil {
			return 0, err
		}
		if err := dst.readyFirst(op, unix.POLLOUT, nonblock); err != nil {
			return 0, err
		}
		var (
			err    error
			parked bool
		)
		t.n, t.errno, t.callErr = 0, nil, nil
		if t.side != nil {
			parked, err = t.side.await(op, t.events, t.awaitTry)
		} else {
			t.src.schedPoint().point() // await's, for a try made outside it
			t.try()
		}
		n, errno := t.n, t.errno
		if err == nil {
			err = t.callErr
		}
		switch {
		case err != nil:
			return 0, err
		case errno == nil && n == 0 && src.atMark():
			// At urgent data with the stream's end already queued, or on
			// a blocking socket, splice(2) answers 0 rather than EAGAIN.
			return 0, errRefused
		case errno == nil:
			return int64(n), nil
		case errno == unix.EAGAIN && nonblock && src.atMark():
			return 0, errRefused // not a plain EAGAIN: polling will not help
		case errno != unix.EAGAIN || nonblock:
			if errno == unix.EINVAL && op == "splice" && dst.flags&unix.O_APPEND != 0 {
				return 0, fmt.Errorf("pipe: splice: destination %s was opened with O_APPEND: %w",
					nameOf(dst.c), os.NewSyscallError(op, errno))
			}
			return 0, os.NewSyscallError(op, errno)
		}
		if t.side == nil {
			if parked, err = waitEither(op, dst, src); err != nil {
				return 0, err
			}
		}
		if parked {
			stall = 0
			continue
		}
		// EAGAIN, and both sides poll ready.
		if src.atMark() {
			return 0, errRefused
		}
		if stall.long() {
			if err := src.deadlinePassed(op, unix.POLLIN); err != nil {
				return 0, err
			}
			if err := dst.deadlinePassed(op, unix.POLLOUT); err != nil {
				return 0, err
			}
		}
		stall.pause()
	}
}

// eventsOf returns the events to wait for on side of a transfer from src:
// POLLIN on the source, POLLOUT on the destination.
func eventsOf(side, src *fdConn) int16 {
	if side == src {
		return unix.POLLIN
	}
	return unix.POLLOUT
}

// refusedError is what Splice and Tee return for errRefused: EAGAIN, with
// the reason.
func refusedError(op string, c syscall.Conn) error {
	return fmt.Errorf("pipe: %s from %s: %w: %w", op, nameOf(c), errRefused, os.NewSyscallError(op, unix.EAGAIN))
}

func splice(dst, src syscall.Conn, n int, flags int) (int64, error) {
	if n < 0 {
		return 0, os.NewSyscallError("splice", unix.EINVAL)
	}
	d, s, err := openBoth("splice", dst, src, learnKind)
	if err != nil || n == 0 {
		return 0, err
	}
	d.free, s.free = true, true
	if err := refuse("splice", d, s); err != nil {
		return 0, err
	}
	m, err := transfer("splice", d, s, flags, func(dfd, sfd int) (int, error) {
		m, err := unix.Splice(sfd, nil, dfd, nil, n, flags|SPLICE_F_NONBLOCK)
		return int(m), err // int64 on 64-bit arches, int on 386, arm, mips and ppc
	})
	if err == errRefused {
		err = refusedError("splice", src)
	}
	return m, err
}

func tee(dst, src *os.File, n int, flags int) (int64, error) {
	if n < 0 {
		return 0, os.NewSyscallError("tee", unix.EINVAL)
	}
	d, s, err := openBoth("tee", dst, src, learnKind) // a nil *os.File's SyscallConn says os.ErrInvalid
	if err != nil || n == 0 {
		return 0, err
	}
	d.free, s.free = true, true
	if err := refuse("tee", d, s); err != nil {
		return 0, err
	}
	// Both sides are pipes, or tee(2) fails with EINVAL: never urgent data.
	return transfer("tee", d, s, flags, func(dfd, sfd int) (int, error) {
		m, err := unix.Tee(sfd, dfd, n, flags|SPLICE_F_NONBLOCK)
		return int(m), err
	})
}

// refuse returns the error for a pair that Splice and Tee refuse before any
// system call that could wait: what splice(2) would cut (messages), or sleep
// on with the pipe locked, deaf to Close and deadlines (a blocking socket or
// terminal as the destination), or refuse only once ready, which may be
// never (an anonymous inode, a listening socket that blocks).
func refuse(op string, d, s *fdConn) error {
	for _, side := range []*fdConn{d, s} {
		var why string
		errno := unix.EINVAL
		switch {
		case side.kind == kindMessage:
			why = "is a datagram or seqpacket socket, whose messages splice(2) would cut or merge"
		case side.kind == kindAnon:
			why = "is an eventfd, epoll, timer, signal, inotify or pidfd descriptor, which splice(2) refuses"
		case side.mayBlock() && side.listening():
			why, errno = "is a listening socket", unix.ENOTCONN
		case side == d && d.mayBlock():
			why = "is blocking (a socket, terminal or device without O_NONBLOCK), into which splice(2) would sleep with the pipe locked until it took everything, whatever Close or deadlines say (use Copy, or SetNonblock(f, true) first)"
		default:
			continue
		}
		return fmt.Errorf("pipe: %s: %s %s: %w", op, nameOf(side.c), why, os.NewSyscallError(op, errno))
	}
	return nil
}

// openBoth opens both sides of a transfer, dst first, as in the signatures.
func openBoth(op string, dst, src syscall.Conn, what learn) (d, s *fdConn, err error) {
	if d, err = open(op, dst, what); err != nil {
		return nil, nil, err
	}
	if s, err = open(op, src, what); err != nil {
		return nil, nil, err
	}
	return d, s, nil
}

// maxIovecs is the most iovecs one vmsplice(2) takes (UIO_MAXIOV).
const maxIovecs = 1024

func vmsplice(w *os.File, bufs [][]byte, flags int) (int, error) {
	s := vmspliceConns.Get().(*fdConn)
	defer func() {
		s.c, s.rc = nil, nil // keep no file alive
		vmspliceConns.Put(s)
	}()
	if err := s.openWriteEnd(w, learnFlags); err != nil {
		return 0, err
	}
	s.free = true
	return s.vmsplice(bufs, flags)
}

// vmspliceConns keeps the state of finished Vmsplice calls for the next:
// the closures and iovecs that a call made once are used again, and a call
// allocates only what asking for w's descriptor does (its RawConn). Made
// anew each call, they were 7 more allocations (328 bytes) per Vmsplice.
var vmspliceConns = sync.Pool{New: func() any { return new(fdConn) }}

// openWriteEnd opens w for vmsplice(2), refusing a read end, on which
// vmsplice(2) would read the pipe into the buffers, and, if what asks the
// kind, what is not a pipe, which vmsplice(2) refuses itself (EBADF).
func openWriteEnd(w *os.File, what learn) (*fdConn, error) {
	s := new(fdConn)
	if err := s.openWriteEnd(w, what); err != nil {
		return nil, err
	}
	return s, nil
}

// openWriteEnd is openWriteEnd into s (see fdConn.open).
func (s *fdConn) openWriteEnd(w *os.File, what learn) error {
	if err := s.open("vmsplice", w, what); err != nil {
		return err
	}
	if what != learnFlags && s.kind != kindPipe || s.flags&unix.O_ACCMODE == unix.O_RDONLY {
		return fmt.Errorf("pipe: vmsplice: %s is not the write end of a pipe: %w", w.Name(), os.NewSyscallError("vmsplice", unix.EBADF))
	}
	return nil
}

// A vmspliceTry is one vmsplice(2) try of a write end, kept by its fdConn
// so that its closures and iovecs are made once and a commit allocates
// nothing.
type vmspliceTry struct {
	iovs  []unix.Iovec
	flags int
	fd    int

	// The try's answer.
	n     int
	errno error

	once  func() (int, error)
	call  func() (again bool)      // once, with EINTR retried
	await func(fd int) (done bool) // the try inside s's wait
}

func newVmspliceTry(s *fdConn) *vmspliceTry {
	t := &vmspliceTry{}
	t.once = func() (int, error) {
		return unix.Vmsplice(t.fd, t.iovs, t.flags|SPLICE_F_NONBLOCK)
	}
	t.call = func() bool {
		t.n, t.errno = ignoringEINTR(t.once)
		return t.errno == unix.EAGAIN
	}
	t.await = func(fd int) bool {
		t.fd = fd
		if t.flags&SPLICE_F_NONBLOCK != 0 {
			t.call()
			return true
		}
		// EAGAIN is retried for a moment first (see spinner).
		if s.spin.attempt(t.call) {
			s.spin.parking()
			return false
		}
		return true
	}
	return t
}

// A copyWrite is writeCopy's state, kept by the write end's fdConn so that
// a call allocates nothing.
type copyWrite struct {
	iov   [1]unix.Iovec
	p     []byte // what is being written; p[off:] is not yet in the pipe
	off   int
	plain bool   // pwritev2 with RWF_NOWAIT was refused: write(2) instead
	op    string // the system call that failed
	errno error
	try   func(fd int) (done bool)
}

// errMapInstead is writeCopy's answer when it cannot copy the rest: only
// write(2) is left, and the descriptor is in blocking mode, where write(2)
// would sleep in the kernel, deaf to Close, or in packet mode, where the
// copy would be a packet among mapped pages.
var errMapInstead = errors.New("map instead")

// writeCopy writes all of p into the pipe behind the write end s, parking
// in the poller while it is full, as w.Write does, and as lean: no spin, one
// try per wake-up. It uses pwritev2 with RWF_NOWAIT, which never sleeps in
// the kernel whatever the descriptor's mode. A pipe refuses that
// (EOPNOTSUPP) once anything was ever vmspliced or spliced into it, and so
// do FIFOs and kernels before 6.4 (and a seccomp filter may, EPERM): the
// kernel clears the file's FMODE_NOWAIT at the first splice or vmsplice
// into it. From then on it uses write(2), checking F_GETFL before each: a
// descriptor made blocking since (by Fd, or by another process sharing it,
// even while this call was parked or between two writes of one wake-up)
// would make write(2) sleep holding the descriptor, so that Close waits for
// it, and one put in packet mode would make the copy packets among mapped
// pages. It then stops, having written w.off bytes, and returns
// errMapInstead: the caller maps the rest. Only a change made between the
// check and the write(2) it precedes escapes it. (The check costs a system
// call, 1.3 µs on a 2-core VM: one per commit, and one per write(2) of a
// large straight Write that fills the pipe.)
func (s *fdConn) writeCopy(p []byte) (int, error) {
	w := s.cw
	if w == nil {
		w = &copyWrite{}
		w.try = func(fd int) bool {
			for w.off < len(w.p) {
				var n int
				var errno error
				if w.plain {
					if !copyable(fd) {
						w.errno = errMapInstead
						return true
					}
					w.op = "write"
					n, errno = unix.Write(fd, w.p[w.off:])
				} else {
					w.iov[0].Base = &w.p[w.off]
					w.iov[0].SetLen(len(w.p) - w.off)
					w.op = "pwritev2"
					n, errno = pwritevNowait(fd, w.iov[:])
				}
				switch {
				case errno == unix.EINTR:
					continue
				case errno == unix.EAGAIN:
					return false // full: park until the reader makes room
				case !w.plain && (errno == unix.EOPNOTSUPP || errno == unix.ENOSYS || errno == unix.EINVAL || errno == unix.EPERM):
					w.plain = true
					continue
				case errno != nil:
					w.errno = errno
					return true
				case n <= 0:
					w.errno = io.ErrShortWrite // write(2) of a non-empty p gives at least a byte or an error
					return true
				}
				w.off += n
			}
			return true
		}
		s.cw = w
	}
	w.p, w.off, w.errno = p, 0, nil
	_, err := s.await("write", unix.POLLOUT, w.try)
	n, errno := w.off, w.errno
	w.p, w.iov[0].Base = nil, nil // keep no buffer alive
	switch {
	case err != nil:
		return n, err
	case errno == io.ErrShortWrite || errno == errMapInstead:
		return n, errno
	case errno != nil:
		return n, os.NewSyscallError(w.op, errno)
	}
	return n, nil
}

// copyable reports whether F_GETFL shows fd non-blocking and not in packet
// mode, where write(2) neither sleeps nor makes packets; an error counts as
// not.
func copyable(fd int) bool {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	return err == nil && fl&unix.O_NONBLOCK != 0 && fl&unix.O_DIRECT == 0
}

// pwritevNowait is pwritev2(fd, iovs, -1, RWF_NOWAIT): write(2) at the
// file's position that answers EAGAIN rather than wait, whatever the
// descriptor's O_NONBLOCK. The position -1 is passed as both halves, which
// the kernel joins into -1 on 32- and 64-bit systems alike.
func pwritevNowait(fd int, iovs []unix.Iovec) (int, error) {
	const noPos = ^uintptr(0)
	var p unsafe.Pointer
	if len(iovs) > 0 {
		p = unsafe.Pointer(&iovs[0])
	}
	n, _, errno := unix.Syscall6(unix.SYS_PWRITEV2, uintptr(fd), uintptr(p), uintptr(len(iovs)), noPos, noPos, unix.RWF_NOWAIT)
	if errno != 0 {
		return int(n), errno
	}
	return int(n), nil
}

// vmsplice maps all of bufs into the pipe behind the write end s.
func (s *fdConn) vmsplice(bufs [][]byte, flags int) (int, error) {
	if s.vm == nil {
		s.vm = newVmspliceTry(s)
	}
	t := s.vm
	t.flags = flags
	const op = "vmsplice"
	defer func() { clear(t.iovs[:cap(t.iovs)]) }() // keep no buffer alive
	var (
		total  int
		i, off int // bufs[i][off:] is the first byte not yet in the pipe
	)
	for {
		iovs := t.iovs[:0]
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
		t.iovs = iovs
		if len(iovs) == 0 {
			return total, nil
		}
		// vmsplice(2), unlike splice and tee, ignores the descriptor's
		// O_NONBLOCK, so SPLICE_F_NONBLOCK is always passed, and each try
		// is made inside w's wait, as Write does. A pipe's EAGAIN means it
		// is full: the wait ends when the reader makes room.
		t.n, t.errno = 0, nil
		_, err := s.await(op, unix.POLLOUT, t.await)
		n, errno := t.n, t.errno
		switch {
		case err != nil:
			return total, err
		case errno == unix.EAGAIN: // SPLICE_F_NONBLOCK from the caller
			if total > 0 {
				return total, nil // a partial move; the caller asked not to wait
			}
			return 0, os.NewSyscallError(op, errno)
		case errno != nil:
			return total, os.NewSyscallError(op, errno)
		case n == 0:
			// A write end never maps nothing without an error; do not
			// loop on it.
			return total, io.ErrShortWrite
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
