//go:build linux

package pipe

import "golang.org/x/sys/unix"

// rdwrFIFO tells whether OpenFIFO accepts O_RDWR: Linux defines it for
// FIFOs (fifo(7)), and such an open never waits.
const rdwrFIFO = true

// writerSeen reports whether the FIFO read end fd has seen a writer, asking
// poll(2) without waiting. Linux reports POLLIN once data has arrived and
// POLLHUP once a writer has come and gone, never merely because no writer
// has connected yet; a writer that has connected and written nothing shows
// nowhere.
func writerSeen(fd int) (bool, error) {
	return ready(fd, unix.POLLIN), nil // an error counts as ready: the Read reports it
}
