package pipe_test

import (
	"os"
	"testing"

	"github.com/pipe2go/pipe"
	"golang.org/x/sys/unix"
)

// drain empties r into /dev/null with Copy, which splices, until EOF, in a
// goroutine; the returned func waits for it and returns the bytes drained.
func drain(b *testing.B, r *os.File) func() int64 {
	null := devNull(b)
	done := make(chan int64, 1)
	go func() {
		n, _ := pipe.Copy(null, r) // the count is what the caller checks
		done <- n
	}()
	return func() int64 { return <-done }
}

// BenchmarkVmsplice moves chunks from a writer goroutine to a reader goroutine
// through a 1 MiB pipe: Vmsplice in and Splice out to /dev/null, against Write
// in and Read out with a buffer of the chunk's size (B/read is the mean a
// read returned).
func BenchmarkVmsplice(b *testing.B) {
	for _, size := range []int{64 << 10, 256 << 10, 1 << 20} {
		for _, method := range []string{"vmsplice+splice", "write+read"} {
			b.Run("method="+method+"/buf="+sizeName(size), func(b *testing.B) {
				r, w := newPipe(b, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
				if _, err := pipe.SetCapacity(w, 1<<20); err != nil {
					b.Skip(err)
				}
				buf := make([]byte, size)
				touch(buf, 1) // untouched pages would all be the shared zero page
				b.SetBytes(int64(size))
				var got func() int64
				var reads int64
				if method == "vmsplice+splice" {
					got = drain(b, r)
				} else {
					done := make(chan int64, 1)
					go func() {
						n, k, _ := readWith(r, make([]byte, size))
						reads = k
						done <- n
					}()
					got = func() int64 { return <-done }
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					var err error
					if method == "vmsplice+splice" {
						// The content is never changed, so reusing buf while the
						// reader still holds its pages is harmless here.
						_, err = pipe.Vmsplice(w, [][]byte{buf}, 0)
					} else {
						_, err = w.Write(buf)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				w.Close()
				n := got()
				if n != int64(b.N)*int64(size) {
					b.Fatalf("reader got %d bytes; want %d", n, int64(b.N)*int64(size))
				}
				if reads > 0 {
					// The reads' mean size, up to the chunk's: what the
					// row's reader really asked of read(2).
					b.ReportMetric(float64(n)/float64(reads), "B/read")
				}
			})
		}
	}
}

// BenchmarkCreate measures creating a pipe and closing both ends: Pipe2
// with and without O_NONBLOCK, os.Pipe, and raw unix.Pipe2 + unix.Close as
// the floor.
func BenchmarkCreate(b *testing.B) {
	closeBoth := func(r, w *os.File, err error) error {
		if err != nil {
			return err
		}
		r.Close()
		return w.Close()
	}
	cases := []struct {
		name string
		op   func() error
	}{
		{"Pipe2(O_CLOEXEC)", func() error { return closeBoth(pipe.Pipe2(pipe.O_CLOEXEC)) }},
		{"Pipe2(O_CLOEXEC|O_NONBLOCK)", func() error { return closeBoth(pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_NONBLOCK)) }},
		{"os.Pipe", func() error { return closeBoth(os.Pipe()) }},
		{"unix.Pipe2", func() error {
			var p [2]int
			if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
				return err
			}
			unix.Close(p[0])
			return unix.Close(p[1])
		}},
	}
	for _, c := range cases {
		b.Run("fn="+c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if err := c.op(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
