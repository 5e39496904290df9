package pipe_test

import (
	"errors"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/pipe2go/pipe"
	"golang.org/x/sys/unix"
)

// A sysCall makes a system call: syscall.Syscall6, which tells the runtime
// that the thread is in the kernel (and lets it hand the P to another
// thread), or syscall.RawSyscall6, which tells it nothing.
type sysCall func(trap, a1, a2, a3, a4, a5, a6 uintptr) (r1, r2 uintptr, err syscall.Errno)

// every5ms returns a function that calls runtime.Gosched if 5 ms have
// passed since it last did, as the package's schedPoint does, or does
// nothing if on is false.
func every5ms(on bool) func() {
	last := time.Now()
	return func() {
		if on && time.Since(last) >= 5*time.Millisecond {
			runtime.Gosched()
			last = time.Now()
		}
	}
}

// spinSplice splices from the pipe fd to dst, up to size bytes a call,
// SPLICE_F_NONBLOCK, retrying EAGAIN and EINTR in a busy loop, calling
// sched before each call, until EOF, an error, or an EAGAIN once stop is
// set; it then sends how many bytes it moved on got.
func spinSplice(call sysCall, sched func(), fd, dst, size int, stop *atomic.Bool, got chan<- int64) {
	var n int64
	for {
		sched()
		m, _, errno := call(unix.SYS_SPLICE, uintptr(fd), 0, uintptr(dst), 0, uintptr(size), unix.SPLICE_F_NONBLOCK)
		switch {
		case errno == 0 && m == 0:
			got <- n
			return
		case errno == 0:
			n += int64(m)
		case errno == unix.EINTR:
		case errno != unix.EAGAIN || stop.Load():
			got <- n
			return
		}
	}
}

// errReaderGone is spinVmsplice's error when the reader has stopped, and
// errVmspliceNothing when vmsplice(2) mapped nothing without an error.
var (
	errReaderGone      = errors.New("the reader stopped")
	errVmspliceNothing = errors.New("vmsplice mapped nothing")
)

// spinVmsplice maps all of buf into the pipe behind the write end fd,
// SPLICE_F_NONBLOCK, retrying EAGAIN and EINTR in a busy loop while ok
// reports that the reader is still there.
func spinVmsplice(call sysCall, fd int, buf []byte, ok func() bool) error {
	for done := 0; done < len(buf); {
		if !ok() {
			return errReaderGone
		}
		iov := unix.Iovec{Base: &buf[done]}
		iov.SetLen(len(buf) - done)
		m, _, errno := call(unix.SYS_VMSPLICE, uintptr(fd), uintptr(unsafe.Pointer(&iov)), 1, unix.SPLICE_F_NONBLOCK, 0, 0)
		switch {
		case errno == 0 && m == 0: // never for a non-empty iovec; do not loop on it
			return errVmspliceNothing
		case errno == 0:
			done += int(m)
		case errno != unix.EAGAIN && errno != unix.EINTR:
			return errno
		}
	}
	return nil
}

// hugeBufs maps two buffers of size bytes at the starts of two 2 MiB runs
// advised for huge pages (VmspliceWriter carves its buffers from such
// runs), and faults them in before the clock starts, as C does.
func hugeBufs(b *testing.B, size int) [2][]byte {
	b.Helper()
	mem, err := unix.Mmap(-1, 0, 6<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { unix.Munmap(mem) })
	off := int(-uintptr(unsafe.Pointer(&mem[0])) & (2<<20 - 1))
	_ = unix.Madvise(mem, unix.MADV_HUGEPAGE)
	bufs := [2][]byte{mem[off : off+size], mem[off+2<<20 : off+2<<20+size]}
	touch(bufs[0], 1)
	touch(bufs[1], 1)
	return bufs
}

// awaitEmpty waits, spinning, until the pipe behind fd is empty or the
// reader is gone.
func awaitEmpty(b *testing.B, fd int, gone *atomic.Bool) {
	b.Helper()
	for !gone.Load() {
		n, err := unix.IoctlGetInt(fd, unix.TIOCINQ)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// BenchmarkSyscallCeiling is the package's reuse rows without the package:
// a goroutine refills two buffers in place (a byte in every 4 KiB page) and
// vmsplices each into a pipe of its size, SPLICE_F_NONBLOCK, retrying
// EAGAIN in a busy loop, while another splices the pipe to /dev/null the
// same way, as C's `pipebench -m vmsplice -T -W -n` does with threads.
// way=syscall makes each call as the standard library does
// (syscall.Syscall6: the runtime is told that the thread is in the kernel,
// and may hand its P to another thread); way=rawsyscall with
// syscall.RawSyscall6, which tells it nothing; way=gosched as syscall, with
// each goroutine passing through the scheduler (runtime.Gosched) every 5
// ms, as the package's loops do (schedPoint, schedEvery); way=poller as
// gosched, with both ends also registered in the runtime poller (epoll), as
// every *os.File of a non-blocking pipe is, the package's included: the
// kernel then runs epoll's wake-up callback at every call that empties or
// fills the pipe. The pipe is unix.Pipe2's in the other ways, as C's is.
// None is what the package does: they measure what such a loop reaches
// here when it makes its calls the runtime's way, when it also lets the
// scheduler in, when its pipe is also in the poller, and when it does none
// of that. Both goroutines spin, so it needs two Ps.
func BenchmarkSyscallCeiling(b *testing.B) {
	for _, size := range []int{64 << 10, 1 << 20} {
		for _, way := range []string{"syscall", "gosched", "poller", "rawsyscall"} {
			b.Run("way="+way+"/buf="+sizeName(size), func(b *testing.B) {
				// -cpu sets GOMAXPROCS for each sub-benchmark.
				if runtime.GOMAXPROCS(0) < 2 {
					b.Skip("GOMAXPROCS=1: two goroutines that spin need two Ps")
				}
				call := sysCall(syscall.Syscall6)
				if way == "rawsyscall" {
					call = syscall.RawSyscall6
				}
				gosched := way == "gosched" || way == "poller"
				var p [2]int
				if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
					b.Fatal(err)
				}
				if way == "poller" {
					// os.NewFile registers a non-blocking descriptor in
					// the poller; the files close the ends.
					r, w := os.NewFile(uintptr(p[0]), "r"), os.NewFile(uintptr(p[1]), "w")
					defer r.Close()
					defer w.Close()
				} else {
					defer unix.Close(p[0])
					defer unix.Close(p[1])
				}
				if _, err := unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, size); err != nil {
					b.Skip(err)
				}
				nullFD := fdOf(b, devNull(b))
				bufs := hugeBufs(b, size)

				var stop, gone atomic.Bool
				got := make(chan int64, 1)
				go func() {
					defer gone.Store(true)
					spinSplice(call, every5ms(gosched), p[0], nullFD, size, &stop, got)
				}()
				running := func() bool { return !gone.Load() }
				sched := every5ms(gosched)
				b.SetBytes(int64(size))
				b.ResetTimer()
				for i := range b.N {
					sched()
					buf := bufs[i%2]
					touch(buf, byte(i))
					if err := spinVmsplice(call, p[1], buf, running); err != nil {
						stop.Store(true) // a reader still running stops at its next EAGAIN
						b.Fatalf("vmsplice: %v (the reader got %d bytes)", err, <-got)
					}
				}
				awaitEmpty(b, p[0], &gone)
				b.StopTimer()
				stop.Store(true)
				if n := <-got; n != int64(b.N)*int64(size) {
					b.Fatalf("reader got %d bytes; want %d", n, int64(b.N)*int64(size))
				}
			})
		}
	}
}

// BenchmarkVmspliceWriterSides splits the reuse row of
// BenchmarkVmspliceWriter (64 KiB buffers in a 64 KiB pipe spliced to
// /dev/null) by side, to tell which side's work costs what: the writer is
// Buffer and Commit with SetReuse (commit) or BenchmarkSyscallCeiling's
// loop of vmsplice calls (loop), and the reader Copy (copy) or that
// benchmark's loop of splice calls (loop), both loops with a Gosched every
// 5 ms. The pipe is Pipe2's, in the poller, for all four: loop+loop is
// BenchmarkSyscallCeiling's way=poller (whose clock also runs while the
// pipe drains), and commit+copy the reuse row. The loop writer refills two
// buffers; a VmspliceWriter of 64 KiB buffers takes 64 in turn, from two 2
// MiB runs, and faults them in on its first round, inside the clock.
// A reader that stops early closes the read end, so that the writer fails
// rather than waits.
func BenchmarkVmspliceWriterSides(b *testing.B) {
	const size = 64 << 10
	for _, way := range []string{"commit+copy", "commit+loop", "loop+copy", "loop+loop"} {
		b.Run("way="+way, func(b *testing.B) {
			if runtime.GOMAXPROCS(0) < 2 {
				b.Skip("GOMAXPROCS=1: two goroutines that spin need two Ps")
			}
			commit, copying := way[:6] == "commit", way[len(way)-4:] == "copy"
			r, w := newPipe(b, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			if _, err := pipe.SetCapacity(w, size); err != nil {
				b.Skip(err)
			}
			var gone atomic.Bool
			var finish func() int64
			done := make(chan struct{}) // closed when the reader has returned
			if copying {
				null := devNull(b)
				got := make(chan int64, 1)
				// After a failure, the reader ends at EOF, before the
				// pipe's ends are closed (cleanups run last first).
				b.Cleanup(func() { w.Close(); <-done })
				go func() {
					defer close(done)
					defer gone.Store(true)
					n, err := pipe.Copy(null, r)
					if err != nil {
						b.Errorf("Copy: %v", err)
						r.Close()
					}
					got <- n
				}()
				finish = func() int64 { w.Close(); return <-got }
			} else {
				var stop atomic.Bool
				got := make(chan int64, 1)
				rfd, nullFD := fdOf(b, r), fdOf(b, devNull(b))
				// After a failure, the reader stops at its next EAGAIN, before
				// the pipe's ends are closed.
				b.Cleanup(func() { stop.Store(true); <-done })
				go func() {
					defer close(done)
					defer gone.Store(true)
					spinSplice(syscall.Syscall6, every5ms(true), rfd, nullFD, size, &stop, got)
					if !stop.Load() {
						r.Close() // stopped early: the writer gets EPIPE
					}
				}()
				finish = func() int64 {
					awaitEmpty(b, rfd, &gone)
					stop.Store(true)
					return <-got
				}
			}
			var step func(i int) error
			if commit {
				var closeWriter func()
				step, closeWriter = commitStep(b, w, size, true)
				defer closeWriter()
			} else {
				bufs := hugeBufs(b, size)
				wfd := fdOf(b, w)
				sched := every5ms(true)
				running := func() bool { return !gone.Load() }
				step = func(i int) error {
					sched()
					buf := bufs[i%2]
					touch(buf, byte(i))
					return spinVmsplice(syscall.Syscall6, wfd, buf, running)
				}
			}
			b.SetBytes(size)
			b.ResetTimer()
			for i := range b.N {
				if err := step(i); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer() // where runSteps stops it, before the pipe drains
			n := finish()
			if n != int64(b.N)*size {
				b.Fatalf("reader got %d bytes; want %d", n, int64(b.N)*size)
			}
		})
	}
}
