package pipe

// Flags for [Splice], [Tee] and [Vmsplice]: Linux's values, the same on every
// architecture. Other systems have no such calls; the constants exist there
// so that portable code compiles.
const (
	SPLICE_F_MOVE     = 0x1 // accepted and ignored since Linux 2.6.21 (pages were to be moved, not copied)
	SPLICE_F_NONBLOCK = 0x2 // return EAGAIN instead of waiting for a pipe side
	SPLICE_F_MORE     = 0x4 // more data follows, as MSG_MORE says to a socket destination
	SPLICE_F_GIFT     = 0x8 // Vmsplice only: the pages, page-aligned and never touched again, are the kernel's
)
