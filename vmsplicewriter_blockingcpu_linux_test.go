package pipe_test

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/pipe2go/pipe"
)

// TestVmspliceWriterBlockingEndSlowReaderIdles: a write end that stays blocking
// (in the poller: made blocking by a sharer; outside it: a blocking
// descriptor given to os.NewFile, as os.Stdout on a shell's pipe) makes
// every commit mapped. With a reader taking 4 KiB every 10 ms, the writer
// must wait parked, not spin.
func TestVmspliceWriterBlockingEndSlowReaderIdles(t *testing.T) {
	for _, how := range []string{"poller", "NewFile blocking"} {
		for _, size := range []int{100, 20000} {
			t.Run(fmt.Sprintf("%s/%d", how, size), func(t *testing.T) {
				var fds [2]int
				flags := syscall.O_CLOEXEC
				if how == "poller" {
					flags |= syscall.O_NONBLOCK
				}
				if err := syscall.Pipe2(fds[:], flags); err != nil {
					t.Fatal(err)
				}
				r := os.NewFile(uintptr(fds[0]), "r")
				w := os.NewFile(uintptr(fds[1]), "w")
				defer r.Close()
				defer w.Close()
				if how == "poller" {
					if err := syscall.SetNonblock(fds[1], false); err != nil { // a sharer's fcntl
						t.Fatal(err)
					}
				}
				v, err := pipe.NewVmspliceWriter(w, 64<<10)
				if err != nil {
					t.Fatal(err)
				}
				stop := make(chan struct{})
				done := make(chan error, 1)
				go func() {
					if err := v.Commit(len(v.Buffer())); err != nil { // mapped
						done <- err
						return
					}
					for {
						select {
						case <-stop:
							done <- v.Close()
							return
						default:
						}
						if err := v.Commit(size); err != nil {
							done <- err
							return
						}
					}
				}()
				buf := make([]byte, 4096)
				time.Sleep(50 * time.Millisecond)
				before := cpuTime(t)
				start := time.Now()
				for time.Since(start) < 700*time.Millisecond {
					if _, err := r.Read(buf); err != nil {
						t.Fatal(err)
					}
					time.Sleep(10 * time.Millisecond)
				}
				used := cpuTime(t) - before
				el := time.Since(start)
				close(stop)
				go func() {
					for {
						if _, err := r.Read(buf); err != nil {
							return
						}
					}
				}()
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				t.Logf("CPU %v in %v", used, el.Round(time.Millisecond))
				if used > el/5 {
					t.Errorf("the process used %v of CPU in %v with a reader taking 4 KiB per 10 ms: the writer spins", used, el)
				}
			})
		}
	}
}
