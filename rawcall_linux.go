package pipe

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The hot tries of vmsplice(2) and splice(2) are made with
// syscall.RawSyscall6, which does not tell the scheduler that the thread is
// in the kernel. With syscall.Syscall6 each try enters and leaves the
// scheduler's syscall state, and while two goroutines keep a pipe busy,
// sysmon wakes every 20 µs and takes their Ps away from calls it finds in
// that state, which costs context switches and breaks the two sides' step:
// 64 KiB chunks moved at 13.7-15.7 GB/s through Syscall6 and at 23.0-24.2
// through RawSyscall6 in the same minutes on a 2-core VM, against C's
// 19.8-22.7 (a test program of the bare loops).
//
// A raw call must not sleep: it holds its P, so no other goroutine runs on
// it and a garbage collection waits for it. Only calls that never wait are
// made raw: SPLICE_F_NONBLOCK, between descriptors that are pipes, /dev/null
// or /dev/zero, moving at most rawMax bytes. Such a call can still wait for
// the pipe's lock while another process holds it, splicing that pipe to or
// from a slow file or socket; that is the one case in which a P is held for
// longer than the copy itself.

// rawMax bounds the bytes one raw call may move: a vmsplice of rawMax pins
// rawMax/4096 pages, a few tens of microseconds.
const rawMax = 2 << 20

// quick reports whether a non-blocking splice between d and s never waits
// but for a pipe's lock: each side is a pipe, /dev/null or /dev/zero.
func quick(d, s *fdConn) bool {
	return (d.kind == kindPipe || d.kind == kindMem) && (s.kind == kindPipe || s.kind == kindMem)
}

// spliceNonblock is splice(rfd, nil, wfd, nil, n, flags|SPLICE_F_NONBLOCK),
// made raw when raw is set and n is at most rawMax.
func spliceNonblock(rfd, wfd, n, flags int, raw bool) (int, error) {
	flags |= SPLICE_F_NONBLOCK
	if !raw || n > rawMax {
		m, err := unix.Splice(rfd, nil, wfd, nil, n, flags)
		return int(m), err
	}
	r, _, e := syscall.RawSyscall6(unix.SYS_SPLICE, uintptr(rfd), 0, uintptr(wfd), 0, uintptr(n), uintptr(flags))
	if e != 0 {
		return 0, errnoErr(e)
	}
	return int(r), nil
}

// vmspliceNonblock is vmsplice(fd, iovs, flags|SPLICE_F_NONBLOCK) into a
// pipe, made raw when iovs hold at most rawMax bytes.
func vmspliceNonblock(fd int, iovs []unix.Iovec, flags int) (int, error) {
	flags |= SPLICE_F_NONBLOCK
	var total uint64
	for _, iov := range iovs {
		total += uint64(iov.Len)
	}
	if total > rawMax || len(iovs) == 0 {
		return unix.Vmsplice(fd, iovs, flags)
	}
	r, _, e := syscall.RawSyscall6(unix.SYS_VMSPLICE, uintptr(fd), uintptr(unsafe.Pointer(&iovs[0])), uintptr(len(iovs)), uintptr(flags), 0, 0)
	if e != 0 {
		return 0, errnoErr(e)
	}
	return int(r), nil
}

// errnoErr returns e, not 0, as an error, without allocating for the
// answers a retried call gets most (an Errno in an interface is boxed).
func errnoErr(e syscall.Errno) error {
	switch e {
	case unix.EAGAIN:
		return unix.EAGAIN
	case unix.EINTR:
		return unix.EINTR
	}
	return e
}
