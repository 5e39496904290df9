//go:build !(aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris || windows)

package pipe

import (
	"errors"
	"os"
	"os/exec"
	"strings"
)

// endsTakeDeadlines says whether the parent's ends of a Cmd's pipes take
// deadlines, for WaitDelay: os.Pipe's blocking ends on Plan 9 do not.
const endsTakeDeadlines = false

// childPipe returns os.Pipe's pipe on Plan 9, where neither end uses the
// runtime poller, and an error matching errors.ErrUnsupported on js/wasm and
// wasip1, which have no pipes.
func childPipe(childReads bool) (parent, child *os.File, err error) {
	r, w, err := pipe2(O_CLOEXEC)
	if err != nil {
		return nil, nil, err
	}
	if childReads {
		return w, r, nil
	}
	return r, w, nil
}

// extraFiles reports whether exec.Cmd.ExtraFiles works: Plan 9 has it; on
// js and wasip1 childPipe fails first.
func extraFiles() error { return nil }

// checkBlocking has nothing to check: these pipes are blocking.
func checkBlocking(stream string, f *os.File) error { return nil }

// diedOfSIGPIPE reports whether err is the exit of a command killed for
// writing to a pipe whose reader has gone: on Plan 9, by the note "sys:
// write on closed pipe", which its exit message carries (js and wasip1 start
// no processes).
func diedOfSIGPIPE(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && strings.Contains(ee.String(), "write on closed pipe")
}
