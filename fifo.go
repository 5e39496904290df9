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
// side without holding an OS thread: it opens with O_NONBLOCK and waits in
// the runtime poller or on a timer. What it waits for differs from a
// blocking open(2) for readers, as the list below says. The file is
// close-on-exec and, being non-blocking, uses the runtime poller: deadlines
// work, Close wakes a waiting Read or Write, and [Buffered], [Capacity],
// [SetCapacity], [Splice], [Tee] and [Copy] treat it as a pipe's end. Use
// [SetNonblock](f, false) before handing it to a child process.
//
// What OpenFIFO waits for:
//
//   - O_RDONLY: a writer. The kernel does not tell a reader that a writer
//     has opened the FIFO, only that data has arrived or that the last writer
//     has closed, so OpenFIFO returns at the first byte written or, on Linux,
//     once a writer has come and gone (the file then reads EOF). A writer that
//     connects and writes nothing keeps it waiting, so a handshake in which
//     the writer waits for word from this program before writing deadlocks
//     where a blocking open(2) would not: open such a FIFO with O_RDWR (Linux)
//     or after the word is sent. The file never reads EOF
//     before a writer has connected; afterwards EOF means every writer has
//     gone, as for any FIFO.
//   - O_WRONLY: a reader, which may be blocked in its own open(2). Until one
//     comes, open(2) with O_NONBLOCK fails with ENXIO; OpenFIFO tries again
//     every 20 ms, so it connects within about 20 ms of the reader. Each
//     waiting writer costs a wake-up and an open(2) per try, so the CPU time
//     of waiting grows with the number of writers waiting.
//   - O_RDWR: nothing; it opens at once. While this end is open the FIFO has
//     a reader and a writer, so reads never see EOF and writes never fail
//     with EPIPE: a keep-alive end. POSIX leaves O_RDWR on a FIFO undefined;
//     other systems give an error matching [errors.ErrUnsupported].
//
// When ctx is done first, OpenFIFO returns at once with an error matching
// ctx.Err(), leaving nothing open and nothing running. flag must be one of
// the three, or the error matches [syscall.EINVAL]. A path that is not a
// FIFO is refused with an error that says "not a FIFO" and matches
// syscall.EINVAL; it is checked with stat(2) before the open and fstat(2)
// after it, and nothing is ever created or truncated. Other errors are
// [*os.PathError] values naming the system call; a missing path matches
// [os.ErrNotExist].
//
// The BSDs, Solaris, illumos and AIX behave like Linux, except that an
// O_RDONLY open returns only at the first byte written. darwin and iOS wait
// in the same way, but their kqueue misses a FIFO's last writer leaving
// (golang/go#24164), so the file returned there is blocking, as os.OpenFile
// makes FIFOs there: its Read and Write hold a thread while they wait, it
// has no deadlines, and Close does not wake them. Windows, Plan 9, js and
// wasip1 give an error matching [errors.ErrUnsupported].
func OpenFIFO(ctx context.Context, path string, flag int) (*os.File, error) {
	if ctx == nil {
		return nil, fmt.Errorf("pipe: OpenFIFO with a nil context: %w", os.ErrInvalid)
	}
	switch flag {
	case os.O_RDONLY, os.O_WRONLY, os.O_RDWR:
	default:
		return nil, &os.PathError{Op: "open", Path: path, Err: syscall.EINVAL}
	}
	if err := ctx.Err(); err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return openFIFO(ctx, path, flag)
}
