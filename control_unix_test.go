//go:build unix

package pipe_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/pipe2go/pipe"
	"golang.org/x/sys/unix"
)

func TestBuffered(t *testing.T) {
	full := defaultCapacity(t) // a pipe holds no more: a larger Write would wait
	for _, size := range []int{0, 1, 100, pipe.PIPE_BUF, 3*pipe.PIPE_BUF + 7, full} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			if size > 0 {
				if n, err := w.Write(bytes.Repeat([]byte{'x'}, size)); n != size || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			ends := []*os.File{r, w}
			if !linux {
				ends = ends[:1] // elsewhere FIONREAD answers for the read end
			}
			for _, f := range ends {
				if n, err := pipe.Buffered(f); n != size || err != nil {
					t.Errorf("Buffered(%s) = %d, %v; want %d", f.Name(), n, err, size)
				}
			}
			if size > 1 {
				if _, err := io.ReadFull(r, make([]byte, size/2)); err != nil {
					t.Fatal(err)
				}
				if n, err := pipe.Buffered(r); n != size-size/2 || err != nil {
					t.Errorf("Buffered after reading half = %d, %v; want %d", n, err, size-size/2)
				}
			}
		})
	}
}

// TestPipeBufAtomic has writers send records of PIPE_BUF bytes, each filled
// with the writer's tag, and checks that the reader finds every record whole.
func TestPipeBufAtomic(t *testing.T) {
	for _, flags := range []int{pipe.O_CLOEXEC, pipe.O_CLOEXEC | pipe.O_NONBLOCK} {
		t.Run(fmt.Sprintf("flags=%#x", flags), func(t *testing.T) {
			r, w := newPipe(t, flags)
			const writers, records = 4, 300
			var wg sync.WaitGroup
			// The writers report through errc, not t: if the test stops
			// early they still run until the cleanup closes the pipe.
			errc := make(chan error, writers)
			for i := 0; i < writers; i++ {
				wg.Add(1)
				go func(tag byte) {
					defer wg.Done()
					rec := bytes.Repeat([]byte{tag}, pipe.PIPE_BUF)
					for j := 0; j < records; j++ {
						if _, err := w.Write(rec); err != nil {
							errc <- err
							return
						}
					}
				}(byte('A' + i))
			}
			go func() { wg.Wait(); w.Close(); close(errc) }()
			counts := map[byte]int{}
			rec := make([]byte, pipe.PIPE_BUF)
			for {
				if _, err := io.ReadFull(r, rec); err == io.EOF {
					break
				} else if err != nil {
					t.Fatal(err)
				}
				if i := bytes.IndexFunc(rec, func(c rune) bool { return byte(c) != rec[0] }); i >= 0 {
					t.Fatalf("record interleaved: byte 0 is %q, byte %d is %q", rec[0], i, rec[i])
				}
				counts[rec[0]]++
			}
			for err := range errc {
				t.Errorf("writer: %v", err)
			}
			for i := 0; i < writers; i++ {
				if c := counts[byte('A'+i)]; c != records {
					t.Errorf("writer %c: %d records read; want %d", 'A'+i, c, records)
				}
			}
		})
	}
}

// TestPipeBufNonblockAllOrNothing fills a pipe to less than PIPE_BUF from
// full: a non-blocking write of PIPE_BUF bytes then writes nothing.
func TestPipeBufNonblockAllOrNothing(t *testing.T) {
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	// Fill the pipe until a PIPE_BUF-sized write no longer fits.
	var held int
	for {
		n, err := rawWrite(t, w, make([]byte, 100))
		if errors.Is(err, syscall.EAGAIN) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		held += n
	}
	// Make room for less than a whole record.
	if _, err := io.ReadFull(r, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	held -= 100
	n, err := rawWrite(t, w, make([]byte, pipe.PIPE_BUF))
	if n > 0 || !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("write of PIPE_BUF bytes into a nearly full pipe = %d, %v; want 0, EAGAIN", n, err)
	}
	if got, err := pipe.Buffered(r); got != held || err != nil {
		t.Errorf("Buffered = %d, %v; want %d (nothing of the refused write)", got, err, held)
	}
}

// badFiles returns files that are not pipes: a regular file, a socket, and
// /dev/null. They are closed when the test ends.
func badFiles(t *testing.T) map[string]*os.File {
	t.Helper()
	reg, err := os.Create(filepath.Join(t.TempDir(), "regular"))
	if err != nil {
		t.Fatal(err)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fds[1])
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*os.File{"regular file": reg, "socket": os.NewFile(uintptr(fds[0]), "socket"), "/dev/null": null}
	t.Cleanup(func() {
		for _, f := range files {
			f.Close()
		}
	})
	return files
}

func TestControlBadFiles(t *testing.T) {
	checkNoLeak(t, "bad files", func() {
		files := badFiles(t)
		if _, err := pipe.Buffered(files["/dev/null"]); err == nil {
			t.Error("Buffered(/dev/null) succeeded")
		}
		for _, f := range files {
			f.Close()
		}
	})

	r, w, err := pipe.Pipe2(pipe.O_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	w.Close()
	if _, err := pipe.Buffered(r); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Buffered of a closed file: %v; want os.ErrClosed", err)
	}
	if _, err := pipe.Buffered(nil); !errors.Is(err, os.ErrInvalid) {
		t.Errorf("Buffered(nil): %v; want os.ErrInvalid", err)
	}
}
