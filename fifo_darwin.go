package pipe

import (
	"os"

	"golang.org/x/sys/unix"
)

func init() { settleFIFO = blockingFIFO }

// blockingFIFO replaces the FIFO end f, which is in the runtime poller, with a
// blocking file for the same open file description. darwin's kqueue does
// not report a FIFO's last writer leaving (golang/go#24164): a Read parked in
// the poller would miss end of file and wait for ever, which is why
// os.OpenFile keeps FIFOs out of the poller here. The descriptor is
// duplicated with close-on-exec, f is closed, and the duplicate is made
// blocking before os.NewFile sees it, so the new file stays out of the
// poller. f is closed whatever happens.
func blockingFIFO(f *os.File) (*os.File, error) {
	name := f.Name()
	nfd := -1
	var dupErr error
	rc, err := f.SyscallConn()
	if err == nil {
		err = rc.Control(func(fd uintptr) {
			nfd, dupErr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
		})
	}
	_ = f.Close() // the duplicate, or the error, is what the caller gets
	if err == nil && dupErr != nil {
		err = os.NewSyscallError("fcntl", dupErr)
	}
	if err == nil {
		if err = unix.SetNonblock(nfd, false); err != nil {
			_ = unix.Close(nfd) // unused: the fcntl error is the one to report
			err = os.NewSyscallError("fcntl", err)
		}
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(nfd), name), nil
}
