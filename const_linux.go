package pipe

import "golang.org/x/sys/unix"

// Linux's values of the exported constants (constants.go), and what Pipe2
// honours.
const (
	oCLOEXEC       = unix.O_CLOEXEC
	oNONBLOCK      = unix.O_NONBLOCK
	oDIRECT        = unix.O_DIRECT // its value differs across Linux architectures
	pipeBuf        = 4096
	supportedFlags = O_CLOEXEC | O_NONBLOCK | O_DIRECT
)

// fionread is the ioctl that reports the unread bytes of a pipe: FIONREAD in
// C, which x/sys calls TIOCINQ on Linux (the same number).
const fionread = unix.TIOCINQ
