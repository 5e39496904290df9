//go:build unix

package pipe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// fifoCreateMode is the mode OpenFIFO gives a FIFO it creates (less the
// umask), as containerd/fifo does: the owner may read and write.
const fifoCreateMode = 0o600

// settleFIFO turns the FIFO end f, non-blocking and in the runtime poller,
// into the file OpenFIFO returns: f as it is, as os.OpenFile leaves a FIFO,
// except on darwin, where fifo_darwin.go puts blockingFIFO here.
var settleFIFO = func(f *os.File) (*os.File, error) { return f, nil }

func mkfifo(path string, mode os.FileMode) error {
	err := whileEINTR(func() error { return unix.Mkfifo(path, uint32(mode)) })
	if err != nil {
		return &os.PathError{Op: "mkfifo", Path: path, Err: err}
	}
	return nil
}

func openFIFO(ctx context.Context, path string, flag int) (*os.File, error) {
	create, excl := flag&os.O_CREATE != 0, flag&os.O_EXCL != 0
	flag &^= os.O_CREATE | os.O_EXCL
	if flag == os.O_RDWR && !rdwrFIFO {
		return nil, unsupported("OpenFIFO with O_RDWR")
	}
	if create {
		// As open(2) with O_CREAT, but a FIFO: an existing file, of any
		// type, is left as it is, and refused below if it is no FIFO.
		if err := mkfifo(path, fifoCreateMode); err != nil && (excl || !errors.Is(err, os.ErrExist)) {
			return nil, ctxFirst(ctx, path, err)
		}
	}
	fd, err := openNonblock(path, flag)
	if flag == os.O_WRONLY {
		fd, err = awaitReader(ctx, path, fd, err)
	}
	if err != nil {
		return nil, ctxFirst(ctx, path, err)
	}
	// The descriptor has O_NONBLOCK, so os.NewFile registers it with the
	// runtime poller on every system here (darwin's exception for FIFOs
	// covers only os.OpenFile); settleFIFO decides what the caller gets.
	f := os.NewFile(uintptr(fd), path)
	if flag == os.O_RDONLY {
		if err := awaitWriter(ctx, f); err != nil {
			_ = f.Close() // the wait's error is the one to report
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
	}
	if f, err = settleFIFO(f); err != nil {
		return nil, err
	}
	own(f) // made by os.NewFile, so Fd keeps O_NONBLOCK (darwin's file is blocking: nothing to keep)
	return f, nil
}

// ctxFirst returns err, or ctx's error if ctx is done: when the path
// vanishes as the caller gives up, the caller's reason is the one to
// report.
func ctxFirst(ctx context.Context, path string, err error) error {
	if err != nil && ctx.Err() != nil {
		return &os.PathError{Op: "open", Path: path, Err: ctx.Err()}
	}
	return err
}

// openNonblock opens path with O_NONBLOCK and O_CLOEXEC, and O_NOCTTY in
// case it has turned into a terminal, if it is a FIFO. It checks with
// stat(2) first, since opening a device can have effects of its own (a tape
// rewinds, a watchdog starts), and with fstat(2) after, since the path may
// have been replaced in between; what is not a FIFO is closed again and
// refused.
func openNonblock(path string, flag int) (int, error) {
	var st unix.Stat_t
	if err := whileEINTR(func() error { return unix.Stat(path, &st) }); err != nil {
		return -1, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if err := checkFIFO(path, uint32(st.Mode)); err != nil {
		return -1, err
	}
	var fd int
	err := whileEINTR(func() (err error) {
		fd, err = unix.Open(path, flag|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
		return err
	})
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	if err = whileEINTR(func() error { return unix.Fstat(fd, &st) }); err != nil {
		err = &os.PathError{Op: "fstat", Path: path, Err: err}
	} else {
		err = checkFIFO(path, uint32(st.Mode))
	}
	if err != nil {
		_ = unix.Close(fd) // opened only to be checked
		return -1, err
	}
	return fd, nil
}

// checkFIFO returns nil if mode is a FIFO's and an error saying what path is
// instead otherwise.
func checkFIFO(path string, mode uint32) error {
	var kind string
	switch mode & unix.S_IFMT {
	case unix.S_IFIFO:
		return nil
	case unix.S_IFREG:
		kind = "regular file"
	case unix.S_IFDIR:
		kind = "directory"
	case unix.S_IFCHR:
		kind = "character device"
	case unix.S_IFBLK:
		kind = "block device"
	case unix.S_IFSOCK:
		kind = "socket"
	default:
		kind = fmt.Sprintf("file of type %#o", mode&unix.S_IFMT)
	}
	return &os.PathError{Op: "open", Path: path, Err: fmt.Errorf("not a FIFO but a %s: %w", kind, syscall.EINVAL)}
}
