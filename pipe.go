// Package pipe creates pipes with the flags of pipe2(2), the Go counterpart
// of Python's os.pipe2, and wraps the kernel calls that make pipes useful:
// capacity, bytes buffered, packet mode, zero-copy transfer (splice, tee,
// vmsplice, [Copy], [VmspliceWriter]), named pipes opened without holding a
// thread ([OpenFIFO]), pipes for child processes ([Command], [Chain]) and
// pipelines of them run as a shell runs a | b | c ([Pipeline]).
//
// By task, each with its runnable example (pkg.go.dev shows them):
//
//   - create a pipe: [Pipe2] (Example, ExamplePipe2_deadline);
//   - give a child process pipes: [Command], [Cmd.StdoutPipe] (ExampleCommand);
//   - run a pipeline: [NewPipeline] (ExamplePipeline);
//   - open a FIFO: [Mkfifo], [OpenFIFO] (ExampleOpenFIFO);
//   - move bytes fast: [Copy], [Splice], [VmspliceWriter] (ExampleCopy,
//     ExampleVmspliceWriter);
//   - size a pipe: [SetCapacity], [Buffered] (ExampleSetCapacity, ExampleBuffered).
//
// Every end is an *os.File that the caller owns and closes. Inside a Go
// program use O_CLOEXEC|O_NONBLOCK: the files then use the runtime poller,
// as os.Pipe's do, so a waiting Read parks a goroutine rather than a thread,
// deadlines work, and Close wakes a waiting call with [os.ErrClosed]. A
// blocking end, the kind a child process expects, holds a thread while it
// waits and has no deadlines; O_NONBLOCK belongs to the open file
// description, which a child shares, so hand children blocking ends
// ([Command] does, [SetNonblock] by hand). The package never calls
// (*os.File).Fd: it works through SyscallConn, which neither changes the
// blocking mode nor lets the file be closed during a call.
//
// Linux has everything. FreeBSD, NetBSD, OpenBSD, DragonFly, Solaris and
// illumos have pipe2 without packet mode; darwin, iOS and AIX emulate it with
// pipe and fcntl under [syscall.ForkLock], as os.Pipe does; Windows and Plan 9
// get os.Pipe's pipes; js and wasip1 have none. Capacity, packet mode, splice,
// tee and vmsplice are Linux-only; Copy is io.Copy elsewhere.
//
// The rules shared by every function: a nil file gives an error matching
// [os.ErrInvalid], a closed one [os.ErrClosed], a feature the platform lacks
// [errors.ErrUnsupported], and bad arguments [syscall.EINVAL]. Kernel errors
// are [*os.SyscallError] or [*os.PathError] values naming the system call, so
// errors.Is(err, syscall.EMFILE) and the like work. On error nothing is left
// open.
package pipe

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"
)

// Pipe2 creates a pipe with pipe2(2) and the given flags, any of [O_CLOEXEC],
// [O_NONBLOCK] and [O_DIRECT] ORed together, and returns its read end r and its
// write end w, named "|0" and "|1" as os.Pipe names them. Other bits give
// EINVAL, as pipe2(2) does; a flag the platform cannot honour gives
// [errors.ErrUnsupported]. O_DIRECT needs Linux 3.4 (EINVAL before).
func Pipe2(flags int) (r, w *os.File, err error) {
	if flags&^(O_CLOEXEC|O_NONBLOCK|O_DIRECT) != 0 {
		return nil, nil, os.NewSyscallError("pipe2", syscall.EINVAL)
	}
	if extra := flags &^ supportedFlags; extra != 0 {
		return nil, nil, unsupported(flagNames(extra))
	}
	return pipe2(flags)
}

// SetNonblock sets (nonblocking true) or clears the O_NONBLOCK flag of the open
// file description behind f with fcntl(F_SETFL), through f.SyscallConn.
//
// Its use is handing one end of a pipe to a child process that expects a
// blocking descriptor: call SetNonblock(end, false) before starting the child
// and close end in the parent afterwards ([Command] does both). The flag is
// shared by every descriptor of that open file description, in this process
// and in children. SetNonblock does not move f into or out of the runtime
// poller: a pollable file made blocking holds a thread while it waits, and
// its own Read and Write then sleep in the kernel holding the file, so that
// its Close waits for them (as with os); a file that was blocking when it
// was created returns EAGAIN from Read and Write once made non-blocking.
// Keep a file made blocking for the child, not for this process. Unix only.
func SetNonblock(f *os.File, nonblocking bool) error {
	return setNonblock(f, nonblocking)
}

// Capacity returns the capacity of the pipe behind f, in bytes, with
// fcntl(F_GETPIPE_SZ). Both ends report the same capacity; a new pipe has 16
// pages, 64 KiB with 4 KiB pages. The capacity counts page slots, not bytes:
// in packet mode ([O_DIRECT]) each packet takes a slot however small it is,
// and small writes to a normal pipe share one. A file that is not a pipe
// gives EBADF. Linux only.
func Capacity(f *os.File) (int, error) {
	return capacity(f)
}

// SetCapacity sets the capacity of the pipe behind f with
// fcntl(F_SETPIPE_SZ) and returns the capacity the kernel chose: n rounded up
// to a power of two of pages (0 and 1 give one page), so ask 100,000 and get
// 131,072. Either end may be used. Linux only.
//
// The kernel refuses, with an error matching:
//   - [syscall.EINVAL]: n negative or above 2^31 (checked before the call);
//   - [syscall.EPERM]: n above [MaxCapacity] (/proc/sys/fs/pipe-max-size, 1 MiB
//     by default) without CAP_SYS_RESOURCE, or a user over the page limits in
//     /proc/sys/fs/pipe-user-pages-hard and pipe-user-pages-soft;
//   - [syscall.EBUSY]: n too small for the data the pipe holds;
//   - [syscall.EBADF]: f is not a pipe.
//
// With any error the capacity returned is 0.
func SetCapacity(f *os.File, n int) (int, error) {
	return setCapacity(f, n)
}

// MaxCapacity returns the largest capacity [SetCapacity] grants a process
// without CAP_SYS_RESOURCE, read from /proc/sys/fs/pipe-max-size (1 MiB by
// default). Linux only.
func MaxCapacity() (int, error) {
	return maxCapacity()
}

// Buffered returns the number of bytes written to the pipe behind f and not
// yet read, with ioctl(FIONREAD). On Linux either end may be used; on darwin,
// the BSDs, Solaris, illumos and AIX use the read end. On a FIFO it works the
// same; on other kinds of file it returns what FIONREAD reports for them (bytes
// left before end of file, or unread bytes of a socket) or the kernel's error,
// such as ENOTTY. Unix only.
func Buffered(f *os.File) (int, error) {
	return buffered(f)
}

// Splice moves up to n bytes from src to dst with splice(2), at their
// current positions and without copying them through user memory, and
// returns how many it moved: 0 with a nil error means src is at end of file.
// One side must be a pipe; the other may be a pipe, a FIFO, a regular file, a
// character device such as /dev/null, or a stream socket, whatever Go type
// holds it (*net.TCPConn, *net.UnixConn, or an *os.File). Like Read, it may
// move less than n; n == 0 moves nothing and returns 0 at once.
//
// Splice waits as Read and Write do, on one side at a time: on the source
// while it is empty, on the destination while it is full. Only the deadline
// or Close of the side waited on wakes it ([os.ErrDeadlineExceeded],
// [os.ErrClosed]); to cancel a Splice whichever side it waits on, set the
// deadline of both sides or close both. A side outside the runtime poller (a
// blocking descriptor opened outside it) is waited on in poll(2), holding a
// thread, and its Close does not wake the wait, as for its own Read. Close of
// either side never waits for a Splice in progress. With [SPLICE_F_NONBLOCK]
// in flags, Splice never waits and returns EAGAIN instead.
//
// Kernel errors are [*os.SyscallError] values for "splice": EINVAL when
// neither side is a pipe, when both are the same pipe, or when dst was opened
// with O_APPEND (the error says so); EPIPE when the pipe's reader is gone.
// Splice refuses at once, with an error matching EINVAL that says why: a
// datagram or seqpacket socket (UDP, unixgram, unixpacket) on either side,
// whose messages splice(2) would cut to the room left in the pipe or merge
// into one; an eventfd, epoll, timerfd, signalfd, inotify or pidfd
// descriptor; and a destination whose descriptor is blocking (no O_NONBLOCK)
// and that is neither a pipe, a regular file nor /dev/null (a socket, a
// terminal, another device), into which splice(2) sleeps until it has taken
// everything,
// SPLICE_F_NONBLOCK or not, holding the pipe locked and deaf to Close and
// deadlines ([Copy] writes there with MSG_DONTWAIT; or make it non-blocking
// with [SetNonblock]). A blocking listening socket gives ENOTCONN at once. At TCP
// urgent data, which splice(2) will not pass although the socket is readable
// (the kernel's SIOCATMARK says so), Splice returns an error matching EAGAIN
// that says so; read(2) can still read past that point, skipping the urgent
// byte. An EAGAIN while both sides are ready for any other reason (others
// sharing the pipe took the data or the room first) is a race: Splice goes on
// waiting, trying again after short sleeps.
func Splice(dst, src syscall.Conn, n int, flags int) (int64, error) {
	return splice(dst, src, n, flags)
}

// Tee duplicates up to n bytes from the pipe src into the pipe dst with
// tee(2), without consuming them from src, and returns how many it
// duplicated; 0 means src is empty and has no writer left. It waits as
// [Splice] does. Both must be pipes (EINVAL otherwise).
func Tee(dst, src *os.File, n int, flags int) (int64, error) {
	return tee(dst, src, n, flags)
}

// Vmsplice maps bufs into the pipe behind its write end w with vmsplice(2)
// and returns how many bytes it mapped: the pipe then references the pages
// of bufs instead of holding a copy. It maps all of bufs (any number of
// them, 1024 per system call), waiting while the pipe is full as Write
// does, with w's write deadline and Close applying. With [SPLICE_F_NONBLOCK]
// it maps what fits and returns EAGAIN only if nothing did.
//
// The rule: the memory of bufs must stay untouched and reachable until the
// reader has consumed that data, since what the reader gets is what the
// memory holds when it reads. [VmspliceWriter] keeps the rule for you. By
// hand: use two buffers as large as the capacity that [SetCapacity] returned
// (it rounds up), Vmsplice them in turn, and refill one only after the
// Vmsplice of the other has returned, which cannot happen before the reader
// has taken all of the first; keep both alive until the reader is done
// (ExampleVmsplice). This holds only for a reader that copies the data out
// (read(2), or splice to a file or /dev/null): one that splices or tees it on
// to another pipe or a socket keeps referencing the pages after they have
// left this pipe. [SPLICE_F_GIFT] gives the pages to the kernel:
// page-aligned whole pages, never touched again.
//
// w must be a write end: on a read end vmsplice(2) would read the pipe into
// bufs, so Vmsplice refuses it with an error matching [syscall.EBADF].
func Vmsplice(w *os.File, bufs [][]byte, flags int) (int, error) {
	return vmsplice(w, bufs, flags)
}

// Copy copies from src to dst until EOF or an error, as [io.Copy] does, and
// returns the bytes copied and the first error. On Linux it moves the data
// with splice(2), never through user memory, where it knows splicing
// delivers what io.Copy would. It asks the kernel what each side is (fstat(2)
// and, for a socket, getsockopt(2)), whatever Go type holds it, and splices:
//
//   - from a pipe or FIFO into another pipe, /dev/null or a Unix stream
//     socket;
//   - from a regular file or /dev/zero into a pipe;
//   - from a TCP stream socket into a pipe, a regular file, /dev/null, a TCP
//     or a Unix stream socket, and from a Unix stream socket into any of
//     those but a pipe in the runtime poller, through a pipe of its own kept
//     for the next Copy, as io.Copy does (io.Copy stalls at TCP urgent data,
//     and spins while a blocking pipe is full).
//
// Every other pairing is io.Copy's, whole: datagram and seqpacket sockets
// (whose messages splicing would cut or merge), other sockets, terminals and
// other devices, sides with no descriptor, other systems, a pipe into a
// regular file or a TCP socket (as fast or faster with read and write while a
// writer fills the pipe), a *net.UnixConn into a pipe in the poller (io.Copy
// splices it as well), and an *io.LimitedReader small enough that learning
// what the sides are costs more than splicing saves. Where
// io.Copy itself would go wrong, Copy uses Read and Write only: from a TCP
// socket (io.Copy's splice stops at urgent data), into a datagram or
// seqpacket socket held as an *os.File (which would get one huge message),
// and into a destination opened with O_APPEND (which splice(2) refuses). A
// socket whose descriptor is blocking is read and written with MSG_DONTWAIT,
// so that its Close never waits for Copy (except in the small limited copies
// above, which read and write as its Read and Write do). Such a descriptor
// is outside the runtime poller (and an *os.File holding it has no
// deadlines): Copy waits for it in poll(2) on a duplicate of it, so its Close
// ends that wait only once the socket becomes ready (data, or the peer's
// close), and until then the duplicate keeps the connection open.
//
// A src that is an *io.LimitedReader around a side Copy splices is honoured
// and its N updated. Copy waits as [Splice] does. At TCP urgent data, where
// the kernel stops splicing, Copy goes on with read and write, delivering
// what read(2) delivers. There read(2) answers EAGAIN while a signal is
// pending (the runtime's preemption signal, say), although the data is
// there, and the Read methods of net and os then wait for a wake-up that
// never comes. So Copy reads with read(2) itself whatever may be a TCP
// socket (an *os.File, a *net.TCPConn, or another type whose descriptor the
// kernel says is one), also where it would otherwise call src's Read (a
// small limited copy, a dst without a descriptor), and at such an EAGAIN
// tries again rather than wait. Copying a pipe into itself without a limit, which
// io.Copy would do for ever, is an error matching [syscall.EINVAL].
//
// Like io.Copy with an *os.File, Copy works on the descriptors of dst and
// src when they have them (syscall.Conn), not through their Read and Write
// methods.
func Copy(dst io.Writer, src io.Reader) (written int64, err error) {
	return copyPipe(dst, src)
}

// unsupported returns the error for a feature the platform lacks: it names the
// feature and the GOOS, and matches errors.ErrUnsupported.
func unsupported(what string) error {
	return fmt.Errorf("pipe: %s on %s: %w", what, runtime.GOOS, errors.ErrUnsupported)
}

// flagNames spells the Pipe2 flags set in flags, as "O_CLOEXEC|O_NONBLOCK".
func flagNames(flags int) string {
	s := ""
	for _, f := range []struct {
		bit  int
		name string
	}{{O_CLOEXEC, "O_CLOEXEC"}, {O_NONBLOCK, "O_NONBLOCK"}, {O_DIRECT, "O_DIRECT"}} {
		if flags&f.bit != 0 {
			if s != "" {
				s += "|"
			}
			s += f.name
		}
	}
	return s
}
