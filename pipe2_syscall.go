//go:build unix && !aix && !darwin

package pipe

import (
	"os"

	"golang.org/x/sys/unix"
)

// pipe2 creates the pipe with one pipe2(2) call, so O_CLOEXEC is set
// atomically and no concurrent fork can inherit the descriptors. On failure
// the kernel has opened nothing.
func pipe2(flags int) (r, w *os.File, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], flags); err != nil {
		return nil, nil, os.NewSyscallError("pipe2", err)
	}
	r, w = newPipePair(p, flags)
	return r, w, nil
}
