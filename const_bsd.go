//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package pipe

import "golang.org/x/sys/unix"

// The values of the exported constants (constants.go) on darwin and the BSDs, and what
// Pipe2 honours: no packet mode, so O_DIRECT is Linux's value (amd64), which
// is neither flag here. The system's own O_DIRECT, where it has one, means
// direct I/O on files.
const (
	oCLOEXEC       = unix.O_CLOEXEC
	oNONBLOCK      = unix.O_NONBLOCK
	oDIRECT        = 0x4000
	pipeBuf        = 512
	supportedFlags = O_CLOEXEC | O_NONBLOCK
)

// fionread is FIONREAD, the ioctl that reports the unread bytes of a pipe,
// which x/sys does not define here: _IOR('f', 127, int), the same number on
// every one of these systems.
const fionread = 0x40000000 | 4<<16 | 'f'<<8 | 127 // 0x4004667f
