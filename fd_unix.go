//go:build unix

package pipe

import (
	"os"

	"golang.org/x/sys/unix"
)

// newPair wraps a fresh pipe's descriptors. os.NewFile reads F_GETFL: a
// descriptor that has O_NONBLOCK goes into the runtime poller, one without it
// stays blocking, and (*os.File).Fd changes neither.
func newPair(p [2]int) (r, w *os.File) {
	return os.NewFile(uintptr(p[0]), "|0"), os.NewFile(uintptr(p[1]), "|1")
}

// control runs fn on f's descriptor through f.SyscallConn().Control, which
// keeps the descriptor open for the call and leaves the file's poller state
// alone. op names the system call fn makes; its error comes back as an
// *os.SyscallError. A nil f gives os.ErrInvalid and a closed one os.ErrClosed,
// each in an *os.PathError.
func control(op string, f *os.File, fn func(fd int) error) error {
	if f == nil {
		return &os.PathError{Op: op, Path: "<nil>", Err: os.ErrInvalid}
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return &os.PathError{Op: op, Path: f.Name(), Err: err}
	}
	var opErr error
	if err := rc.Control(func(fd uintptr) { opErr = fn(int(fd)) }); err != nil {
		// Control fails only when the file is closed (or closing); the
		// error it gives for that is internal/poll's and matches nothing.
		return &os.PathError{Op: op, Path: f.Name(), Err: os.ErrClosed}
	}
	return os.NewSyscallError(op, opErr)
}

func setNonblock(f *os.File, nonblocking bool) error {
	return control("fcntl", f, func(fd int) error { return unix.SetNonblock(fd, nonblocking) })
}

func buffered(f *os.File) (n int, err error) {
	err = control("ioctl", f, func(fd int) error {
		n, err = unix.IoctlGetInt(fd, fionread)
		return err
	})
	return n, err
}

// ignoringEINTR calls fn until it returns something other than EINTR.
func ignoringEINTR(fn func() (int, error)) (int, error) {
	for {
		n, err := fn()
		if err != unix.EINTR {
			return n, err
		}
	}
}

// whileEINTR is ignoringEINTR for calls that return only an error.
func whileEINTR(fn func() error) error {
	_, err := ignoringEINTR(func() (int, error) { return 0, fn() })
	return err
}
