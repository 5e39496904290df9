package pipe

import (
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxPipeSize is the file that holds the unprivileged limit on capacity.
const maxPipeSize = "/proc/sys/fs/pipe-max-size"

func capacity(f *os.File) (n int, err error) {
	err = control("fcntl", f, func(fd int) error {
		n, err = unix.FcntlInt(uintptr(fd), unix.F_GETPIPE_SZ, 0)
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

func setCapacity(f *os.File, n int) (got int, err error) {
	// The kernel takes an unsigned int and refuses more than 2^31 bytes; a
	// negative int would reach it as a huge size, so say EINVAL here.
	if n < 0 || int64(n) > 1<<31 {
		return 0, os.NewSyscallError("fcntl", syscall.EINVAL)
	}
	err = control("fcntl", f, func(fd int) error {
		got, err = unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, n)
		return err
	})
	if err != nil {
		return 0, err // fcntl(2) answers -1 with its errors
	}
	return got, nil
}

func maxCapacity() (int, error) {
	b, err := os.ReadFile(maxPipeSize)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, &os.PathError{Op: "parse", Path: maxPipeSize, Err: err}
	}
	return n, nil
}
