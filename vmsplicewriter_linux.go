package pipe

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugePage is the size of a transparent huge page on the architectures that
// have them at 2 MiB (amd64, arm64 with 4 KiB pages, 386, ...). Elsewhere
// it only sets the alignment and the unit in which pages are replaced.
const hugePage = 2 << 20

// vmConn is the write end as vmsplice(2) uses it.
type vmConn = *fdConn

// init checks w, makes the pipe hold a buffer of size bytes, as far as
// pipe-max-size lets it, and maps the buffers.
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
	c, err := v.raise(bufSize)
	if err != nil {
		return err
	}
	// The buffers are carved from runs of whole huge pages, as many as fit
	// in a run, never across two, and used in turn. Fresh pages are given a
	// run at a time: one madvise(2) and, with transparent huge pages, one
	// page fault for the run, where a run of small pages would fault once a
	// page (11-18 µs each on some VMs: a tenth of what plain writes move).
	// There are at least two runs, and enough that the runs other than one
	// hold the pipe's capacity: once a run's last buffer is committed, the
	// others are filled before it comes round again, so that by then the
	// pipe has let go of it unless its capacity grew (its pages are then
	// freed, not kept alive, when it gets fresh ones), and one FIONREAD
	// shows a run free for SetReuse.
	run := max(bufSize, hugePage)
	perRun := run / bufSize
	held := perRun * bufSize
	runs := max(2, (c+held-1)/held+1)
	if int64(runs)*int64(run) > math.MaxInt/2 { // a 2 GiB pipe on a 32-bit system
		return fmt.Errorf("pipe: NewVmspliceWriter: %d runs of %d bytes for a pipe of %d: %w", runs, run, c, os.NewSyscallError("mmap", unix.ENOMEM))
	}
	v.unit = run
	if v.mem, err = mapAligned(runs*run, hugePage); err != nil {
		return err
	}
	// Children never need the buffers; with MADV_DONTFORK a fork (for
	// exec) neither copies their page tables nor makes their pages
	// copy-on-write. Both advices are hints: a kernel without them (or
	// without transparent huge pages, EINVAL) still works, more slowly.
	_ = unix.Madvise(v.mem, unix.MADV_DONTFORK)
	_ = unix.Madvise(v.mem, unix.MADV_HUGEPAGE)
	v.bufs = make([]vbuf, 0, runs*perRun)
	for r := range runs {
		for k := range perRun {
			off := r*run + k*bufSize
			v.bufs = append(v.bufs, vbuf{b: v.mem[off : off+bufSize : off+bufSize], off: off, fresh: true})
		}
	}
	v.cleanup = runtime.AddCleanup(v, unmap, v.mem)
	return nil
}

// raise makes the pipe hold bufSize bytes if it holds less, or as much as
// it may without privilege when bufSize is above pipe-max-size, and returns
// its capacity. It never lowers the capacity.
func (v *VmspliceWriter) raise(bufSize int) (int, error) {
	c, err := capacity(v.w)
	if err != nil || c >= bufSize {
		return c, err
	}
	got, err := setCapacity(v.w, bufSize)
	if err == nil {
		return got, nil
	}
	// Above pipe-max-size only CAP_SYS_RESOURCE may raise a pipe: without
	// it the pipe gets pipe-max-size, and a buffer goes in in parts.
	max, merr := maxCapacity()
	if errors.Is(err, unix.EPERM) && merr == nil && bufSize > max {
		if c >= max {
			return c, nil
		}
		if got, err = setCapacity(v.w, max); err == nil {
			return got, nil
		}
	}
	limit := "unknown: " + fmt.Sprint(merr)
	if merr == nil {
		limit = fmt.Sprint(max)
	}
	return 0, fmt.Errorf("pipe: NewVmspliceWriter: raising the pipe's capacity from %d to hold a %d-byte buffer "+
		"(up to /proc/sys/fs/pipe-max-size, which MaxCapacity reports: %s; an unprivileged user past "+
		"the per-user pipe page limits gets EPERM): %w", c, bufSize, limit, err)
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

// smallCommit is the size below which a commit is copied into the pipe
// rather than mapped: for a page or two, taking and dropping references to
// pages (vmsplice(2), then the reader's release of each) costs more than
// copying the bytes, and fresh pages cost a refill on top. With 4 KiB
// buffers, mapping moved 1.1-1.2 GB/s where write(2) of the same buffers
// moved 1.4-1.7 (BenchmarkVmspliceWriterSizes); from 16 KiB on, mapping
// was ahead in that sweep, whose reader splices to /dev/null. With reuse,
// mapping stays ahead at 16 KiB; with fresh pages, see small.
const smallCommit = 16 << 10

// smallMix is how many commits in a row without a copy through pwritev2
// (of a commit under smallCommit, or a straight Write) let a writer's fresh
// commits of smallCommit go to the way chooser (see small).
const smallMix = 64

// small reports whether a commit of n bytes is copied whatever the way
// chooser says: under smallCommit; and with fresh pages one of smallCommit
// too while the pipe takes pwritev2 with RWF_NOWAIT (nothing was mapped
// into it, by this writer or anything else that writeCopy has seen) and
// the writer copied a smaller commit, or made a straight Write, within its
// last smallMix commits, or made fewer than smallMix commits so far. Other
// fresh commits of smallCommit go to the chooser.
//
// On a 2-core KVM machine (BENCHMARKS.md, "Fresh 16 KiB commits go to the
// chooser"), letting the chooser decide fresh 16 KiB commits moved 69% and
// 79% more than copying them with a reader splicing to /dev/null (64 KiB
// and 1 MiB pipes), and 98% more with a read(2) reader in a 1 MiB pipe.
// But the first mapped commit makes the pipe refuse RWF_NOWAIT for good,
// and every later copy, of any size, is then F_GETFL and write(2)
// (writeCopy): a writer of fresh 4 KiB commits with one of 16 KiB in every
// 16 lost 10.6% when its 16 KiB commits were mapped, and with a read(2)
// reader in the default pipe, where the chooser settles on copying after
// trials that mapped, 16 KiB commits moved 0.79 of w.Write (0.92 when they
// were always copied: the copy path itself costs about as much as the
// F_GETFL there, BENCHMARKS.md). So a writer that copies smaller commits
// often enough keeps copying 16 KiB ones while the pipe takes pwritev2, and
// a new writer does so until it has shown its mix, whichever size comes
// first. A writer whose mix changes is not protected: after smallMix
// commits with no smaller copy, its next 16 KiB commit goes to the
// chooser, which maps at first, and every later commit under 16 KiB pays
// F_GETFL, as after any mapped commit. Once the pipe refuses pwritev2
// (anything was mapped or spliced into it), mapping costs the copies
// nothing more. (On the PVM VM before, copying fresh 16 KiB commits had
// moved as much as the chooser with the splicing reader, and 37% more with
// a read(2) reader in the default pipe.) At 20, 24 and 32 KiB, copying
// lost 17-23% to the chooser with the splicing reader in a 1 MiB pipe
// there, so it decides every larger commit (17-20 KiB was not measured).
// smallMix was not tuned: 64 is a guess that a writer mixing sizes shows
// a smaller one within 64 commits.
//
// A writer of only copied commits never maps, so the pipe goes on taking
// pwritev2 with RWF_NOWAIT, which does not look at packet mode: if packet
// mode is turned on after the writer was made, they are packets, as
// Commit's doc says of commits copied before the first mapped one.
func (v *VmspliceWriter) small(n int) bool {
	return n < smallCommit || n == smallCommit && !v.reuse && v.plainly < smallMix && v.takesNowait()
}

// takesNowait reports whether the pipe still takes pwritev2 with
// RWF_NOWAIT, as far as the writer knows: nothing was mapped by it, and no
// copy found it refused (which it is once anything was vmspliced or spliced
// into the pipe, and in a FIFO or a kernel before 6.4).
func (v *VmspliceWriter) takesNowait() bool {
	return !v.mapped && (v.conn.cw == nil || !v.conn.cw.plain)
}

// copiedPlainly records a copy of a commit under smallCommit or a straight
// Write (see small; once the pipe refuses pwritev2, small no longer looks
// at the count).
func (v *VmspliceWriter) copiedPlainly() { v.plainly = 0 }

// send hands b to the pipe, waiting in the poller while it is full. copied
// reports that the bytes were written (writeCopy), so that the pipe holds
// none of b's pages. A small commit is copied; with fresh pages, a larger
// one goes the way v.way has found faster. On a packet-mode pipe
// every commit is mapped: a copy would be a packet, and a read that runs
// from mapped pages into a packet drops the packet's rest.
func (v *VmspliceWriter) send(b []byte) (n int, copied bool, err error) {
	packets := v.packets()
	small := v.small(len(b))
	v.plainly = min(v.plainly+1, smallMix) // until copiedPlainly below
	chosen := !small && !v.reuse && !packets
	// The clock is read only where the chooser uses it: at the end of a
	// chosen commit, and around any other only while an interval is open
	// (BenchmarkVmspliceWriterOverhead: 4 KiB commits 9.7% faster without
	// the two reads).
	untimed := !chosen && v.way.timing()
	var start int64
	if untimed {
		start = nanotime()
	}
	copied = !packets && (small || chosen && v.way.copyNext())
	if copied {
		n, err = v.writeThrough(b)
		if len(b) < smallCommit && n > 0 {
			v.copiedPlainly()
		}
		if err == errMapInstead {
			copied, err = false, nil // map the rest
			if chosen {
				v.way.cannotCopy()
			}
		}
	}
	if !copied && n < len(b) {
		var m int
		m, err = v.conn.vmsplice([][]byte{b[n:]}, 0)
		n += m
		v.mapped = v.mapped || m > 0
	}
	switch {
	case chosen:
		v.way.committed(n, nanotime())
	case untimed:
		v.way.untimed(nanotime() - start)
	}
	return n, copied, err
}

// ownPipe returns an error if r is a descriptor of the pipe v writes to
// (fstat(2): the same device and inode), which ReadFrom would copy into
// itself for ever, and nil otherwise (when r is not a syscall.Conn too).
func (v *VmspliceWriter) ownPipe(r io.Reader) error {
	c, ok := r.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := c.SyscallConn()
	if err != nil || rc == nil || !samePipe(v.conn, &fdConn{c: c, rc: rc}) {
		return nil // r.Read, or the commit, will say what is wrong
	}
	return fmt.Errorf("pipe: VmspliceWriter.ReadFrom %s: the source is the writer's own pipe: %w", nameOf(c), syscall.EINVAL)
}

// packets reports that the pipe was in packet mode when the writer was made.
func (v *VmspliceWriter) packets() bool { return v.conn.flags&packetMode != 0 }

// writeThrough writes p into the pipe (writeCopy), waiting in the poller
// while it is full, as w.Write does. errMapInstead means that it cannot
// write the rest of p without sleeping in the kernel or making packets: map
// it instead.
func (v *VmspliceWriter) writeThrough(p []byte) (int, error) {
	return v.conn.writeCopy(p)
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
