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

// readyFor reports whether fd is ready for events (POLLIN or POLLOUT)
// themselves, without waiting: a call that answered EAGAIN would now go
// through (wants). A pending error alone does not count for POLLIN: a
// socket's error queue (MSG_ZEROCOPY's completions, say) makes poll(2)
// report POLLERR for as long as it holds anything, while read(2) answers
// EAGAIN, and a wait that took that for readiness would never park.
func readyFor(fd int, events int16) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
	n, err := ignoringEINTR(func() (int, error) { return unix.Poll(fds, 0) })
	return err != nil || n > 0 && fds[0].Revents&wants(events) != 0
}

// wants returns the poll(2) answers that show a side ready for events: for
// POLLIN data or a hang-up (read(2) returns 0), for POLLOUT room or an
// error (write(2) reports it: EPIPE, say).
func wants(events int16) int16 {
	if events == unix.POLLIN {
		return unix.POLLIN | unix.POLLHUP | unix.POLLNVAL
	}
	return unix.POLLOUT | unix.POLLERR | unix.POLLHUP | unix.POLLNVAL
}
