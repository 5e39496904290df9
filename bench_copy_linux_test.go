package pipe_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pipe2go/pipe"
)

// BenchmarkCopy compares Copy with io.Copy on the workloads pipes carry: a
// child process writing into a pipe, TCP and Unix sockets both ways, files
// both ways, a pipe to a pipe. Each operation copies size bytes from a
// source that never ends (an io.LimitReader, as a framed protocol reads),
// into a destination whose reader, where it has one, reads 128 KiB at a
// time.
func BenchmarkCopy(b *testing.B) {
	for _, p := range copyPairings {
		for _, size := range []int{1 << 10, 64 << 10, 1 << 20, 64 << 20} {
			for _, method := range []string{"Copy", "io.Copy"} {
				b.Run(fmt.Sprintf("path=%s/size=%s/method=%s", p.name, sizeName(size), method), func(b *testing.B) {
					copyFn := pipe.Copy
					if method == "io.Copy" {
						copyFn = io.Copy
					}
					src, resetSrc := p.src(b)
					dst, resetDst := p.dst(b)
					b.SetBytes(int64(size))
					b.ResetTimer()
					for range b.N {
						resetSrc()
						resetDst()
						n, err := copyFn(dst, io.LimitReader(src, int64(size)))
						if err != nil || n != int64(size) {
							b.Fatalf("copy = %d, %v; want %d", n, err, size)
						}
					}
				})
			}
		}
	}
}

// BenchmarkCopyChild copies everything a `cat` child writes into a pipe, to
// EOF, as a program does with a child's output: to a file and to /dev/null.
// Starting the child is part of each operation, for both methods alike.
func BenchmarkCopyChild(b *testing.B) {
	cat, err := exec.LookPath("cat")
	if err != nil {
		b.Skipf("cat: %v", err)
	}
	for _, size := range []int{1 << 20, 64 << 20, 1 << 30} {
		input := sync.OnceValue(func() string { // made only if a benchmark of this size runs
			name := filepath.Join(b.TempDir(), fmt.Sprint("input-", size))
			if err := os.WriteFile(name, make([]byte, size), 0o600); err != nil {
				b.Fatal(err)
			}
			return name
		})
		for _, to := range []string{"file", "devnull"} {
			for _, method := range []string{"Copy", "io.Copy"} {
				b.Run(fmt.Sprintf("to=%s/size=%s/method=%s", to, sizeName(size), method), func(b *testing.B) {
					input := input()
					copyFn := pipe.Copy
					if method == "io.Copy" {
						copyFn = io.Copy
					}
					var dst *os.File
					if to == "file" {
						dst = tempFile(b)
					} else {
						dst = devNull(b)
					}
					b.SetBytes(int64(size))
					b.ResetTimer()
					for range b.N {
						dst.Seek(0, io.SeekStart)
						r, w, err := pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_NONBLOCK)
						if err != nil {
							b.Fatal(err)
						}
						if err := pipe.SetNonblock(w, false); err != nil { // the child's end
							b.Fatal(err)
						}
						cmd := exec.CommandContext(b.Context(), cat, input)
						cmd.Stdout = w
						if err := cmd.Start(); err != nil {
							b.Fatal(err)
						}
						w.Close()
						n, err := copyFn(dst, r)
						r.Close()
						if err := cmd.Wait(); err != nil {
							b.Fatal(err)
						}
						if err != nil || n != int64(size) {
							b.Fatalf("copy = %d, %v; want %d", n, err, size)
						}
					}
				})
			}
		}
	}
}

// A pairing of BenchmarkCopy: src returns an endless source; dst returns
// the destination and what to do before each operation.
var copyPairings = []struct {
	name string
	src  func(b *testing.B) (io.Reader, func())
	dst  func(b *testing.B) (io.Writer, func())
}{
	{"child-pipe-file", childPipe, fileDst},
	{"child-pipe-devnull", childPipe, func(b *testing.B) (io.Writer, func()) { return devNull(b), func() {} }},
	{"child-pipe-pipe", childPipe, pipeDst},
	{"tcp-pipe", tcpSrc, pipeDst},
	{"unix-pipe", unixSrc, pipeDst},
	{"child-pipe-tcp", childPipe, tcpDst},
	{"child-pipe-unix", childPipe, unixDst},
	{"file-pipe", fileSrc, pipeDst},
}

// childPipe returns the read end of a pipe that a `cat /dev/zero` child
// writes into for as long as the benchmark runs.
func childPipe(b *testing.B) (io.Reader, func()) {
	r, w := newPipe(b, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	if err := pipe.SetNonblock(w, false); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "cat", "/dev/zero")
	cmd.Stdout = w
	if err := cmd.Start(); err != nil {
		b.Skipf("cat: %v", err)
	}
	w.Close()
	b.Cleanup(func() { cancel(); r.Close(); cmd.Wait() })
	return r, func() {}
}

// feedForever feeds w from a goroutine until the benchmark ends.
func feedForever(b *testing.B, w io.WriteCloser) {
	go func() {
		buf := make([]byte, 1<<20)
		for {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}()
	b.Cleanup(func() { w.Close() })
}

// drainForever reads r, 128 KiB at a time, until the benchmark ends.
func drainForever(b *testing.B, r io.ReadCloser) {
	go func() {
		buf := make([]byte, 128<<10)
		for {
			if _, err := r.Read(buf); err != nil {
				return
			}
		}
	}()
	b.Cleanup(func() { r.Close() })
}

func tcpSrc(b *testing.B) (io.Reader, func()) {
	peer, c := tcpPair(b)
	feedForever(b, peer)
	return c, func() {}
}

func unixSrc(b *testing.B) (io.Reader, func()) {
	peer, c := unixPair(b)
	feedForever(b, peer)
	return c, func() {}
}

// fileSrc returns a file as large as the largest operation, read from its
// start by each.
func fileSrc(b *testing.B) (io.Reader, func()) {
	name := filepath.Join(b.TempDir(), "src")
	if err := os.WriteFile(name, make([]byte, 64<<20), 0o600); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return f, func() { f.Seek(0, io.SeekStart) }
}

func tempFile(b *testing.B) *os.File {
	f, err := os.Create(filepath.Join(b.TempDir(), "dst"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return f
}

func fileDst(b *testing.B) (io.Writer, func()) {
	f := tempFile(b)
	return f, func() { f.Seek(0, io.SeekStart) }
}

func pipeDst(b *testing.B) (io.Writer, func()) {
	r, w := newPipe(b, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	drainForever(b, r)
	return w, func() {}
}

func tcpDst(b *testing.B) (io.Writer, func()) {
	c, peer := tcpPair(b)
	drainForever(b, peer)
	return c, func() {}
}

func unixDst(b *testing.B) (io.Writer, func()) {
	c, peer := unixPair(b)
	drainForever(b, peer)
	return c, func() {}
}
