package pipe

// Flags for [Pipe2], ORed together. On Linux, the BSDs, darwin, Solaris,
// illumos and AIX O_CLOEXEC and O_NONBLOCK are the system's open(2) flags;
// elsewhere, and for O_DIRECT outside Linux, the values are Linux's on amd64,
// so that portable code compiles. Pipe2 rejects a flag the platform cannot
// honour with an error matching [errors.ErrUnsupported].
const (
	// O_CLOEXEC sets close-on-exec on both ends, so that no child process
	// inherits them unless it is handed them (exec.Cmd's Stdin, Stdout,
	// Stderr and ExtraFiles clear the flag in the child only). On Windows and
	// Plan 9 it is accepted: os/exec hands a child only the files named.
	O_CLOEXEC = oCLOEXEC

	// O_NONBLOCK makes both ends non-blocking, so that the files use the
	// runtime poller: deadlines work, and a Read or Write that waits parks
	// its goroutine and is woken by Close.
	O_NONBLOCK = oNONBLOCK

	// O_DIRECT makes the pipe work in packet mode (Linux only): each write of
	// up to PIPE_BUF bytes becomes one packet, and a read returns at most one
	// packet, discarding whatever of it does not fit. The kernel shows the
	// flag in F_GETFL on the write end only.
	O_DIRECT = oDIRECT
)

// PIPE_BUF is the largest write the system keeps atomic: a write of up to
// PIPE_BUF bytes to a pipe is never interleaved with other writers' data,
// and when non-blocking it is written whole or fails with EAGAIN. Larger
// writes may be split. In packet mode it is also the largest packet. Linux:
// 4096; darwin and the BSDs: 512; Solaris and illumos: 5120; AIX: 32768;
// elsewhere 512, POSIX's minimum, with no guarantee documented.
const PIPE_BUF = pipeBuf

// Flags for [Splice], [Tee] and [Vmsplice]: Linux's values, the same on every
// architecture. Other systems have no such calls; the constants exist there
// so that portable code compiles.
const (
	SPLICE_F_MOVE     = 0x1 // accepted and ignored since Linux 2.6.21 (pages were to be moved, not copied)
	SPLICE_F_NONBLOCK = 0x2 // return EAGAIN instead of waiting for a pipe side
	SPLICE_F_MORE     = 0x4 // more data follows, as MSG_MORE says to a socket destination
	SPLICE_F_GIFT     = 0x8 // Vmsplice only: the pages, page-aligned and never touched again, are the kernel's
)
