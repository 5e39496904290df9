//go:build aix || darwin || dragonfly || freebsd || netbsd || openbsd || solaris

package pipe

// O_DIRECT asks for packet mode, which only Linux pipes have: here Pipe2
// rejects it with an error matching errors.ErrUnsupported. The value is
// Linux's (on amd64); it is neither O_CLOEXEC nor O_NONBLOCK on any platform.
// This platform's own O_DIRECT, where it has one, means direct I/O on files,
// which pipes do not do.
const O_DIRECT = 0x4000

// supportedFlags are the Pipe2 flags this platform honours.
const supportedFlags = O_CLOEXEC | O_NONBLOCK

// fionread is FIONREAD, the ioctl that reports the unread bytes of a pipe.
// x/sys does not define it on these systems; all of them spell it
// _IOR('f', 127, int): IOC_OUT, the size of an int, group 'f', number 127.
const fionread = 0x40000000 | 4<<16 | 'f'<<8 | 127 // 0x4004667f
