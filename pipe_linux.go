package pipe

import (
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// O_DIRECT makes the pipe work in packet mode (Linux 3.4 and later): each
// write of up to [PIPE_BUF] bytes becomes one packet, and a read returns at
// most one packet, discarding whatever of it does not fit in the buffer. The
// kernel reports the flag with fcntl(F_GETFL) on the write end only. Kernels
// older than 3.4 reject it with EINVAL.
const O_DIRECT = unix.O_DIRECT // its value differs across Linux architectures

// supportedFlags are the Pipe2 flags this platform honours.
const supportedFlags = O_CLOEXEC | O_NONBLOCK | O_DIRECT

// PIPE_BUF is the largest write that Linux keeps atomic: a write of up to
// PIPE_BUF bytes to a pipe is never interleaved with other writers' data, and
// when non-blocking it is written whole or fails with EAGAIN. Larger writes
// may be split. In packet mode it is also the largest packet.
const PIPE_BUF = 4096

// fionread is the ioctl that reports the unread bytes of a pipe. Linux calls
// it FIONREAD in C; x/sys names it TIOCINQ, which has the same number.
const fionread = unix.TIOCINQ

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
