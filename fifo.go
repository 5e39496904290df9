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
// bit gives an error matching [syscall.EINVAL]. Errors are [*os.PathError]s
// for "mkfifo": a path that exists already matches [os.ErrExist].
//
// Windows, Plan 9, js and wasip1 give an error matching
// [errors.ErrUnsupported].
func Mkfifo(path string, mode os.FileMode) error {
	if mode&^(os.ModePerm|os.ModeNamedPipe) != 0 {
		return &os.PathError{Op: "mkfifo", Path: path, Err: syscall.EINVAL}
	}
	return mkfifo(path, mode.Perm())
}

// OpenFIFO opens the named pipe at path for reading (flag [os.O_RDONLY]),
// writing ([os.O_WRONLY]) or, on Linux, both ([os.O_RDWR]), waiting for the
// other side as open(2) would but without holding an OS thread: the
// descriptor is opened with O_NONBLOCK and the goroutine waits in the runtime
// poller or on a timer. The file is close-on-exec, uses the runtime poller
// (deadlines work, Close wakes a waiting Read or Write), and works with
// [Buffered], [Capacity], [SetCapacity], [Splice], [Tee], [Copy] and
// [SetNonblock] as a pipe's end does.
//
// What the call waits for depends on flag:
//
//   - O_RDONLY: until a writer has shown itself, so that the file never reads
//     end of file before a writer has connected. The kernel does not tell a
//     reader when a writer opens, only when data arrives or when the last
//     writer closes, so OpenFIFO returns at the first byte written or, on
//     Linux, when a writer has come and gone (the file then reads end of file
//     at once). A writer that connects and writes nothing keeps it waiting.
//     Afterwards end of file means that every writer has gone, as for any
//     FIFO.
//   - O_WRONLY: until a reader has the FIFO open (a reader blocked in its own
//     open(2) counts). open(2) with O_NONBLOCK fails with ENXIO until then, so
//     OpenFIFO retries it after 1 ms, doubling to at most 20 ms between
//     tries: it connects within about 20 ms of a reader appearing.
//   - O_RDWR (Linux only; POSIX leaves it undefined): at once. While this end
//     is open the FIFO always has a reader and a writer, so reads never see
//     end of file and writes never fail with EPIPE: a keep-alive end.
//
// When ctx is done first, OpenFIFO returns promptly with an error matching
// ctx.Err() and leaves nothing open and nothing running. A ctx already done
// opens nothing. flag must be exactly one of the three (an error matching
// [syscall.EINVAL] otherwise). A path that is not a FIFO is refused, with an
// error that says "not a FIFO" and matches [syscall.EINVAL], after at most
// opening it non-blocking for reading or writing (never creating or
// truncating anything) to check. Errors are [*os.PathError]s naming the
// system call and the path; a missing path matches [os.ErrNotExist].
//
// The BSDs, Solaris, illumos and AIX behave as Linux except that O_RDONLY
// returns only at the first byte written, and O_RDWR gives an error matching
// [errors.ErrUnsupported]. On darwin and iOS, whose kqueue does not report a
// FIFO's last writer leaving (golang/go#24164), OpenFIFO waits as described
// without a thread, but returns a blocking file, as os.OpenFile does there:
// its Read and Write hold a thread while they wait, it has no deadlines, and
// Close does not wake them. Windows, Plan 9, js and wasip1 give an error
// matching [errors.ErrUnsupported].
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
