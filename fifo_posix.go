//go:build aix || darwin || dragonfly || freebsd || netbsd || openbsd || solaris

package pipe

import (
	"os"

	"golang.org/x/sys/unix"
)

// rdwrFIFO tells whether OpenFIFO accepts O_RDWR: POSIX leaves opening a
// FIFO for both reading and writing undefined, so only Linux does.
const rdwrFIFO = false

// writerSeen reports whether the FIFO read end fd has seen a writer: whether
// data has arrived, according to FIONREAD. What poll(2) and kqueue report
// for a FIFO whose writer has not yet connected or has gone differs across
// these kernels (some report end of file before any writer came), so a
// hang-up is not taken as proof that a writer was there.
func writerSeen(fd int) (bool, error) {
	n, err := unix.IoctlGetInt(fd, fionread)
	if err != nil {
		return false, os.NewSyscallError("ioctl", err)
	}
	return n > 0, nil
}
