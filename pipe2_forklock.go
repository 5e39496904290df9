//go:build aix || darwin

package pipe

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// pipe2 emulates pipe2(2), which these systems lack, with pipe(2) and
// fcntl(2). Between pipe and fcntl(F_SETFD) the descriptors are inheritable, so
// both calls happen under syscall.ForkLock held for reading, as os.Pipe does:
// the runtime's fork/exec takes it for writing, so no child started by Go
// inherits them. A fork made by C code is not held off.
func pipe2(flags int) (r, w *os.File, err error) {
	var p [2]int
	syscall.ForkLock.RLock()
	if err := unix.Pipe(p[:]); err != nil {
		syscall.ForkLock.RUnlock()
		return nil, nil, os.NewSyscallError("pipe", err)
	}
	if flags&O_CLOEXEC != 0 {
		for _, fd := range p {
			if _, err = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
				break
			}
		}
	}
	syscall.ForkLock.RUnlock()
	if err == nil && flags&O_NONBLOCK != 0 {
		for _, fd := range p {
			if err = unix.SetNonblock(fd, true); err != nil {
				break
			}
		}
	}
	if err != nil {
		// Never half a pair: both descriptors are ours and unused.
		_ = unix.Close(p[0]) // the fcntl error is the one to report
		_ = unix.Close(p[1])
		return nil, nil, os.NewSyscallError("fcntl", err)
	}
	r, w = newPipePair(p, flags)
	return r, w, nil
}
