package pipe_test

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"unsafe"

	"github.com/pipe2go/pipe"
	"golang.org/x/sys/unix"
)

// benchPipe returns a pipe of the given capacity (0 leaves the default)
// whose read end a goroutine copies to /dev/null with Copy, which splices,
// until EOF; finish closes the write end and checks that the reader got want
// bytes.
func benchPipe(b *testing.B, capacity int) (w *os.File, finish func(want int64)) {
	b.Helper()
	r, w := newPipe(b, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	if capacity > 0 {
		if _, err := pipe.SetCapacity(w, capacity); err != nil {
			b.Skip(err)
		}
	}
	got := drain(b, r)
	return w, func(want int64) {
		w.Close()
		if n := got(); n != want {
			b.Fatalf("reader got %d bytes; want %d", n, want)
		}
	}
}

// touch writes one byte in each page of p, as a producer filling p would:
// fresh pages fault in, and none is the shared zero page.
func touch(p []byte, v byte) {
	for i := 0; i < len(p); i += 4096 {
		p[i] = v
	}
}

// writeStep returns a step that fills a buffer of size bytes (a byte in each
// page) and writes it to w, as a producer using plain Write would.
func writeStep(w *os.File, size int) func(i int) error {
	buf := make([]byte, size)
	return func(i int) error {
		touch(buf, byte(i))
		_, err := w.Write(buf)
		return err
	}
}

// commitStep makes a VmspliceWriter for w with buffers of size bytes, with
// reuse or fresh pages, and returns a step that fills its Buffer (a byte in
// each page) and commits it, and the writer's Close for the caller to defer.
func commitStep(b *testing.B, w *os.File, size int, reuse bool) (step func(i int) error, closeWriter func()) {
	b.Helper()
	v, err := pipe.NewVmspliceWriter(w, size)
	if err != nil {
		b.Fatal(err)
	}
	v.SetReuse(reuse)
	return func(i int) error {
		p := v.Buffer()
		touch(p, byte(i))
		return v.Commit(len(p))
	}, func() { v.Close() }
}

// BenchmarkVmspliceWriter moves buffers into a pipe spliced to /dev/null,
// with buffer and pipe of the same size (64 KiB, the default pipe, and 1
// MiB), and with 256 KiB buffers in a 1 MiB pipe: Buffer and Commit with
// fresh pages (the default) and with reuse, against Vmsplice of two Go heap
// buffers taken in turn and plain Write. Each buffer has a byte written in
// every page first, as a producer filling it would. The C reference
// (shared/bench/pipebench.c) does the same with -F (fresh), -W (reuse) and
// -m rw.
func BenchmarkVmspliceWriter(b *testing.B) {
	for _, c := range []struct{ buf, pipe int }{{64 << 10, 64 << 10}, {256 << 10, 1 << 20}, {1 << 20, 1 << 20}} {
		for _, way := range []string{"commit-fresh", "commit-reuse", "vmsplice-heap", "write"} {
			b.Run("way="+way+"/buf="+sizeName(c.buf)+"/pipe="+sizeName(c.pipe), func(b *testing.B) {
				size := c.buf
				w, finish := benchPipe(b, c.pipe)
				var step func(i int) error
				switch way {
				case "commit-fresh", "commit-reuse":
					var closeWriter func()
					step, closeWriter = commitStep(b, w, size, way == "commit-reuse")
					defer closeWriter()
				case "vmsplice-heap":
					bufs := [2][]byte{make([]byte, size), make([]byte, size)}
					step = func(i int) error {
						p := bufs[i%2]
						touch(p, byte(i))
						_, err := pipe.Vmsplice(w, [][]byte{p}, 0)
						return err
					}
				case "write":
					step = writeStep(w, size)
				}
				runSteps(b, size, finish, step)
			})
		}
	}
}

// BenchmarkVmspliceWriterSizes is the sweep behind "never below w.Write":
// Buffer and Commit with fresh pages (the default) against plain Write of
// the same buffers, at every power-of-four buffer size from 4 KiB to 1 MiB,
// in the default 64 KiB pipe (buffers up to its size) and in a 1 MiB one.
// The reader is BenchmarkVmspliceWriter's. C: pipebench.c -F with the same
// -b and -p.
func BenchmarkVmspliceWriterSizes(b *testing.B) {
	for _, pipeSize := range []int{64 << 10, 1 << 20} {
		for size := 4 << 10; size <= pipeSize; size *= 4 {
			for _, way := range []string{"commit-fresh", "write"} {
				b.Run("way="+way+"/buf="+sizeName(size)+"/pipe="+sizeName(pipeSize), func(b *testing.B) {
					w, finish := benchPipe(b, pipeSize)
					step := writeStep(w, size)
					if way == "commit-fresh" {
						var closeWriter func()
						step, closeWriter = commitStep(b, w, size, false)
						defer closeWriter()
					}
					runSteps(b, size, finish, step)
				})
			}
		}
	}
}

// BenchmarkVmspliceWriterReadReader is BenchmarkVmspliceWriterSizes with a
// reader that copies the bytes out, read(2) with a buffer of the pipe's
// size, the reader that SetReuse is documented for: fresh pages, reuse and
// w.Write. The other VmspliceWriter benchmarks splice to /dev/null, the
// reader that favours mapping most (nothing is ever copied).
func BenchmarkVmspliceWriterReadReader(b *testing.B) {
	for _, c := range []struct{ buf, pipe int }{
		{4 << 10, 64 << 10}, {16 << 10, 64 << 10}, {64 << 10, 64 << 10},
		{16 << 10, 1 << 20}, {64 << 10, 1 << 20}, {256 << 10, 1 << 20}, {1 << 20, 1 << 20},
	} {
		for _, way := range []string{"commit-fresh", "commit-reuse", "write"} {
			b.Run("way="+way+"/buf="+sizeName(c.buf)+"/pipe="+sizeName(c.pipe), func(b *testing.B) {
				w, finish := readerPipe(b, c.pipe)
				step := writeStep(w, c.buf)
				if way != "write" {
					var closeWriter func()
					step, closeWriter = commitStep(b, w, c.buf, way == "commit-reuse")
					defer closeWriter()
				}
				runSteps(b, c.buf, finish, step)
			})
		}
	}
}

// readerPipe returns the write end of a pipe of ps bytes whose reader, a
// goroutine, copies the bytes out with read(2) into a buffer of the pipe's
// size, and a finish that closes the write end, checks that the reader got
// want bytes, and reports the bytes per read.
func readerPipe(b *testing.B, ps int) (w *os.File, finish func(want int64)) {
	b.Helper()
	r, w := newPipe(b, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	if _, err := pipe.SetCapacity(w, ps); err != nil {
		b.Skip(err)
	}
	type result struct {
		n, reads int64
		err      error
	}
	done := make(chan result, 1)
	go func() {
		n, reads, err := readWith(r, make([]byte, ps))
		done <- result{n, reads, err}
	}()
	return w, func(want int64) {
		w.Close()
		got := <-done
		if got.err != nil || got.n != want {
			b.Fatalf("reader got %d bytes, %v; want %d", got.n, got.err, want)
		}
		if got.reads > 0 {
			b.ReportMetric(float64(got.n)/float64(got.reads), "B/read")
		}
	}
}

// BenchmarkVmspliceWriterCopyPath splits where a copied commit loses to
// w.Write, with the reader of BenchmarkVmspliceWriterReadReader (read(2)) in
// the default pipe: w.Write; the same write(2) made in w's RawConn.Write, as
// the package makes its calls; pwritev2 with RWF_NOWAIT there, the call a
// copied commit makes; and Buffer and Commit with fresh pages, which copy
// commits under 16 KiB that way. Each fills a byte in every page of its
// buffer first. Where pipes refuse pwritev2 (kernels before 6.4, a seccomp
// filter), the last two are skipped: Commit would copy with F_GETFL and
// write(2) there.
func BenchmarkVmspliceWriterCopyPath(b *testing.B) {
	nowait := pipesTakeNowait(b)
	for _, size := range []int{4 << 10, 12 << 10} {
		for _, way := range []string{"write", "rawconn-write", "rawconn-pwritev2", "commit-fresh"} {
			b.Run("way="+way+"/buf="+sizeName(size)+"/pipe=64KiB", func(b *testing.B) {
				if !nowait && (way == "rawconn-pwritev2" || way == "commit-fresh") {
					b.Skip("pipes refuse pwritev2 with RWF_NOWAIT here")
				}
				w, finish := readerPipe(b, 64<<10)
				var step func(i int) error
				switch way {
				case "write":
					step = writeStep(w, size)
				case "rawconn-write", "rawconn-pwritev2":
					step = rawWriteStep(b, w, size, way == "rawconn-pwritev2")
				default:
					var closeWriter func()
					step, closeWriter = commitStep(b, w, size, false)
					defer closeWriter()
				}
				runSteps(b, size, finish, step)
			})
		}
	}
}

// rawWriteStep returns a step that fills a buffer of size bytes (a byte in
// each page) and writes all of it inside w's RawConn.Write, with write(2),
// or with pwritev2(RWF_NOWAIT) if nowait, parking on EAGAIN. The callback
// is made once, so that a step allocates nothing.
func rawWriteStep(b *testing.B, w *os.File, size int, nowait bool) func(i int) error {
	b.Helper()
	rc, err := w.SyscallConn()
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, size)
	iov := make([]unix.Iovec, 1)
	var off int
	var errno error
	try := func(fd uintptr) bool {
		for off < len(buf) {
			var n int
			if nowait {
				iov[0].Base = &buf[off]
				iov[0].SetLen(len(buf) - off)
				r1, _, e := unix.Syscall6(unix.SYS_PWRITEV2, fd, uintptr(unsafe.Pointer(&iov[0])), 1, ^uintptr(0), ^uintptr(0), unix.RWF_NOWAIT)
				n = int(r1)
				if e != 0 {
					n, errno = 0, e
				}
			} else {
				n, errno = unix.Write(int(fd), buf[off:])
			}
			switch {
			case errno == unix.EAGAIN:
				errno = nil
				return false
			case errno == unix.EINTR:
				errno = nil
				continue
			case errno != nil:
				return true
			case n <= 0:
				errno = io.ErrShortWrite // never loop on a write that took nothing
				return true
			}
			off += n
		}
		return true
	}
	return func(i int) error {
		touch(buf, byte(i))
		off, errno = 0, nil
		if err := rc.Write(try); err != nil {
			return err
		}
		return errno
	}
}

// BenchmarkVmspliceWriterMixed commits fresh 4 KiB buffers with one of
// 16 KiB in every 16, the 16 KiB one last (first=4KiB) or first
// (first=16KiB) of each 16, to the splicing reader of benchPipe: the writer
// that the rule for 16 KiB commits in small (vmsplicewriter_linux.go)
// keeps on pwritev2. Its rows in BENCHMARKS.md were measured with this
// code under the name BenchmarkZZMixed.
func BenchmarkVmspliceWriterMixed(b *testing.B) {
	for _, first := range []int{4 << 10, 16 << 10} {
		for _, ps := range []int{64 << 10, 1 << 20} {
			b.Run("first="+sizeName(first)+"/pipe="+sizeName(ps), func(b *testing.B) {
				w, finish := benchPipe(b, ps)
				v, err := pipe.NewVmspliceWriter(w, 16<<10)
				if err != nil {
					b.Fatal(err)
				}
				defer v.Close()
				var total int64
				b.ResetTimer()
				for i := range b.N {
					n := 4 << 10
					if first == 4<<10 && i%16 == 15 || first == 16<<10 && i%16 == 0 {
						n = 16 << 10
					}
					touch(v.Buffer()[:n], byte(i))
					if err := v.Commit(n); err != nil {
						b.Fatal(err)
					}
					total += int64(n)
				}
				b.StopTimer()
				b.SetBytes(total / int64(b.N))
				if err := v.Flush(); err != nil {
					b.Fatal(err)
				}
				finish(total)
			})
		}
	}
}

// BenchmarkVmspliceWriterChild writes into a child process, `wc -c`, which
// reads its stdin with read(2) 16 KiB at a time where it is GNU coreutils
// 9.1 (another wc may read otherwise): the program a new user tried first. Fresh pages, reuse (safe here: wc copies
// the bytes out) and w.Write, each with the pipe raised to the buffer's size
// (at least the default 64 KiB), as NewVmspliceWriter raises it. The child
// starts before the timer; the check of its count, after.
func BenchmarkVmspliceWriterChild(b *testing.B) {
	needProgram(b, "wc")
	for _, size := range []int{16 << 10, 64 << 10, 256 << 10, 1 << 20} {
		for _, way := range []string{"commit-fresh", "commit-reuse", "write"} {
			b.Run("way="+way+"/buf="+sizeName(size), func(b *testing.B) {
				r, w := newPipe(b, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
				if err := pipe.SetNonblock(r, false); err != nil { // the child's end
					b.Fatal(err)
				}
				if _, err := pipe.SetCapacity(w, max(size, 64<<10)); err != nil {
					b.Skip(err)
				}
				var out bytes.Buffer
				cmd := exec.CommandContext(b.Context(), "wc", "-c")
				cmd.Stdin, cmd.Stdout = r, &out
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				r.Close()
				waited := false
				b.Cleanup(func() { // after a failure: no child left behind
					if !waited {
						cmd.Process.Kill()
						cmd.Wait()
					}
				})
				finish := func(want int64) {
					w.Close()
					waited = true
					if err := cmd.Wait(); err != nil {
						b.Fatal(err)
					}
					if got, err := strconv.ParseInt(string(bytes.TrimSpace(out.Bytes())), 10, 64); err != nil || got != want {
						b.Fatalf("wc -c counted %q; want %d", out.String(), want)
					}
				}
				step := writeStep(w, size)
				if way != "write" {
					var closeWriter func()
					step, closeWriter = commitStep(b, w, size, way == "commit-reuse")
					defer closeWriter()
				}
				runSteps(b, size, finish, step)
			})
		}
	}
}

// runSteps times b.N calls of step, each moving size bytes, and then has
// finish check that the reader got them all.
func runSteps(b *testing.B, size int, finish func(want int64), step func(i int) error) {
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := range b.N {
		if err := step(i); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	finish(int64(b.N) * int64(size))
}

// endless reads copies of a 1 MiB block, as a producer generating data
// would.
type endless struct{ block []byte }

func (e endless) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		n += copy(p[n:], e.block)
	}
	return n, nil
}

// BenchmarkVmspliceWriterCopy copies 1 MiB per operation from Go memory
// into a 1 MiB pipe spliced to /dev/null: VmspliceWriter.Write and ReadFrom,
// with fresh pages and with reuse, against w.Write and io.Copy to w.
func BenchmarkVmspliceWriterCopy(b *testing.B) {
	const op = 1 << 20
	src := make([]byte, op)
	for i := range src {
		src[i] = byte(i * 7)
	}
	for _, way := range []string{"Write-fresh", "Write-reuse", "ReadFrom-fresh", "ReadFrom-reuse", "w.Write", "io.Copy"} {
		b.Run("way="+way, func(b *testing.B) {
			w, finish := benchPipe(b, 1<<20)
			var v *pipe.VmspliceWriter
			if way != "w.Write" && way != "io.Copy" {
				var err error
				if v, err = pipe.NewVmspliceWriter(w, op); err != nil {
					b.Fatal(err)
				}
				v.SetReuse(way == "Write-reuse" || way == "ReadFrom-reuse")
			}
			b.SetBytes(op)
			b.ResetTimer()
			for range b.N {
				var err error
				switch way {
				case "Write-fresh", "Write-reuse":
					_, err = v.Write(src)
				case "ReadFrom-fresh", "ReadFrom-reuse":
					_, err = v.ReadFrom(io.LimitReader(endless{src}, op))
				case "w.Write":
					_, err = w.Write(src)
				case "io.Copy":
					_, err = io.Copy(w, io.LimitReader(endless{src}, op))
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			if v != nil {
				if err := v.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			finish(int64(b.N) * op)
		})
	}
}

// BenchmarkVmspliceWriterOverhead measures what a small commit costs the
// writer itself, with no reader running beside it: 4 KiB commits (copied
// into the pipe) against w.Write of a 4 KiB buffer, into a 1 MiB pipe that
// is emptied into /dev/null, outside the timer, after every 64 writes, so
// that no write waits. Both make one system call a write; the difference
// is the library's own path.
func BenchmarkVmspliceWriterOverhead(b *testing.B) {
	const size, every = 4 << 10, 64
	for _, way := range []string{"commit-fresh", "write"} {
		b.Run("way="+way, func(b *testing.B) {
			r, w := newPipe(b, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			if _, err := pipe.SetCapacity(w, 1<<20); err != nil {
				b.Skip(err)
			}
			null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer null.Close()
			empty := func() {
				for {
					n, err := pipe.Splice(null, r, 1<<20, pipe.SPLICE_F_NONBLOCK)
					if err != nil || n == 0 {
						b.Fatalf("emptying the pipe: %d, %v", n, err)
					}
					left, err := pipe.Buffered(r)
					if err != nil {
						b.Fatal(err)
					}
					if left == 0 {
						return
					}
				}
			}
			step := writeStep(w, size)
			if way == "commit-fresh" {
				var closeWriter func()
				step, closeWriter = commitStep(b, w, size, false)
				defer closeWriter()
			}
			b.SetBytes(size)
			b.ResetTimer()
			for i := range b.N {
				if err := step(i); err != nil {
					b.Fatal(err)
				}
				if i%every == every-1 {
					b.StopTimer()
					empty()
					b.StartTimer()
				}
			}
		})
	}
}
