//go:build windows

package pipe

import "os"

// endsTakeDeadlines says whether the parent's ends of a Cmd's pipes take
// deadlines, for WaitDelay: os.Pipe's synchronous handles do not.
const endsTakeDeadlines = false

// childPipe returns os.Pipe's pipe: Windows gives a child process only the
// handles os/exec hands it, and os.Pipe's handles are synchronous, so
// neither end uses the runtime poller (no deadlines).
func childPipe(childReads bool) (parent, child *os.File, err error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	if childReads {
		return w, r, nil
	}
	return r, w, nil
}

// extraFiles reports whether exec.Cmd.ExtraFiles works: not on Windows.
func extraFiles() error { return unsupported("ExtraPipe (exec.Cmd.ExtraFiles)") }

// checkBlocking has nothing to check: these pipes are blocking.
func checkBlocking(stream string, f *os.File) error { return nil }

// diedOfSIGPIPE reports whether err is the exit of a command killed for
// writing to a pipe whose reader has gone: never on Windows, which has no
// such signal (the write fails, and the program exits as it chooses).
func diedOfSIGPIPE(err error) bool { return false }
