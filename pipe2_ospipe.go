//go:build plan9 || windows

package pipe

import "os"

// supportedFlags are the Pipe2 flags this platform honours.
const supportedFlags = O_CLOEXEC

// pipe2 returns os.Pipe's pipe for flags 0 and O_CLOEXEC alike: os/exec hands
// a child only the files named in the exec.Cmd, so neither is inherited by
// children that Go starts.
func pipe2(flags int) (r, w *os.File, err error) {
	return os.Pipe()
}
