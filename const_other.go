//go:build !unix

package pipe

// Flags for [Pipe2]. This system (Windows, Plan 9, js, wasip1) has no
// pipe2(2): the values are Linux's on amd64, so that portable code compiles.
const (
	// O_CLOEXEC is accepted on Windows and Plan 9, where it changes nothing:
	// os/exec hands a child process only the files named in the exec.Cmd.
	O_CLOEXEC = 0x80000

	// O_NONBLOCK gives an error matching [errors.ErrUnsupported]: os.Pipe's
	// ends are blocking here.
	O_NONBLOCK = 0x800
)

// PIPE_BUF is POSIX's minimum for the largest write kept atomic; no
// guarantee is documented for this system's pipes.
const PIPE_BUF = 512
