//go:build !unix

package pipe

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// endsTakeDeadlines says whether the parent's ends of a Cmd's pipes take
// deadlines, for WaitDelay: os.Pipe's blocking ends (Plan 9) and synchronous
// handles (Windows) do not.
const endsTakeDeadlines = false

// childPipe returns os.Pipe's pipe on Windows and Plan 9, where neither end
// uses the runtime poller and a child gets only the files os/exec hands it,
// and an error matching errors.ErrUnsupported on js/wasm and wasip1, which
// have no pipes.
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

// extraFiles reports whether exec.Cmd.ExtraFiles works: not on Windows;
// Plan 9 has it; on js and wasip1 childPipe fails first.
func extraFiles() error {
	if runtime.GOOS == "windows" {
		return unsupported("ExtraPipe (exec.Cmd.ExtraFiles)")
	}
	return nil
}

// checkBlocking has nothing to check: these pipes are blocking.
func checkBlocking(stream string, f *os.File) error { return nil }

// diedOfSIGPIPE reports whether err is the exit of a command killed for
// writing to a pipe whose reader has gone: on Plan 9, by the note "sys:
// write on closed pipe", which its exit message carries. Windows has no
// such signal (the write fails, and the program exits as it chooses); js
// and wasip1 start no processes.
func diedOfSIGPIPE(err error) bool {
	var ee *exec.ExitError
	return runtime.GOOS == "plan9" && errors.As(err, &ee) && strings.Contains(ee.String(), "write on closed pipe")
}
