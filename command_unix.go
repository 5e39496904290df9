//go:build aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris

package pipe

import "os"

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
