package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/pipe2go/pipe"
)

// Environment of the reader process of the two-process row: this program
// run again.
const (
	childEnv = "PIPEBENCH_CHILD" // "reader"
	bufEnv   = "PIPEBENCH_BUF"   // buffer size in bytes
	fdEnv    = "PIPEBENCH_FD"    // the descriptor to read
)

// mover moves data for about d with buffers of size bytes. It returns how
// many bytes arrived, after checking that they are all that was sent, and
// how long the transfer took: from the first byte sent to the last one
// received, without the setup before (pipes, buffers, files, a child
// process) or the cleanup after.
type mover func(d time.Duration, size int) (n int64, elapsed time.Duration, err error)

type rowSpec struct {
	name string
	move mover
	path *copyPath // of a Copy or io.Copy row: the ends it copies between
}

// The rows "Copy X" and "io.Copy X" (copyRows) form a pair: they run in
// turn, and the output compares them.
func rows() []rowSpec {
	return slices.Concat([]rowSpec{
		{name: "write/read, default capacity", move: writeRead(0)},
		{name: "write/read, 1 MiB pipe", move: writeRead(1 << 20)},
		{name: "write/read, two processes", move: twoProcesses},
		{name: "vmsplice + splice to /dev/null", move: vmspliceSplice},
		{name: "VmspliceWriter fresh, /dev/null", move: vmspliceWriter(false)},
		{name: "VmspliceWriter reuse, /dev/null", move: vmspliceWriter(true)},
	},
		copyRows(copyPath{endPipe, endNull}),
		copyRows(copyPath{endPipe, endFile}),
		copyRows(copyPath{endFile, endPipe}),
	)
}

// An end is a kind of source or destination of the Copy rows.
type end int

const (
	endPipe end = iota // a pipe, O_NONBLOCK (newPipe)
	endFile            // a regular file in the page cache
	endNull            // /dev/null
)

func (e end) String() string {
	switch e {
	case endPipe:
		return "pipe"
	case endFile:
		return "file"
	case endNull:
		return os.DevNull
	}
	return "end(" + strconv.Itoa(int(e)) + ")"
}

// A copyPath is what a Copy row copies from and to.
type copyPath struct{ from, to end }

func (p copyPath) String() string { return p.from.String() + " -> " + p.to.String() }

// copyRows returns the pair of rows for p, "Copy p" and "io.Copy p", whose
// movers are built from p's ends: the ends named are the ends measured.
func copyRows(p copyPath) []rowSpec {
	return []rowSpec{
		{name: "Copy " + p.String(), move: copyMover(pipe.Copy, p), path: &p},
		{name: "io.Copy " + p.String(), move: copyMover(io.Copy, p), path: &p},
	}
}

// copyMover measures copyFn from p.from to p.to: from a pipe into a file or
// /dev/null (copyTo), or from a file into a pipe (copyFromFile).
func copyMover(copyFn func(io.Writer, io.Reader) (int64, error), p copyPath) mover {
	switch {
	case p.from == endPipe && p.to == endNull:
		return copyTo(copyFn, devNullDst)
	case p.from == endPipe && p.to == endFile:
		return copyTo(copyFn, tempFileDst)
	case p.from == endFile && p.to == endPipe:
		return copyFromFile(copyFn)
	}
	return func(time.Duration, int) (int64, time.Duration, error) {
		return 0, 0, fmt.Errorf("no way to measure a copy %v", p)
	}
}

// skipError is a row's reason not to run here, other than a missing
// facility (errors.ErrUnsupported), such as a limit of this machine.
type skipError struct{ err error }

func (e skipError) Error() string { return e.err.Error() }
func (e skipError) Unwrap() error { return e.err }

// newPipe makes a pipe for the Go-side rows: O_NONBLOCK, so the runtime
// poller does the waiting.
func newPipe() (r, w *os.File, err error) {
	return pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_NONBLOCK)
}

type result struct {
	n   int64
	err error
}

// pump writes buf to w until d has passed, then closes w, and reports what
// it wrote. write is the way one buffer goes in.
func pump(w *os.File, buf []byte, d time.Duration, write func(*os.File, []byte) (int, error)) <-chan result {
	return feed(w, d, func() (int64, error) {
		n, err := write(w, buf)
		return int64(n), err
	})
}

// feed calls step until d has passed or it fails, then closes w, and
// reports the bytes the steps moved.
func feed(w *os.File, d time.Duration, step func() (int64, error)) <-chan result {
	out := make(chan result, 1)
	go func() {
		var total int64
		var err error
		for stop := time.Now().Add(d); time.Now().Before(stop); {
			var n int64
			n, err = step()
			total += n
			if err != nil {
				break
			}
		}
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		out <- result{total, err}
	}()
	return out
}

// timed starts the clock and the writer, runs read until the pipe r is
// drained, stops the clock and settles with the writer. If read fails, r is
// closed so that a writer waiting on a full pipe gets EPIPE and stops.
func timed(r *os.File, start func() <-chan result, read func() (int64, error)) (int64, time.Duration, error) {
	t0 := time.Now()
	written := start()
	n, err := read()
	elapsed := time.Since(t0)
	if err != nil {
		_ = r.Close() // to stop the writer; the read error is the one to report
	}
	n, err = settle(written, n, err)
	return n, elapsed, err
}

// settle waits for the writer and compares its count with the reader's.
func settle(written <-chan result, read int64, readErr error) (int64, error) {
	wr := <-written
	if readErr != nil {
		return 0, fmt.Errorf("reader: %w", readErr)
	}
	if wr.err != nil {
		return 0, fmt.Errorf("writer: %w", wr.err)
	}
	if read != wr.n {
		return 0, fmt.Errorf("read %d bytes but wrote %d", read, wr.n)
	}
	return read, nil
}

func fileWrite(w *os.File, b []byte) (int, error) { return w.Write(b) }

// readAll reads r to EOF with Read calls of size bytes each.
func readAll(r io.Reader, size int) func() (int64, error) {
	buf := make([]byte, size)
	return func() (int64, error) { return readLoop(r, buf) }
}

// readLoop reads r to EOF into buf, each Read asking for all of buf, and
// returns how many bytes it read. Not io.CopyBuffer(io.Discard, r, buf):
// io.Discard's ReadFrom would read 8 KiB at a time, whatever buf is.
func readLoop(r io.Reader, buf []byte) (int64, error) {
	var total int64
	for {
		n, err := r.Read(buf)
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

func writeRead(capacity int) mover {
	return func(d time.Duration, size int) (int64, time.Duration, error) {
		r, w, err := newPipe()
		if err != nil {
			return 0, 0, err
		}
		defer r.Close()
		if capacity > 0 {
			if _, err := pipe.SetCapacity(w, capacity); err != nil {
				_ = w.Close() // unused
				return 0, 0, err
			}
		}
		buf := make([]byte, size)
		return timed(r, func() <-chan result { return pump(w, buf, d, fileWrite) }, readAll(r, size))
	}
}

// twoProcesses writes to a child process, this program run again, which
// reads the pipe to EOF and prints how many bytes it got. The clock starts
// once the child says it is ready to read, and stops when it has printed
// its count.
func twoProcesses(d time.Duration, size int) (int64, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d+time.Minute)
	defer cancel()
	self, exeErr := os.Executable()
	c := pipe.CommandContext(ctx, self)
	w, fd, err := c.ExtraPipe(false) // unsupported where there are no pipes
	if err != nil {
		return 0, 0, err
	}
	defer w.Close()
	if exeErr != nil {
		return 0, 0, exeErr
	}
	out, err := c.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	defer out.Close()
	c.Env = append(os.Environ(), childEnv+"=reader", bufEnv+"="+strconv.Itoa(size), fdEnv+"="+strconv.Itoa(fd))
	c.Stderr = os.Stderr
	if err := c.Start(); err != nil {
		return 0, 0, err
	}
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ready" {
		_ = w.Close() // the child reads EOF, if it is still there
		return 0, 0, fmt.Errorf("reader process did not start: %v, %v", c.Wait(), lines.Err())
	}
	buf := make([]byte, size)
	t0 := time.Now()
	written := pump(w, buf, d, fileWrite)
	var n int64
	var readErr error
	if lines.Scan() {
		n, readErr = strconv.ParseInt(lines.Text(), 10, 64)
	} else {
		readErr = fmt.Errorf("no count from the reader process (%v)", lines.Err())
	}
	elapsed := time.Since(t0)
	if err := c.Wait(); err != nil && readErr == nil {
		readErr = fmt.Errorf("reader process: %w", err)
	}
	n, err = settle(written, n, readErr)
	return n, elapsed, err
}

// childReader is the reader process of twoProcesses.
func childReader() int {
	size, err1 := strconv.Atoi(os.Getenv(bufEnv))
	fd, err2 := strconv.Atoi(os.Getenv(fdEnv))
	if err := errors.Join(err1, err2); err != nil {
		fmt.Fprintln(os.Stderr, "pipebench reader:", err)
		return 1
	}
	r := os.NewFile(uintptr(fd), "|0") // blocking, as pipe.Cmd hands it
	buf := make([]byte, max(size, 1))
	fmt.Println("ready")
	n, err := readLoop(r, buf)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipebench reader:", err)
		return 1
	}
	fmt.Println(n)
	return 0
}

// vmspliceWrite maps the (never changing) buffer into the pipe.
func vmspliceWrite(w *os.File, b []byte) (int, error) {
	return pipe.Vmsplice(w, [][]byte{b}, 0)
}

func openNull() (*os.File, error) { return os.OpenFile(os.DevNull, os.O_WRONLY, 0) }

func vmspliceSplice(d time.Duration, size int) (int64, time.Duration, error) {
	r, w, err := newPipe()
	if err != nil {
		return 0, 0, err
	}
	defer r.Close()
	// Probe once, so that an unsupported system says so before timing.
	if _, err := pipe.Vmsplice(w, nil, 0); err != nil {
		_ = w.Close() // unused
		return 0, 0, err
	}
	if _, err := pipe.SetCapacity(w, 1<<20); err != nil {
		_ = w.Close() // unused
		return 0, 0, err
	}
	null, err := openNull()
	if err != nil {
		_ = w.Close() // unused
		return 0, 0, err
	}
	defer null.Close()
	buf := written(size)
	return timed(r, func() <-chan result { return pump(w, buf, d, vmspliceWrite) }, drain(null, r))
}

// drain empties the pipe r into null with Copy, which splices where the
// system can and opens both sides once, not once a chunk as a loop of
// Splice calls would.
func drain(null, r *os.File) func() (int64, error) {
	return func() (int64, error) { return pipe.Copy(null, r) }
}

// vmspliceWriter commits buffers of a VmspliceWriter, with fresh pages
// (the default) or with reuse, which is safe here since the reader discards
// what it splices, writing a byte in each page of each buffer first, as a
// producer filling them would. The pipe holds one buffer: the writer raises
// it, to pipe-max-size at most.
func vmspliceWriter(reuse bool) mover {
	return func(d time.Duration, size int) (int64, time.Duration, error) {
		return vmspliceWriterRow(d, size, reuse)
	}
}

func vmspliceWriterRow(d time.Duration, size int, reuse bool) (int64, time.Duration, error) {
	r, w, err := newPipe()
	if err != nil {
		return 0, 0, err
	}
	defer r.Close()
	v, err := pipe.NewVmspliceWriter(w, size)
	if err != nil {
		_ = w.Close() // unused
		if errors.Is(err, syscall.EPERM) {
			// The pipe must hold one buffer: above pipe-max-size that
			// needs CAP_SYS_RESOURCE, and the per-user page limits apply.
			return 0, 0, skipError{fmt.Errorf("the pipe must hold one %s buffer, which this process may not have: %w", sizeName(size), err)}
		}
		return 0, 0, err
	}
	v.SetReuse(reuse)
	null, err := openNull()
	if err != nil {
		_ = v.Close() // nothing committed
		_ = w.Close()
		return 0, 0, err
	}
	defer null.Close()
	start := func() <-chan result {
		out := make(chan result, 1)
		go func() {
			var total int64
			var err error
			for stop := time.Now().Add(d); err == nil && time.Now().Before(stop); {
				b := v.Buffer()
				for i := 0; i < len(b); i += 4096 {
					b[i] = byte(total)
				}
				if err = v.Commit(len(b)); err == nil {
					total += int64(len(b))
				}
			}
			if cerr := v.Close(); err == nil {
				err = cerr
			}
			if cerr := w.Close(); err == nil {
				err = cerr
			}
			out <- result{total, err}
		}()
		return out
	}
	return timed(r, start, drain(null, r))
}

// A destination for the pipe -> X rows, and how to dispose of it.
type dst func() (io.Writer, func(), error)

func devNullDst() (io.Writer, func(), error) {
	f, err := openNull()
	if err != nil {
		return nil, nil, err
	}
	return f, func() { _ = f.Close() }, nil // nothing was buffered
}

func tempFileDst() (io.Writer, func(), error) {
	f, err := os.CreateTemp("", "pipebench-*")
	if err != nil {
		return nil, nil, err
	}
	// A scratch file: errors closing or removing it change no result.
	return f, func() { _ = f.Close(); _ = os.Remove(f.Name()) }, nil
}

// fileSpan is how much a pipe -> file row writes before rewinding its file,
// and how large the file -> pipe rows' source is: small enough to stay in
// the page cache, so that the cache, not the disk, is measured.
const fileSpan = 64 << 20

// copyTo measures a copy function from a pipe to a destination. The pipe is
// fed with Vmsplice where the system has it, so that feeding costs little
// next to what is measured, and with Write elsewhere.
func copyTo(copyFn func(io.Writer, io.Reader) (int64, error), to dst) mover {
	return func(d time.Duration, size int) (int64, time.Duration, error) {
		r, w, err := newPipe()
		if err != nil {
			return 0, 0, err
		}
		defer r.Close()
		write := fileWrite
		if _, err := pipe.Vmsplice(w, nil, 0); err == nil {
			write = vmspliceWrite
			_, _ = pipe.SetCapacity(w, 1<<20) // best effort: it only speeds the feeding
		}
		out, closeOut, err := to()
		if err != nil {
			_ = w.Close() // unused
			return 0, 0, err
		}
		defer closeOut()
		buf := written(size)
		read := func() (int64, error) {
			// Copy in fileSpan pieces, rewinding a file between them.
			var total int64
			for {
				n, err := copyFn(out, io.LimitReader(r, fileSpan))
				total += n
				if err != nil || n < fileSpan {
					return total, err
				}
				if s, ok := out.(io.Seeker); ok {
					if _, err := s.Seek(0, io.SeekStart); err != nil {
						return total, err
					}
				}
			}
		}
		return timed(r, func() <-chan result { return pump(w, buf, d, write) }, read)
	}
}

// copyFromFile measures a copy function from a file in the page cache to a
// pipe, which is drained into /dev/null with Splice where the system has it.
func copyFromFile(copyFn func(io.Writer, io.Reader) (int64, error)) mover {
	return func(d time.Duration, size int) (int64, time.Duration, error) {
		r, w, err := newPipe()
		if err != nil {
			return 0, 0, err
		}
		defer r.Close()
		src, err := os.CreateTemp("", "pipebench-*")
		if err != nil {
			_ = w.Close() // unused
			return 0, 0, err
		}
		defer func() { _ = src.Close(); _ = os.Remove(src.Name()) }() // scratch file
		chunk := written(1 << 20)
		for range fileSpan / len(chunk) {
			if _, err := src.Write(chunk); err != nil {
				_ = w.Close() // unused
				return 0, 0, err
			}
		}
		null, err := openNull()
		if err != nil {
			_ = w.Close() // unused
			return 0, 0, err
		}
		defer null.Close()
		step := func() (int64, error) {
			if _, err := src.Seek(0, io.SeekStart); err != nil {
				return 0, err
			}
			return copyFn(w, src)
		}
		return timed(r, func() <-chan result { return feed(w, d, step) }, drain(null, r))
	}
}

// written returns a buffer of n bytes with every byte written: the pages of
// a buffer never written are all the shared zero page, which moves faster
// than any real data.
func written(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}
