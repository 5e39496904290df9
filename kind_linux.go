package pipe

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// This file learns what a descriptor is, from the kernel: fstat(2)'s file
// type and, for a socket, getsockopt(2)'s SO_TYPE, SO_DOMAIN and
// SO_PROTOCOL. Never from Go types: a TCP socket may come as an *os.File, and
// a *net.UDPConn has the same methods as a stream. (Copy declines to splice
// one pairing by type, before asking, and spares a question for some: see
// isNetType.)

// A kind is what a transfer needs to know of a descriptor's file type.
//
//	kind         what                 Copy     Splice   not always  may sleep    urgent
//	                                  splices  accepts  ready       if blocking  data
//	kindPipe     pipe, FIFO           yes      yes      yes         no           no
//	kindFile     regular file, disk   yes      yes      no          no           no
//	kindMem      /dev/null, /dev/zero yes      yes      no          no           no
//	kindTCP      TCP stream socket    yes      yes      yes         yes          yes
//	kindUnix     Unix stream socket   yes      yes      yes         yes          no
//	kindMessage  datagram, seqpacket  no       no       -           -            -
//	kindSocket   other stream socket  no       yes      yes         yes          no
//	kindAnon     eventfd, epoll, ...  no       no       -           -            -
//	kindOther    anything else        no       yes      yes         yes          no
//
// "Not always ready": an EAGAIN may be its own, and waiting for it makes
// sense; a side that is always ready leaves an EAGAIN to the other side.
// "May sleep if blocking": splice(2) can sleep on it, unless its descriptor
// has O_NONBLOCK, even with SPLICE_F_NONBLOCK, which only the pipe side
// obeys. "Urgent data": splice(2) stops for good at TCP's urgent mark
// (SIOCATMARK), where read(2) skips the urgent byte; a Unix socket's MSG_OOB
// byte is skipped by both. A message socket would have its messages cut to
// the room left in the pipe, or the pipe sent as one message, so Splice
// refuses it and Copy leaves it to io.Copy, which moves a message at a time.
// Splice also refuses a destination that may sleep, whose descriptor is
// blocking: splice(2) into it sleeps until it has taken everything.
// An anonymous inode (eventfd, epoll, timerfd, signalfd, inotify, pidfd: no
// file type in fstat) refuses splice(2), but may never become ready to say
// so. Splice leaves anything else to the kernel to accept or refuse.
type kind uint8

const (
	kindOther kind = iota
	kindPipe
	kindFile
	kindMem
	kindTCP
	kindUnix
	kindMessage
	kindSocket
	kindAnon
)

// steady reports a kind that is always ready: an EAGAIN is the other
// side's.
func (k kind) steady() bool { return k == kindFile || k == kindMem }

// sleeps reports a kind that splice(2) can sleep on when its descriptor is
// blocking.
func (k kind) sleeps() bool {
	return k == kindTCP || k == kindUnix || k == kindSocket || k == kindOther
}

// socket reports a socket of any kind.
func (k kind) socket() bool {
	return k == kindTCP || k == kindUnix || k == kindMessage || k == kindSocket
}

// copyable reports a kind Copy may splice.
func (k kind) copyable() bool {
	return k == kindPipe || k == kindFile || k == kindMem || k == kindTCP || k == kindUnix
}

// kindOf asks the kernel the kind of fd. For a descriptor that likely is a
// socket (held by anything but an *os.File), getsockopt(2) comes first and
// spares the fstat(2); only the kernel's answers decide.
func kindOf(fd int, likelySocket bool) (kind, error) {
	if likelySocket {
		if k, ok := socketKind(fd); ok {
			return k, nil
		}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return kindOther, os.NewSyscallError("fstat", err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFIFO:
		return kindPipe, nil
	case unix.S_IFREG, unix.S_IFBLK:
		return kindFile, nil
	case unix.S_IFCHR:
		// /dev/null (1, 3) and /dev/zero (1, 5). Other memory devices
		// are not always ready: /dev/kmsg (1, 11) waits for messages.
		rdev := uint64(st.Rdev)
		if unix.Major(rdev) == 1 && (unix.Minor(rdev) == 3 || unix.Minor(rdev) == 5) {
			return kindMem, nil
		}
	case unix.S_IFSOCK:
		k, _ := socketKind(fd)
		return k, nil
	case 0:
		return kindAnon, nil
	}
	return kindOther, nil
}

// socketKind tells the kind of fd if it is a socket (ok), with as few
// getsockopt(2) calls as it can: the type, then the protocol, then the
// family.
func socketKind(fd int) (k kind, ok bool) {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	switch {
	case err == unix.ENOTSOCK:
		return kindOther, false
	case err != nil:
		return kindSocket, true
	case typ != unix.SOCK_STREAM:
		return kindMessage, true // SOCK_DGRAM, SOCK_SEQPACKET, SOCK_RAW, SOCK_RDM
	}
	// TCP's protocol number on a stream is TCP over IPv4 or IPv6: the
	// other families' streams (Unix, vsock, SMC, Bluetooth) use their own.
	// SCTP and MPTCP streams have theirs too.
	if proto, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL); err == nil && proto == unix.IPPROTO_TCP {
		return kindTCP, true
	}
	if domain, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN); err == nil && domain == unix.AF_UNIX {
		return kindUnix, true
	}
	return kindSocket, true
}

// An fdConn is one side of a transfer: a file or socket, its RawConn, and
// what the kernel says its descriptor is.
type fdConn struct {
	c     syscall.Conn
	rc    syscall.RawConn
	flags int // F_GETFL
	kind  kind
	spin  spinner // how long its calls retry EAGAIN before parking
	aw    awaiter // await's callback
	vm    *vmspliceTry
	cw    *copyWrite
	sched schedPoint // when its calls last let the scheduler in
	free  bool       // opened for one call of Splice, Tee or Vmsplice: its calls use goSched
}

// mayBlock reports a side that splice(2) can sleep on although the pipe side
// has SPLICE_F_NONBLOCK: a blocking socket, terminal or other device.
func (s *fdConn) mayBlock() bool {
	return s.flags&unix.O_NONBLOCK == 0 && s.kind.sleeps()
}

// blockingSocket reports a socket whose descriptor is blocking.
func (s *fdConn) blockingSocket() bool {
	return s.flags&unix.O_NONBLOCK == 0 && s.kind.socket()
}

// What open asks the kernel, as much as the caller needs.
type learn int

const (
	learnAll   learn = iota // F_GETFL and the kind: Copy decides by both
	learnKind               // the kind, and F_GETFL unless a pipe: splice(2) and tee(2) ignore a pipe's flags
	learnFlags              // F_GETFL only: vmsplice(2) refuses what is not a pipe itself
)

// open gets c's RawConn and asks the kernel what its descriptor is, as
// much as what says: F_GETFL, fstat(2), and for a socket getsockopt(2).
// Every call counts: a Splice of a pipe into a pipe makes no others. A nil c
// gives os.ErrInvalid, and so does a nil *os.File in it, whose SyscallConn
// says so; a closed one os.ErrClosed.
func open(op string, c syscall.Conn, what learn) (*fdConn, error) {
	s := new(fdConn)
	if err := s.open(op, c, what); err != nil {
		return nil, err
	}
	return s, nil
}

// open is the package's open into s, which it resets first, keeping only
// the closures made for earlier calls (see vmspliceConns).
func (s *fdConn) open(op string, c syscall.Conn, what learn) error {
	*s = fdConn{aw: awaiter{fn: s.aw.fn}, vm: s.vm, cw: s.cw}
	if c == nil {
		return &os.PathError{Op: op, Path: "<nil>", Err: os.ErrInvalid}
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return &os.PathError{Op: op, Path: nameOf(c), Err: err}
	}
	s.c, s.rc = c, rc
	_, isFile := c.(*os.File)
	var errno error
	err = rc.Control(func(fd uintptr) {
		if what != learnFlags {
			if s.kind, errno = kindOf(int(fd), !isFile); errno != nil || s.kind == kindPipe && what == learnKind {
				return
			}
		}
		var e error
		s.flags, e = unix.FcntlInt(fd, unix.F_GETFL, 0)
		errno = os.NewSyscallError("fcntl", e)
	})
	if err != nil {
		return s.closedOr(op, err)
	}
	return errno
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

// listening reports whether s is a listening socket (SO_ACCEPTCONN), which
// splice(2) refuses with ENOTCONN but which may never become ready to say so.
func (s *fdConn) listening() bool {
	if !s.kind.socket() {
		return false
	}
	accepting := 0
	_ = s.rc.Control(func(fd uintptr) { accepting, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ACCEPTCONN) })
	return accepting != 0
}

// afterEAGAIN tells what an EAGAIN that a non-blocking read(2) just gave
// for fd means, when it is not simply "nothing yet" (wait):
//
//   - retry: fd is a TCP socket at urgent data (SIOCATMARK) with bytes or
//     its end to read past it (POLLIN). read(2) answers EAGAIN there while
//     a signal is pending, and no edge will wake a park, since everything
//     has arrived: try again.
//   - shut: fd is shut for reading (POLLRDHUP) and not at such a mark, where
//     a blocking read(2) returns 0: a UDP socket after shutdown(SHUT_RD)
//     answers EAGAIN to a non-blocking one, for ever.
//
// Anything else (no POLLIN; not a socket: ENOTTY; a socket ready for an
// error only) waits.
func afterEAGAIN(fd int) (retry, shut bool) {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLRDHUP}}
	n, err := ignoringEINTR(func() (int, error) { return unix.Poll(fds, 0) })
	if err != nil || n == 0 {
		return false, false
	}
	if fds[0].Revents&unix.POLLIN != 0 {
		if mark, err := unix.IoctlGetInt(fd, unix.SIOCATMARK); err == nil && mark != 0 {
			return true, false
		}
	}
	return false, fds[0].Revents&unix.POLLRDHUP != 0
}

// atMark reports whether s is a TCP socket at urgent data
// (ioctl(SIOCATMARK)), where splice(2) stops for good and read(2) goes on.
func (s *fdConn) atMark() bool {
	if s.kind != kindTCP {
		return false
	}
	mark := 0
	_ = s.rc.Control(func(fd uintptr) { mark, _ = unix.IoctlGetInt(int(fd), unix.SIOCATMARK) })
	return mark != 0
}
