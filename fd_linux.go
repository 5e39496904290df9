package pipe

import "golang.org/x/sys/unix"

// Descriptor helpers that only Linux's code uses: the FIFO reader's
// readiness check and every transfer's wait.

// ready reports whether fd is ready for events (POLLIN or POLLOUT) without
// waiting. Errors and hang-ups count as ready: the next call reports them.
func ready(fd int, events int16) bool {
	return pollFD(fd, events, 0)
}

// pollFD waits up to timeout milliseconds (-1: for ever) for fd to be ready
// for events, and reports whether it is. An error counts as ready.
func pollFD(fd int, events int16, timeout int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
	n, err := ignoringEINTR(func() (int, error) { return unix.Poll(fds, timeout) })
	return err != nil || (n > 0 && fds[0].Revents != 0)
}
