//go:build !(aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris)

package pipe

// The values of the exported constants (constants.go) where there is no
// pipe2(2) (Windows, Plan 9, js, wasip1): Linux's on amd64, so that portable
// code compiles. PIPE_BUF is POSIX's minimum; no guarantee is documented.
// What Pipe2 honours is in pipe2_ospipe.go and pipe2_nopipes.go.
const (
	oCLOEXEC  = 0x80000
	oNONBLOCK = 0x800
	oDIRECT   = 0x4000
	pipeBuf   = 512
)
