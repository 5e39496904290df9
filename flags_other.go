//go:build !(aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris)

package pipe

// Flags for [Pipe2]. This platform has no pipe2(2): the values are Linux's (on
// amd64) so that portable code compiles, and the package gives them their
// meaning. Pipe2 accepts O_CLOEXEC on Windows and Plan 9 and rejects the others
// with an error matching errors.ErrUnsupported.
const (
	// O_CLOEXEC asks that no child process inherit the ends unless it is handed
	// them. Windows and Plan 9 pipes from os.Pipe already behave so for the
	// children that os/exec starts.
	O_CLOEXEC = 0x80000

	// O_NONBLOCK asks for non-blocking ends that use the runtime poller.
	// Unsupported on this platform.
	O_NONBLOCK = 0x800

	// O_DIRECT asks for packet mode (see pipe(7) on Linux). Unsupported on this
	// platform.
	O_DIRECT = 0x4000
)

// PIPE_BUF is the size up to which writes to a pipe are atomic on POSIX
// systems at the least. This platform documents no such guarantee; the value
// is POSIX's minimum, given so that portable code compiles.
const PIPE_BUF = 512
