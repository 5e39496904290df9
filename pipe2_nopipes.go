//go:build !unix && !plan9 && !windows

package pipe

import "os"

// supportedFlags are the Pipe2 flags this platform honours: none, since it
// has no pipes (pipe2 says so for flags 0).
const supportedFlags = 0

// pipe2 fails: this platform (js/wasm, wasip1) has no pipes.
func pipe2(flags int) (r, w *os.File, err error) {
	return nil, nil, unsupported("pipes")
}
