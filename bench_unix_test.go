//go:build unix

package pipe_test

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/pipe2go/pipe"
)

// bufSizes are the buffer sizes the throughput benchmarks use.
var bufSizes = []int{4 << 10, 64 << 10, 256 << 10, 1 << 20}

func sizeName(n int) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}

// benchReadWrite moves b.N buffers of size bytes from a writer goroutine to
// a reader goroutine through r and w, and checks that every byte arrived.
func benchReadWrite(b *testing.B, r, w *os.File, size int) {
	b.Helper()
	b.SetBytes(int64(size))
	total := int64(b.N) * int64(size)
	errc := make(chan error, 1)
	b.ResetTimer()
	go func() {
		buf := make([]byte, size)
		for i := 0; i < b.N; i++ {
			if _, err := w.Write(buf); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	buf := make([]byte, size)
	var got int64
	for got < total {
		n, err := r.Read(buf)
		got += int64(n)
		if err != nil {
			b.Fatalf("read after %d of %d bytes: %v", got, total, err)
		}
	}
	b.StopTimer()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	if got != total {
		b.Fatalf("read %d bytes; want %d", got, total)
	}
}

// BenchmarkCapacity compares Write/Read throughput through a pipe of the
// default capacity and one grown to 1 MiB, with non-blocking ends (the
// runtime poller) and with blocking ones.
func BenchmarkCapacity(b *testing.B) {
	modes := []struct {
		name  string
		flags int
	}{{"nonblock", pipe.O_CLOEXEC | pipe.O_NONBLOCK}, {"blocking", pipe.O_CLOEXEC}}
	for _, mode := range modes {
		for _, capacity := range []int{0, 1 << 20} {
			name := "default"
			if capacity > 0 {
				name = sizeName(capacity)
			}
			for _, size := range bufSizes {
				b.Run(fmt.Sprintf("mode=%s/cap=%s/buf=%s", mode.name, name, sizeName(size)), func(b *testing.B) {
					r, w := newPipe(b, mode.flags)
					if capacity > 0 {
						if _, err := pipe.SetCapacity(w, capacity); errors.Is(err, errors.ErrUnsupported) {
							b.Skip(err)
						} else if err != nil {
							b.Fatal(err)
						}
					}
					benchReadWrite(b, r, w, size)
				})
			}
		}
	}
}

// BenchmarkReadWrite compares Write/Read throughput through files from Pipe2
// (O_NONBLOCK, in the runtime poller) and from os.Pipe.
func BenchmarkReadWrite(b *testing.B) {
	makers := []struct {
		name string
		make func() (r, w *os.File, err error)
	}{
		{"Pipe2", func() (*os.File, *os.File, error) { return pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_NONBLOCK) }},
		{"os.Pipe", os.Pipe},
	}
	for _, size := range bufSizes {
		for _, m := range makers {
			b.Run(fmt.Sprintf("buf=%s/pipe=%s", sizeName(size), m.name), func(b *testing.B) {
				r, w, err := m.make()
				if err != nil {
					b.Fatal(err)
				}
				defer r.Close()
				defer w.Close()
				benchReadWrite(b, r, w, size)
			})
		}
	}
}
