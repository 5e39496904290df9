package pipe

import "golang.org/x/sys/unix"

// O_DIRECT makes the pipe [Pipe2] creates work in packet mode (Linux 3.4):
// each write of up to PIPE_BUF bytes becomes one packet, and a read returns
// at most one packet, discarding whatever of it does not fit. The kernel
// shows the flag in F_GETFL on the write end only. Its value differs across
// Linux architectures.
const O_DIRECT = unix.O_DIRECT

// PIPE_BUF is the largest write Linux keeps atomic (pipe(7)): a write of up
// to PIPE_BUF bytes to a pipe is never interleaved with other writers' data,
// and when non-blocking it is written whole or fails with EAGAIN. Larger
// writes may be split. In packet mode it is also the largest packet.
const PIPE_BUF = 4096

// packetMode is the packet-mode flag Pipe2 honours.
const packetMode = O_DIRECT

// fionread is the ioctl that reports the unread bytes of a pipe: FIONREAD in
// C, which x/sys calls TIOCINQ on Linux (the same number).
const fionread = unix.TIOCINQ
