package pipe

import "golang.org/x/sys/unix"

// O_DIRECT makes the pipe work in packet mode (Linux 3.4 and later): each
// write of up to [PIPE_BUF] bytes becomes one packet, and a read returns at
// most one packet, discarding whatever of it does not fit in the buffer. The
// kernel reports the flag with fcntl(F_GETFL) on the write end only. Kernels
// older than 3.4 reject it with EINVAL.
const O_DIRECT = unix.O_DIRECT // its value differs across Linux architectures

// supportedFlags are the Pipe2 flags this platform honours.
const supportedFlags = O_CLOEXEC | O_NONBLOCK | O_DIRECT
