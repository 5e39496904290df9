package pipe

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
)

// VmspliceWriter moves data into a pipe with vmsplice(2) from buffers it owns,
// or copies it in where that is faster (small commits, and larger ones when
// the writer measures copying to be faster: see [VmspliceWriter.Commit]).
//
// The kernel references the pages of a buffer handed to the pipe instead of
// copying them, so the writer never lets anyone write to a page that the pipe
// may still hold. Its buffers live outside the Go heap (mmap(2), page-aligned),
// where the garbage collector cannot reuse them, and before a buffer is filled
// again the writer replaces its pages with fresh ones (madvise(MADV_DONTNEED)):
// the pipe keeps the old pages with the bytes committed, whoever ends up
// holding them. That is right for every reader, including one that splices or
// tees the data on to another pipe or splices it into a socket; it costs the
// kernel's zeroing of each page refilled, and a page fault for each 2 MiB run
// of buffers where transparent huge pages are given (else one per 4 KiB
// page). [SetReuse] trades that for speed when every reader copies the bytes
// out.
//
// Use it as a [bufio.Writer]: fill [VmspliceWriter.Buffer] in place and
// [VmspliceWriter.Commit] it, or [VmspliceWriter.Write] and
// [VmspliceWriter.ReadFrom], which copy into the buffers
// and commit each one when it is full; [VmspliceWriter.Flush] commits what is
// pending and [VmspliceWriter.Close] flushes and releases the buffers. Commits,
// mapped or copied, wait in the runtime poller while the pipe is full, as
// [Vmsplice] does: the write deadline of a write end in the poller applies
// ([os.ErrDeadlineExceeded]) and closing it wakes the wait ([os.ErrClosed]),
// even if its descriptor was made blocking since (but see
// [VmspliceWriter.Commit] on copies); a write end outside the poller (a blocking descriptor given to
// [os.NewFile]) holds a thread while it waits and has neither. EPIPE means
// the reader is gone. After an error from the pipe (a deadline too), every
// later call returns that error: part of the last commit may have gone in.
// A VmspliceWriter is not safe for concurrent
// use; a call made while another is in progress, such as Close while a
// Commit waits, gives an error matching [os.ErrInvalid] and does nothing
// (Buffer returns nil, SetReuse changes nothing). To cancel a waiting Commit,
// close the write end or set its deadline.
//
// Linux only: elsewhere [NewVmspliceWriter] fails with an error matching
// [errors.ErrUnsupported] and there is no fallback to plain writes; write to
// the file itself there.
type VmspliceWriter struct {
	w       *os.File
	conn    vmConn          // w, checked once for vmsplice(2)
	mem     []byte          // the buffers, one after another; a mapping of its own
	bufs    []vbuf          // mem cut into buffers, used in turn
	cur     int             // index of the buffer being filled
	pending int             // bytes of it written by Write or ReadFrom, not committed yet
	total   uint64          // bytes handed to the pipe so far
	gone    uint64          // of those, how many FIONREAD last showed consumed
	unit    int             // mem gets fresh pages in aligned runs of unit bytes, whole huge pages
	reuse   bool            // refill buffers the pipe has let go of (SetReuse)
	way     wayChooser      // with fresh pages, whether larger commits are mapped or copied
	plainly int             // commits since the writer's last copy with pwritev2 of a commit under 16 KiB or a straight Write (see small)
	mapped  bool            // something was mapped: the pipe refuses pwritev2 with RWF_NOWAIT from now on
	err     error           // sticky: the first error, or errWriterClosed
	cleanup runtime.Cleanup // unmaps mem if the writer is dropped unclosed
	busy    atomic.Bool     // a call is in progress: Close must not unmap under it
}

// vbuf is one buffer and what the pipe may hold of it.
type vbuf struct {
	b     []byte
	off   int    // where b starts in mem
	fresh bool   // its pages are new since it was last committed: nothing else holds them
	end   uint64 // total when it was last committed
}

var errWriterClosed = fmt.Errorf("pipe: VmspliceWriter: %w", os.ErrClosed)

// errBusy is the error for a call made while another is in progress, such as
// Close from another goroutine while a Commit waits: unmapping the buffers
// then would leave the waiting vmsplice(2) pointing at freed memory.
var errBusy = fmt.Errorf("pipe: VmspliceWriter: another call is in progress (to cancel a waiting Commit, close w or set its write deadline): %w", os.ErrInvalid)

// errNilWriter returns the error for a nil or zero VmspliceWriter.
func errNilWriter() error {
	return &os.PathError{Op: "vmsplice", Path: "<nil>", Err: os.ErrInvalid}
}

// guard starts a call: it takes the busy flag, which every method holds while
// it reads or writes any other field, so that no call sees another's state
// half changed and Close never unmaps under a call in progress. It gives
// errBusy if another call holds the flag, and errNilWriter on nil.
// Each successful guard is matched by an exit.
func (v *VmspliceWriter) guard() error {
	if v == nil {
		return errNilWriter()
	}
	if !v.busy.CompareAndSwap(false, true) {
		return errBusy
	}
	return nil
}

// exit ends a call started by guard.
func (v *VmspliceWriter) exit() { v.busy.Store(false) }

// enter starts a call that uses the buffers: guard, then the error that stops
// v from taking data, if any (the call is then over).
func (v *VmspliceWriter) enter() error {
	if err := v.guard(); err != nil {
		return err
	}
	if err := v.usable(); err != nil {
		v.exit()
		return err
	}
	return nil
}

// NewVmspliceWriter prepares a writer for w, the write end of a pipe (or a
// FIFO opened for writing), with buffers of size bytes rounded up to whole
// pages, and to 2 MiB from 2 MiB on. It raises the pipe's capacity to hold
// one buffer if it is smaller ([SetCapacity]), never lowers it; above
// pipe-max-size ([MaxCapacity]) without CAP_SYS_RESOURCE it raises it to
// pipe-max-size, and each buffer goes into the pipe in parts.
//
// The buffers are carved from runs of 2 MiB, aligned and advised for
// transparent huge pages with madvise(MADV_HUGEPAGE), as many buffers as fit
// in a run: at least two runs, and enough that all runs but one hold the
// pipe's capacity. Fresh pages are given a run at a time, which with huge
// pages is one page fault per run rather than one per 4 KiB page. With /sys/kernel/mm/
// transparent_hugepage/enabled set to "always" or "madvise" they get huge
// pages where memory allows, with "never" they get 4 KiB pages and the
// writer is slower (in /proc/self/smaps_rollup, AnonHugePages shows which).
// The writer does not close w; the caller does, after
// [VmspliceWriter.Close].
//
// Errors: w nil gives [os.ErrInvalid], closed [os.ErrClosed], not a pipe's
// write end [syscall.EBADF]; size <= 0 gives [syscall.EINVAL]; a pipe that
// may not be raised to hold a buffer, or to pipe-max-size, such as one of an
// unprivileged user past the per-user pipe page limits, gives SetCapacity's
// error, [syscall.EPERM], with the limit. Other systems give an error
// matching [errors.ErrUnsupported].
func NewVmspliceWriter(w *os.File, size int) (*VmspliceWriter, error) {
	if w == nil {
		return nil, &os.PathError{Op: "vmsplice", Path: "<nil>", Err: os.ErrInvalid}
	}
	if size <= 0 {
		return nil, fmt.Errorf("pipe: NewVmspliceWriter: size %d: %w", size, os.NewSyscallError("vmsplice", syscall.EINVAL))
	}
	v := &VmspliceWriter{w: w}
	if err := v.init(size); err != nil {
		return nil, err
	}
	return v, nil
}

// SetReuse sets whether buffers are refilled in place (true) or get fresh
// pages before each refill (false, the default).
//
// With reuse the writer refills a buffer only when ioctl(FIONREAD) shows that
// no byte of it is left in the pipe: the pipe is a queue, so if the bytes
// still buffered are no more than the bytes committed after that buffer, the
// reader has consumed all of it. (When that cannot be shown, the buffer gets
// fresh pages, as without reuse.) Leaving this pipe is not enough for every
// reader: one that splices or tees the data into another pipe, or splices it
// into a socket (TCP keeps the pages until they are acknowledged, a Unix
// socket until its reader has read them), passes on references to the same
// pages, and would deliver what the buffer holds later. So reuse is safe only
// when every reader of the pipe, in any process, copies the bytes out: read(2)
// (Read, or io.Copy from it into a socket or pipe), splice(2) to a regular
// file or to /dev/null, or vmsplice(2) of the read end; not this package's
// Splice, Tee or Copy into a pipe or a Unix socket, which splice onward.
//
// Reuse spares the zeroing of each page and the page faults, which are most
// of the cost of a commit with a fast reader.
//
// SetReuse does nothing on a nil writer, or while another call is in
// progress (it has no error to say so: call it before using the writer, or
// from the goroutine that uses it).
func (v *VmspliceWriter) SetReuse(reuse bool) {
	if v.guard() != nil {
		return
	}
	defer v.exit()
	v.reuse = reuse
}

// Buffer returns the free part of the current buffer, to be filled in place
// and handed to the pipe with [VmspliceWriter.Commit]. It is nil after an
// error or Close, and while another call is in progress. Its contents are
// unspecified: zeros on fresh pages, old data on reused ones and after a
// copied commit. Do not use it after the next call of any other method.
func (v *VmspliceWriter) Buffer() []byte {
	if v.enter() != nil {
		return nil
	}
	defer v.exit()
	return v.bufs[v.cur].b[v.pending:]
}

// Commit hands the bytes written by Write and ReadFrom and not yet committed,
// followed by the first n bytes of [VmspliceWriter.Buffer], to the pipe,
// waiting while the pipe is full, and moves to the next buffer. Do not write
// to the slice Buffer returned after Commit: the pipe may still reference
// its pages. Fill the next Buffer instead.
//
// A commit is mapped into the pipe (vmsplice(2)) or copied into it:
//   - A commit of less than 16 KiB is copied: for so few bytes, copying is
//     faster than mapping. (Not where copying would need write(2) on an end
//     in blocking mode, below: there every commit is mapped, and a commit
//     of 100 to 4000 bytes took 2.6 to 3.2 times as long in a test.)
//   - With fresh pages, a commit of 16 KiB is copied too while the end
//     takes pwritev2 (below, until anything is mapped into it) and the
//     writer has copied a smaller commit or made a straight Write within
//     its last 64 commits, or made fewer than 64 so far: mapping it would
//     turn every later copy, for good, into two system calls, F_GETFL and
//     write(2). (A writer that goes back to smaller commits after more
//     than 64 larger ones pays that; so does one whose reader copies the
//     bytes out of a 64 KiB pipe, where the writer settles on copying.
//     There 16 KiB commits moved 0.79 to 0.87 of w.Write on one machine,
//     and copied 4 KiB commits, which pay no F_GETFL, 0.74 to 0.79: see
//     the README.)
//   - With fresh pages (the default), any other commit of 16 KiB or more
//     is mapped or copied, whichever this writer has measured to be
//     faster: it times its commits, and now and then tries the other way
//     for a few dozen commits and at least 12 MiB (which wins depends on
//     the machine, the pipe's size and the reader). A trial that runs at
//     less than half the speed of the way in use ends sooner: once the
//     first quarter of one of its windows (at least 1 MiB and 4 commits,
//     or 16 MiB and 2) shows it, leaving out the commit that fell furthest
//     behind.
//   - With [VmspliceWriter.SetReuse], a commit of 16 KiB or more is mapped.
//   - On a pipe in packet mode ([O_DIRECT]) when the writer was made, every
//     commit is mapped, so that none is a packet and the reader gets a byte
//     stream: a read shorter than a packet, or one that runs from mapped
//     pages into a packet, would drop the rest of the packet. If packet
//     mode is turned on later (fcntl(F_SETFL)), commits copied before the
//     first mapped one are packets, as w.Write's would be (so all of them,
//     if the writer never maps, as with commits of less than 16 KiB only);
//     after it, every commit is mapped.
//
// A copied commit leaves none of the buffer's pages in the pipe, and the
// next Buffer may be the same one. A copy is pwritev2(2) with RWF_NOWAIT,
// or write(2) where the write end refuses that (a FIFO, a kernel before
// 6.4, an end that anything was ever vmspliced or spliced into). It waits in
// the poller as w.Write does. With write(2) it looks at the end's mode
// (F_GETFL) before each write(2), and maps the rest of the commit instead
// if the end is in blocking mode, where write(2) would sleep in the kernel,
// deaf to Close and deadlines (a blocking descriptor given to [os.NewFile],
// such as a shell's pipe as [os.Stdout], or one made so by [SetNonblock], by
// another process sharing it, or by [os.File.Fd] on a file from [os.Pipe]),
// or in packet mode. A change made by another goroutine or process between
// that look and the write(2) can still make that write sleep until the
// reader makes room, or be a packet.
//
// n out of range gives [syscall.EINVAL] and changes nothing.
func (v *VmspliceWriter) Commit(n int) error {
	if err := v.enter(); err != nil {
		return err
	}
	defer v.exit()
	if n < 0 || n > len(v.bufs[v.cur].b)-v.pending {
		return fmt.Errorf("pipe: VmspliceWriter.Commit(%d) with %d bytes free: %w",
			n, len(v.bufs[v.cur].b)-v.pending, os.NewSyscallError("vmsplice", syscall.EINVAL))
	}
	return v.commit(v.pending + n)
}

// commit hands the current buffer's first n bytes to the pipe and prepares
// the next buffer. Any failure is sticky.
func (v *VmspliceWriter) commit(n int) error {
	if n == 0 {
		return nil
	}
	b := &v.bufs[v.cur]
	sent, copied, err := v.send(b.b[:n])
	v.total += uint64(sent)
	v.pending = 0
	if !copied {
		// Whatever went in, part or all, is the pipe's now: count it and
		// never refill those pages until shown free or replaced.
		b.fresh, b.end = false, v.total
		v.cur = (v.cur + 1) % len(v.bufs)
	} // else the pipe has a copy: the same buffer is filled again
	if err == nil && sent < n {
		err = io.ErrShortWrite
	}
	if err == nil {
		err = v.prepare(v.cur)
	}
	if err != nil {
		v.err = err
	}
	return err
}

// Write copies p into the buffers, committing each as it fills up, and
// returns how many bytes of p it took. Bytes left in a buffer that is not
// full wait for the next Commit, Flush or Close.
//
// With fresh pages (the default), once no bytes are pending, a p of a whole
// buffer or more is written to the pipe straight from p, copied as a commit
// is and waiting as it does, as w.Write would: copying it into fresh pages
// and mapping them would cost more than the kernel's one copy. With
// [VmspliceWriter.SetReuse] it goes through the buffers, which is faster;
// so it does on a packet-mode pipe, where every commit is mapped, and where
// copying would sleep in the kernel (see [VmspliceWriter.Commit]).
func (v *VmspliceWriter) Write(p []byte) (int, error) {
	if err := v.enter(); err != nil {
		return 0, err
	}
	defer v.exit()
	written := 0
	for len(p) > 0 {
		b := v.bufs[v.cur].b
		if !v.reuse && !v.packets() && v.pending == 0 && len(p) >= len(b) {
			timed := v.way.timing()
			var start int64
			if timed {
				start = nanotime()
			}
			n, err := v.writeThrough(p)
			if timed {
				v.way.untimed(nanotime() - start) // not a commit: left out of the chooser's next interval
			}
			if n > 0 {
				v.copiedPlainly()
			}
			v.total += uint64(n)
			written += n
			p = p[n:]
			switch {
			case err == errMapInstead: // the rest goes through the buffers
			case err != nil:
				v.err = err
				return written, err
			default:
				continue
			}
		}
		k := copy(b[v.pending:], p)
		v.pending += k
		written += k
		p = p[k:]
		if v.pending == len(b) {
			if err := v.commit(v.pending); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// ReadFrom reads from r straight into the buffers until EOF or an error,
// committing each buffer as it fills up, and returns how many bytes it read.
// As with [bufio.Writer.ReadFrom], the last bytes wait for Flush or Close.
// io.Copy(v, r) uses it, also through the WriteTo of an [os.File] or a
// network connection, which falls back to it; a bytes.Buffer, bytes.Reader
// or strings.Reader writes through Write instead.
//
// An r that holds a descriptor (an [os.File], a network connection) is read
// with read(2), as its Read would, except that at TCP urgent data it does
// not wait for ever as that Read can (see [Copy]).
//
// An r that is a descriptor of the writer's own pipe (its read end, say)
// gives an error matching [syscall.EINVAL] at once, as [Copy] does: the
// bytes would go round for ever.
func (v *VmspliceWriter) ReadFrom(r io.Reader) (int64, error) {
	if err := v.enter(); err != nil {
		return 0, err
	}
	defer v.exit()
	if r == nil {
		return 0, fmt.Errorf("pipe: VmspliceWriter.ReadFrom(nil): %w", os.ErrInvalid)
	}
	if err := v.ownPipe(r); err != nil {
		return 0, err
	}
	rd, done := readSource(r)
	defer done()
	var total int64
	for empty := 0; ; {
		b := v.bufs[v.cur].b
		k, err := rd.Read(b[v.pending:])
		if k < 0 || k > len(b)-v.pending {
			return total, fmt.Errorf("pipe: VmspliceWriter.ReadFrom: %T.Read returned %d", r, k)
		}
		if empty++; k > 0 {
			empty = 0
		} else if err == nil && empty == 100 { // as bufio gives up on a reader that never advances
			return total, io.ErrNoProgress
		}
		v.pending += k
		total += int64(k)
		if v.pending == len(b) {
			if cerr := v.commit(v.pending); cerr != nil {
				return total, cerr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Flush commits the bytes written by Write and ReadFrom that are not yet in
// the pipe.
func (v *VmspliceWriter) Flush() error {
	if err := v.enter(); err != nil {
		return err
	}
	defer v.exit()
	return v.commit(v.pending)
}

// Close flushes the writer and unmaps its buffers: the pipe keeps the pages
// it holds, with the bytes committed. It does not close the pipe. Close
// returns the flush's error or the writer's earlier one; calls after Close
// give [os.ErrClosed].
func (v *VmspliceWriter) Close() error {
	if err := v.guard(); err != nil {
		return err // errBusy: the buffers stay mapped for the call in progress
	}
	defer v.exit()
	if v.err == errWriterClosed {
		return v.err
	}
	if v.bufs == nil { // the zero value
		return errNilWriter()
	}
	err := v.err
	if err == nil {
		err = v.commit(v.pending)
	}
	v.release()
	v.err = errWriterClosed
	return err
}

// usable returns the error that stops v from taking data, if any. The
// caller holds the busy flag.
func (v *VmspliceWriter) usable() error {
	switch {
	case v.err != nil:
		return v.err
	case v.bufs == nil: // the zero value
		return errNilWriter()
	}
	return nil
}

// prepare makes buffer i safe to fill: it is fresh, or (with reuse) shown to
// have left the pipe, or else it gets fresh pages.
func (v *VmspliceWriter) prepare(i int) error {
	b := &v.bufs[i]
	if b.fresh || v.reuse && (b.end <= v.gone || v.leftPipe(b.end)) {
		return nil
	}
	// Replace the whole run holding the buffer, so that huge pages stay
	// whole; every other buffer is committed, so any of them may be
	// replaced.
	start := b.off / v.unit * v.unit
	if err := freshPages(v.mem[start : start+v.unit]); err != nil {
		return err
	}
	for j := range v.bufs {
		if v.bufs[j].off/v.unit*v.unit == start {
			v.bufs[j].fresh = true
		}
	}
	return nil
}

var _ interface {
	io.WriteCloser
	io.ReaderFrom
} = (*VmspliceWriter)(nil)
