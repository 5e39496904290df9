package pipe

// Which systems build which file: a file's name ends with the set of systems
// it is built for, and where Go's file-name rule does not already say it, its
// //go:build line names the same set. One meaning per suffix, package-wide:
//
//	(no suffix)      every system
//	_linux           Linux (and Android)
//	_darwin, _aix, _solaris
//	                 that system (_darwin also iOS, _solaris also illumos)
//	_bsd             darwin, DragonFly, FreeBSD, NetBSD, OpenBSD
//	_unix            every Unix, Linux included (//go:build unix)
//	_nonlinux        every system but Linux (//go:build !linux)
//	_unix_nonlinux   every Unix but Linux (//go:build unix && !linux)
//	_other           every system that is not Unix: Windows, Plan 9, js,
//	                 wasip1 (//go:build !unix)
//
// pipe2_*.go are named for how the system makes a pipe, one set each:
// _syscall, pipe2(2) itself (Linux, the BSDs but darwin, Solaris, illumos);
// _forklock, pipe(2) and fcntl(2) under syscall.ForkLock (darwin, AIX);
// _ospipe, os.Pipe (Windows, Plan 9); _nopipes, none (js, wasip1).
//
// The exported flag and size constants are declared in const_*.go, with
// each system's value, so that go doc shows the value of the system it runs
// on. The test files follow the same rule.

// Flags for [Splice], [Tee] and [Vmsplice]: Linux's values, the same on every
// architecture. Other systems have no such calls; the constants exist there
// so that portable code compiles.
const (
	SPLICE_F_MOVE     = 0x1 // accepted and ignored since Linux 2.6.21 (pages were to be moved, not copied)
	SPLICE_F_NONBLOCK = 0x2 // return EAGAIN instead of waiting for a pipe side
	SPLICE_F_MORE     = 0x4 // more data follows, as MSG_MORE says to a socket destination
	SPLICE_F_GIFT     = 0x8 // Vmsplice only: the pages, page-aligned and never touched again, are the kernel's
)
