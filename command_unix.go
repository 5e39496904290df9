//go:build unix

package pipe

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// endsTakeDeadlines says whether the parent's ends of a Cmd's pipes take
// deadlines, for WaitDelay: they are in the runtime poller here.
const endsTakeDeadlines = true

// childPipe makes a pipe to hand one end to a child process: both ends
// close-on-exec, so that no other child inherits them (exec clears the flag
// in the child it hands its end to). The pipe is made non-blocking, so that
// os.NewFile registers both files with the runtime poller, and the child's
// end is then switched back to blocking, as programs expect: O_NONBLOCK
// belongs to the open file description, and the two ends of a pipe are two
// descriptions, so the parent's end stays non-blocking and pollable. The
// child's *os.File is never read or written here, so its poller registration
// costs only an epoll_ctl (or kevent) each way; in exchange the pipe comes
// from pipe2, with its atomic O_CLOEXEC or, on darwin and AIX, its ForkLock.
func childPipe(childReads bool) (parent, child *os.File, err error) {
	r, w, err := pipe2(O_CLOEXEC | O_NONBLOCK)
	if err != nil {
		return nil, nil, err
	}
	parent, child = w, r
	if !childReads {
		parent, child = r, w
	}
	if err := setNonblock(child, false); err != nil {
		_ = r.Close() // a fresh pipe nothing used: the fcntl error is the one to report
		_ = w.Close()
		return nil, nil, err
	}
	return parent, child, nil
}

// extraFiles reports whether exec.Cmd.ExtraFiles works: it does on Unix.
func extraFiles() error { return nil }

// checkBlocking refuses a file that would reach the child non-blocking:
// programs handed one fail with EAGAIN or, worse, lose data silently (a
// shell's read gets an empty line, python3's stdin.read() stops at the first
// empty moment). exec.Cmd gets each file's descriptor with Fd, which makes a
// file blocking again if os made it non-blocking (os.Pipe's, os.OpenFile's,
// net's File): those are handed over correctly and pass. Only the files this
// package made from a non-blocking descriptor keep O_NONBLOCK through Fd
// (see owned), so only those are refused, and only while they have it. The
// usual way to get one is os/exec's idiom b.Stdin, _ = a.StdoutPipe(), whose
// end here is the parent's, non-blocking.
func checkBlocking(stream string, f *os.File) error {
	var keeps bool
	if control("fcntl", f, func(fd int) (err error) {
		keeps, err = keepsNonblock(fd, f)
		return err
	}) != nil || !keeps {
		return nil // a closed file (exec reports it its own way) or one that reaches the child blocking
	}
	return misuse("%s %s would reach the child non-blocking, which programs mishandle: connect commands with Chain, or call SetNonblock(f, false) first", stream, f.Name())
}

// diedOfSIGPIPE reports whether err is the exit of a command killed by
// SIGPIPE, which a program gets when it writes to a pipe whose reader has
// gone (unless it ignores or catches the signal, and then sees EPIPE).
func diedOfSIGPIPE(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGPIPE
}
