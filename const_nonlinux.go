//go:build !linux

package pipe

// O_DIRECT asks [Pipe2] for packet mode, which only Linux has: here it gives
// an error matching [errors.ErrUnsupported]. The value is Linux's on amd64,
// so that portable code compiles; the system's own O_DIRECT, where it has
// one, means direct I/O on files.
const O_DIRECT = 0x4000

// packetMode is the packet-mode flag Pipe2 honours: none.
const packetMode = 0

// fionread is FIONREAD, the ioctl that reports the unread bytes of a pipe on
// every Unix but Linux, which x/sys does not define: _IOR('f', 127, int), the
// same number on each (the other systems never use it).
const fionread = 0x40000000 | 4<<16 | 'f'<<8 | 127 // 0x4004667f
