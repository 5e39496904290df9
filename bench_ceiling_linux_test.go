package pipe_test

import (
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

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
// ms, as the package's loops do (schedPoint, schedEvery). None is what the
// package does: they measure what such a loop reaches here when it makes
// its calls the runtime's way, when it also lets the scheduler in, and when
// it does neither. Both goroutines spin, so it needs two Ps.
func BenchmarkSyscallCeiling(b *testing.B) {
	for _, size := range []int{64 << 10, 1 << 20} {
		for _, way := range []string{"syscall", "gosched", "rawsyscall"} {
			b.Run("way="+way+"/buf="+sizeName(size), func(b *testing.B) {
				// -cpu sets GOMAXPROCS for each sub-benchmark.
				if runtime.GOMAXPROCS(0) < 2 {
					b.Skip("GOMAXPROCS=1: two goroutines that spin need two Ps")
				}
				raw, gosched := way == "rawsyscall", way == "gosched"
				// sched calls Gosched if 5 ms have passed since *last, as
				// the package's schedPoint does.
				sched := func(last *time.Time) {
					if gosched && time.Since(*last) >= 5*time.Millisecond {
						runtime.Gosched()
						*last = time.Now()
					}
				}
				var p [2]int
				if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
					b.Fatal(err)
				}
				defer unix.Close(p[0])
				defer unix.Close(p[1])
				if _, err := unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, size); err != nil {
					b.Skip(err)
				}
				nullFD := fdOf(b, devNull(b))
				// Two buffers in separate 2 MiB runs, advised for huge
				// pages as VmspliceWriter's are, and faulted in before
				// the clock starts, as C's are.
				mem, err := unix.Mmap(-1, 0, 6<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
				if err != nil {
					b.Fatal(err)
				}
				defer unix.Munmap(mem)
				off := int(-uintptr(unsafe.Pointer(&mem[0])) & (2<<20 - 1))
				_ = unix.Madvise(mem, unix.MADV_HUGEPAGE)
				bufs := [2][]byte{mem[off : off+size], mem[off+2<<20 : off+2<<20+size]}
				touch(bufs[0], 1)
				touch(bufs[1], 1)

				var stop, gone atomic.Bool
				got := make(chan int64, 1)
				go func() {
					defer gone.Store(true)
					var n int64
					last := time.Now()
					for {
						sched(&last)
						var m uintptr
						var errno syscall.Errno
						if raw {
							m, _, errno = syscall.RawSyscall6(unix.SYS_SPLICE, uintptr(p[0]), 0, uintptr(nullFD), 0, uintptr(size), unix.SPLICE_F_NONBLOCK)
						} else {
							m, _, errno = syscall.Syscall6(unix.SYS_SPLICE, uintptr(p[0]), 0, uintptr(nullFD), 0, uintptr(size), unix.SPLICE_F_NONBLOCK)
						}
						switch {
						case errno == 0:
							n += int64(m)
						case errno == unix.EINTR:
						case errno != unix.EAGAIN || stop.Load():
							got <- n
							return
						}
					}
				}()
				b.SetBytes(int64(size))
				b.ResetTimer()
				last := time.Now()
				for i := range b.N {
					sched(&last)
					buf := bufs[i%2]
					touch(buf, byte(i))
					for done := 0; done < size; {
						if gone.Load() {
							b.Fatalf("the reader stopped after %d bytes", <-got)
						}
						iov := unix.Iovec{Base: &buf[done]}
						iov.SetLen(size - done)
						var m uintptr
						var errno syscall.Errno
						if raw {
							m, _, errno = syscall.RawSyscall6(unix.SYS_VMSPLICE, uintptr(p[1]), uintptr(unsafe.Pointer(&iov)), 1, unix.SPLICE_F_NONBLOCK, 0, 0)
						} else {
							m, _, errno = syscall.Syscall6(unix.SYS_VMSPLICE, uintptr(p[1]), uintptr(unsafe.Pointer(&iov)), 1, unix.SPLICE_F_NONBLOCK, 0, 0)
						}
						switch {
						case errno == 0:
							done += int(m)
						case errno != unix.EAGAIN && errno != unix.EINTR:
							b.Fatal(errno)
						}
					}
				}
				// Wait for the reader to empty the pipe, then stop it.
				for {
					n, err := unix.IoctlGetInt(p[0], unix.TIOCINQ)
					if err != nil {
						b.Fatal(err)
					}
					if n == 0 || gone.Load() {
						break
					}
				}
				b.StopTimer()
				stop.Store(true)
				if n := <-got; n != int64(b.N)*int64(size) {
					b.Fatalf("reader got %d bytes; want %d", n, int64(b.N)*int64(size))
				}
			})
		}
	}
}
