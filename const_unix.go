//go:build unix

package pipe

import "golang.org/x/sys/unix"

// Flags for [Pipe2], ORed together: the system's own open(2) flags.
const (
	// O_CLOEXEC sets close-on-exec on both ends, so that no child process
	// inherits them unless it is handed them (exec.Cmd's Stdin, Stdout,
	// Stderr and ExtraFiles clear the flag in the child only).
	O_CLOEXEC = unix.O_CLOEXEC

	// O_NONBLOCK makes both ends non-blocking, so that the files use the
	// runtime poller: deadlines work, and a Read or Write that waits parks
	// its goroutine and is woken by Close.
	O_NONBLOCK = unix.O_NONBLOCK
)

// supportedFlags are the Pipe2 flags this system honours.
const supportedFlags = O_CLOEXEC | O_NONBLOCK | packetMode
