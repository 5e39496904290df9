package pipe_test

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/pipe2go/pipe"
	"golang.org/x/sys/unix"
)

// devNull opens /dev/null for writing, closed when the benchmark ends.
func devNull(b *testing.B) *os.File {
	b.Helper()
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return f
}

// drain empties r into /dev/null with Splice until EOF, in a goroutine; the
// returned func waits for it and returns the bytes drained.
func drain(b *testing.B, r *os.File) func() int64 {
	null := devNull(b)
	done := make(chan int64, 1)
	go func() {
		var total int64
		for {
			n, err := pipe.Splice(null, r, 1<<20, 0)
			total += n
			if err != nil || n == 0 {
				done <- total
				return
			}
		}
	}()
	return func() int64 { return <-done }
}

// BenchmarkVmsplice moves chunks from a writer goroutine to a reader goroutine
// through a 1 MiB pipe: Vmsplice in and Splice out to /dev/null, against Write
// in and Read out.
func BenchmarkVmsplice(b *testing.B) {
	for _, size := range []int{64 << 10, 256 << 10, 1 << 20} {
		for _, method := range []string{"vmsplice+splice", "write+read"} {
			b.Run("method="+method+"/buf="+sizeName(size), func(b *testing.B) {
				r, w := newPipe(b, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
				if _, err := pipe.SetCapacity(w, 1<<20); err != nil {
					b.Skip(err)
				}
				buf := make([]byte, size)
				b.SetBytes(int64(size))
				var got func() int64
				if method == "vmsplice+splice" {
					got = drain(b, r)
				} else {
					done := make(chan int64, 1)
					go func() {
						n, _ := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, make([]byte, size))
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
				if n := got(); n != int64(b.N)*int64(size) {
					b.Fatalf("reader got %d bytes; want %d", n, int64(b.N)*int64(size))
				}
			})
		}
	}
}

// copyBench is one pairing of BenchmarkCopy: setup returns the source and
// destination of each 1 MiB operation, reset prepares them for the next one,
// and finish stops the helpers.
type copyBench struct {
	name  string
	setup func(b *testing.B) (dst io.Writer, src io.Reader, reset func(), finish func())
}

const copyOp = 1 << 20

// pipeFed returns the read end of a 1 MiB pipe fed endlessly, by Vmsplice so that the
// feeding costs little, until finish.
func pipeFed(b *testing.B) (*os.File, func()) {
	r, w := newPipe(b, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	if _, err := pipe.SetCapacity(w, 1<<20); err != nil {
		b.Skip(err)
	}
	buf := make([]byte, 1<<20)
	go func() {
		for {
			if _, err := pipe.Vmsplice(w, [][]byte{buf}, 0); err != nil {
				return
			}
		}
	}()
	return r, func() { r.Close(); w.Close() }
}

var copyBenches = []copyBench{
	{"pipe-devnull", func(b *testing.B) (io.Writer, io.Reader, func(), func()) {
		r, stop := pipeFed(b)
		return devNull(b), r, func() {}, stop
	}},
	{"pipe-file", func(b *testing.B) (io.Writer, io.Reader, func(), func()) {
		r, stop := pipeFed(b)
		f, err := os.Create(filepath.Join(b.TempDir(), "dst"))
		if err != nil {
			b.Fatal(err)
		}
		return f, r, func() { f.Seek(0, io.SeekStart) }, func() { stop(); f.Close() }
	}},
	{"file-pipe", func(b *testing.B) (io.Writer, io.Reader, func(), func()) {
		name := filepath.Join(b.TempDir(), "src")
		if err := os.WriteFile(name, make([]byte, copyOp), 0o600); err != nil {
			b.Fatal(err)
		}
		f, err := os.Open(name)
		if err != nil {
			b.Fatal(err)
		}
		r, w := newPipe(b, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
		wait := drain(b, r)
		return w, f, func() { f.Seek(0, io.SeekStart) }, func() { w.Close(); wait(); f.Close() }
	}},
	{"pipe-tcp", func(b *testing.B) (io.Writer, io.Reader, func(), func()) {
		r, stop := pipeFed(b)
		a, peer := tcpPair(b)
		go io.Copy(io.Discard, peer)
		return a, r, func() {}, func() { stop(); a.Close() }
	}},
	{"tcp-pipe", func(b *testing.B) (io.Writer, io.Reader, func(), func()) {
		a, peer := tcpPair(b)
		go func() {
			buf := make([]byte, 1<<20)
			for {
				if _, err := peer.Write(buf); err != nil {
					return
				}
			}
		}()
		r, w := newPipe(b, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
		wait := drain(b, r)
		return w, a, func() {}, func() { a.Close(); peer.Close(); w.Close(); wait() }
	}},
}

// BenchmarkCopy compares Copy with io.Copy, 1 MiB per operation, for each
// pairing Copy splices.
func BenchmarkCopy(b *testing.B) {
	for _, cb := range copyBenches {
		for _, method := range []string{"Copy", "io.Copy"} {
			b.Run("path="+cb.name+"/method="+method, func(b *testing.B) {
				copyFn := pipe.Copy
				if method == "io.Copy" {
					copyFn = io.Copy
				}
				dst, src, reset, finish := cb.setup(b)
				defer finish()
				b.SetBytes(copyOp)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					reset()
					n, err := copyFn(dst, io.LimitReader(src, copyOp))
					if err != nil || n != copyOp {
						b.Fatalf("copy = %d, %v; want %d", n, err, copyOp)
					}
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
