package pipe_test

import (
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
	for _, p := range pairings {
		if !p.bench {
			continue
		}
		for _, size := range []int{1 << 10, 64 << 10, 1 << 20, 64 << 20} {
			for _, method := range []string{"Copy", "io.Copy"} {
				b.Run(fmt.Sprintf("path=%s-%s/size=%s/method=%s", p.src.name, p.dst.name, sizeName(size), method), func(b *testing.B) {
					copyFn := pipe.Copy
					if method == "io.Copy" {
						copyFn = io.Copy
					}
					src, rewindSrc := p.src.open(b, nil)
					dst, _, rewindDst := p.dst.open(b, false)
					b.SetBytes(int64(size))
					b.ResetTimer()
					for range b.N {
						rewindSrc()
						rewindDst()
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
	needProgram(b, "cat")
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
						dst = tempFile(b, "dst")
					} else {
						dst = devNull(b)
					}
					b.SetBytes(int64(size))
					b.ResetTimer()
					for range b.N {
						if _, err := dst.Seek(0, io.SeekStart); err != nil {
							b.Fatal(err)
						}
						r, w, err := pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_NONBLOCK)
						if err != nil {
							b.Fatal(err)
						}
						if err := pipe.SetNonblock(w, false); err != nil { // the child's end
							b.Fatal(err)
						}
						cmd := exec.CommandContext(b.Context(), "cat", input)
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
