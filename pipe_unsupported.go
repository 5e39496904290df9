//go:build !(aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris || plan9 || windows)

package pipe

import "os"

// supportedFlags are the Pipe2 flags this platform honours. All are let
// through so that the error names what is really missing: pipes.
const supportedFlags = O_CLOEXEC | O_NONBLOCK | O_DIRECT

// pipe2 fails: this platform (js/wasm, wasip1) has no pipes.
func pipe2(flags int) (r, w *os.File, err error) {
	return nil, nil, unsupported("pipes")
}
