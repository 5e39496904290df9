package pipe

import (
	"context"
	"fmt"
	"os"
	"syscall"
)

// Mkfifo creates a named pipe (FIFO) at path with mkfifo(2) and the
// permission bits of mode, which the umask then clears as for any new file.
// Besides the permission bits, mode may carry [os.ModeNamedPipe]; any other
// bit gives an error matching [syscall.EINVAL]. Errors are [*os.PathError]
// values for "mkfifo": a path that exists already matches [os.ErrExist].
//
// Windows, Plan 9, js and wasip1 give an error matching
// [errors.ErrUnsupported].
func Mkfifo(path string, mode os.FileMode) error {
	if mode&^(os.ModePerm|os.ModeNamedPipe) != 0 {
		return &os.PathError{Op: "mkfifo", Path: path, Err: syscall.EINVAL}
	}
	return mkfifo(path, mode.Perm())
}

// OpenFIFO opens the named pipe at path for reading ([os.O_RDONLY]), writing
// ([os.O_WRONLY]) or, on Linux, both ([os.O_RDWR]), and waits for the other
// side as a blocking open(2) would, but without holding an OS thread: it
// opens with O_NONBLOCK and waits in the runtime poller or on a timer. The
// file is close-on-exec and, being non-blocking, uses the runtime poller:
// deadlines work, Close wakes a waiting Read or Write, and [Buffered],
// [Capacity], [SetCapacity], [Splice], [Tee] and [Copy] treat it as a pipe's
// end. Use [SetNonblock](f, false) before handing it to a child process.
//
// What OpenFIFO waits for:
//
//   - O_RDONLY: a writer. On Linux it returns, as open(2) does, once a
//     writer has the FIFO open, whether or not it has written anything, or
//     once a writer has come and gone (the file then reads end of file);
//     elsewhere, see below. The file never reads end of file before a
//     writer has connected; afterwards end of file means every writer has
//     gone, as for any FIFO. Other readers opening the FIFO do not count.
//     It learns of writers from inotify (one instance for the whole process, one watch per FIFO,
//     only while something waits) and costs no CPU while it waits; where
//     inotify is out of reach (fs.inotify.max_user_instances used up) it
//     asks the kernel on the writers' clock below instead.
//   - O_WRONLY: a reader, which may be blocked in its own open(2). A reader
//     that opens without waiting, as OpenFIFO's own readers do, is seen at
//     once on Linux. One blocked in open(2) (cat, a shell's redirection)
//     raises no event, so waiting writers try open(2) again on a shared
//     clock, once per FIFO however many writers wait on it: they connect to
//     such a reader within 100 ms, and a thousand FIFOs with waiting
//     writers cost a few percent of a core.
//   - O_RDWR: nothing; it opens at once. While this end is open the FIFO has
//     a reader and a writer, so reads never see EOF and writes never fail
//     with EPIPE: a keep-alive end. POSIX leaves O_RDWR on a FIFO undefined;
//     other systems give an error matching [errors.ErrUnsupported].
//
// flag may also hold [os.O_CREATE]: a missing path is then made a FIFO
// with mode 0o600, less the umask, as by [Mkfifo] (which, unlike open(2),
// does not follow a dangling symlink: that gives os.ErrNotExist); with [os.O_EXCL] too, an
// existing path gives an error matching [os.ErrExist]. Other flags give an
// error matching [syscall.EINVAL].
//
// When ctx is done first, OpenFIFO returns at once with an error matching
// ctx.Err(), leaving nothing open and nothing running; that is the error
// even if the path vanished meanwhile. A writer that connected as ctx
// ended returns the file: closing it would show a reader that came a
// writer that left. A path that is not a FIFO is refused
// with an error that says "not a FIFO" and matches syscall.EINVAL; it is
// checked with stat(2) before the open and fstat(2) after it, and nothing
// is ever truncated, nor created but a FIFO. Other errors are
// [*os.PathError] values naming the system call; a missing path matches
// [os.ErrNotExist].
//
// The BSDs, Solaris, illumos and AIX have no inotify: there a writer tries
// open(2) again on a short timer shared by every waiting writer, and an O_RDONLY open returns only at the first
// byte written, so a writer that waits for word from this program before
// writing deadlocks with it; open such a FIFO after the word is sent.
// darwin and iOS wait in the same way, but their kqueue misses a FIFO's
// last writer leaving (golang/go#24164), so the file returned there is
// blocking, as os.OpenFile makes FIFOs there: its Read and Write hold a
// thread while they wait, it has no deadlines, and Close does not wake
// them. Windows, Plan 9, js and wasip1 give an error matching
// [errors.ErrUnsupported].
func OpenFIFO(ctx context.Context, path string, flag int) (*os.File, error) {
	if ctx == nil {
		return nil, fmt.Errorf("pipe: OpenFIFO with a nil context: %w", os.ErrInvalid)
	}
	switch flag &^ (os.O_CREATE | os.O_EXCL) {
	case os.O_RDONLY, os.O_WRONLY, os.O_RDWR:
		if flag&(os.O_CREATE|os.O_EXCL) != os.O_EXCL {
			break
		}
		fallthrough // O_EXCL without O_CREATE, undefined for open(2)
	default:
		return nil, &os.PathError{Op: "open", Path: path, Err: syscall.EINVAL}
	}
	if err := ctx.Err(); err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return openFIFO(ctx, path, flag)
}
