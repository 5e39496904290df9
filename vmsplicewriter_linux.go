package pipe

import (
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugePage is the size of a transparent huge page on the architectures that
// have them at 2 MiB (amd64, arm64 with 4 KiB pages, 386, ...). Elsewhere
// it only sets the alignment and the unit in which pages are replaced.
const hugePage = 2 << 20

// vmConn is the write end as vmsplice(2) uses it.
type vmConn = *fdConn

// hugeFrom is the smallest mapping advised for huge pages: from there, the
// rounding up to whole huge pages costs at most as much again.
const hugeFrom = 1 << 20

// init checks w, makes the pipe hold a buffer of size bytes and maps the
// buffers.
func (v *VmspliceWriter) init(size int) error {
	// A pipe's write end, checked once here, not at every commit: on a read
	// end vmsplice(2) would read into the buffers, and on anything else
	// fail with EBADF.
	conn, err := openWriteEnd(v.w, learnAll)
	if err != nil {
		return err
	}
	v.conn = conn
	if int64(size) > 1<<31 { // more than any pipe may hold (F_SETPIPE_SZ's limit)
		return fmt.Errorf("pipe: NewVmspliceWriter: size %d above 2^31: %w", size, os.NewSyscallError("fcntl", unix.EINVAL))
	}
	page := os.Getpagesize()
	bufSize := roundUp(size, page)
	if bufSize >= hugePage {
		bufSize = roundUp(bufSize, hugePage)
	}
	c, err := capacity(v.w)
	if err == nil && c < bufSize {
		c, err = setCapacity(v.w, bufSize)
	}
	if err != nil {
		return fmt.Errorf("pipe: NewVmspliceWriter: a pipe to hold %d bytes: %w", bufSize, err)
	}
	// Enough buffers to fill the pipe and one more: once the last of them
	// is in the pipe, the first cannot be, unless the capacity grew since
	// or commits were short. SetReuse relies on FIONREAD, not on this;
	// this only makes the proof succeed on the fast path.
	n := (c+bufSize-1)/bufSize + 1
	v.unit = page
	if n*bufSize >= hugeFrom {
		v.unit = hugePage
	}
	length := roundUp(n*bufSize, v.unit)
	if v.mem, err = mapAligned(length, v.unit); err != nil {
		return err
	}
	// Children never need the buffers; with MADV_DONTFORK a fork (for
	// exec) neither copies their page tables nor makes their pages
	// copy-on-write. Both advices are hints: a kernel without them (or
	// without transparent huge pages, EINVAL) still works, more slowly.
	_ = unix.Madvise(v.mem, unix.MADV_DONTFORK)
	if v.unit == hugePage {
		_ = unix.Madvise(v.mem, unix.MADV_HUGEPAGE)
	}
	v.bufs = make([]vbuf, length/bufSize)
	for i := range v.bufs {
		v.bufs[i] = vbuf{b: v.mem[i*bufSize : (i+1)*bufSize : (i+1)*bufSize], fresh: true}
	}
	v.cleanup = runtime.AddCleanup(v, unmap, v.mem)
	return nil
}

func roundUp(n, unit int) int { return (n + unit - 1) / unit * unit }

// mapAligned maps length bytes of private anonymous memory aligned to align
// (a multiple of the page size): it maps align more and unmaps the ends.
func mapAligned(length, align int) ([]byte, error) {
	extra := align - os.Getpagesize()
	p, err := unix.MmapPtr(-1, 0, nil, uintptr(length+extra), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	head := int(-uintptr(p) & uintptr(align-1))
	// Unmapping the ends of a fresh mapping of ours cannot fail; if it did,
	// the ends would stay mapped and unused.
	if head > 0 {
		_ = unix.MunmapPtr(p, uintptr(head))
	}
	if tail := extra - head; tail > 0 {
		_ = unix.MunmapPtr(unsafe.Add(p, head+length), uintptr(tail))
	}
	return unsafe.Slice((*byte)(unsafe.Add(p, head)), length), nil
}

// unmap releases a mapping from mapAligned. Pages the pipe still references
// live on until the reader has consumed them.
func unmap(mem []byte) {
	_ = unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(mem)), uintptr(len(mem))) // only EINVAL, for a range not ours
}

// release unmaps the buffers.
func (v *VmspliceWriter) release() {
	v.cleanup.Stop()
	unmap(v.mem)
	v.mem, v.bufs = nil, nil
}

// send hands b to the pipe, waiting in the poller while it is full.
func (v *VmspliceWriter) send(b []byte) (int, error) {
	return v.conn.vmsplice([][]byte{b}, 0)
}

// leftPipe reports whether every byte committed up to total end has been
// consumed: the pipe is a queue, so if it holds no more than the bytes
// committed after end, none before end is left. FIONREAD counts under the
// pipe's lock, which a reader holds while it copies, so a page it has
// counted out is released. An error counts as not shown.
// One answer covers every buffer committed before the bytes still there, so
// it is remembered: with many small buffers one ioctl serves several.
func (v *VmspliceWriter) leftPipe(end uint64) bool {
	n, err := buffered(v.w)
	if err != nil || n < 0 || uint64(n) > v.total {
		return false
	}
	v.gone = v.total - uint64(n)
	return end <= v.gone
}

// freshPages replaces the pages of b, which must be whole pages of the
// buffers, by new zero-filled ones on next touch (madvise(MADV_DONTNEED)).
// References the pipe holds keep the old pages alive with their contents.
func freshPages(b []byte) error {
	return os.NewSyscallError("madvise", unix.Madvise(b, unix.MADV_DONTNEED))
}
