//go:build aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris

package pipe

import "golang.org/x/sys/unix"

// Flags for [Pipe2], with the values of the platform's open(2) flags.
const (
	// O_CLOEXEC sets close-on-exec on both ends, so that no child process
	// inherits them unless it is handed them (exec.Cmd's Stdin, Stdout, Stderr
	// and ExtraFiles clear the flag in the child).
	O_CLOEXEC = unix.O_CLOEXEC

	// O_NONBLOCK makes both ends non-blocking, so that the files use the
	// runtime poller: deadlines work, and a Read or Write that waits parks its
	// goroutine and is woken by Close.
	O_NONBLOCK = unix.O_NONBLOCK
)
