package pipe_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/pipe2go/pipe"
	"golang.org/x/sys/unix"
)

// TestVmspliceWriterRefusesNotPipes: ends that are not a pipe's write end are refused at
// once with EBADF.
func TestVmspliceWriterRefusesNotPipes(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	sock := os.NewFile(uintptr(fds[0]), "sock")
	defer sock.Close()
	defer unix.Close(fds[1])
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	ev := os.NewFile(uintptr(efd), "eventfd")
	defer ev.Close()
	for _, f := range []*os.File{sock, null, ev, os.Stdin} {
		v, err := pipe.NewVmspliceWriter(f, 4096)
		if v != nil || !errors.Is(err, syscall.EBADF) {
			st := "?"
			var s unix.Stat_t
			if unix.Fstat(fdOf(t, f), &s) == nil {
				st = fmt.Sprintf("%o", s.Mode&unix.S_IFMT)
			}
			if f == os.Stdin && s.Mode&unix.S_IFMT == unix.S_IFIFO {
				continue // stdin may be a pipe's read end: EBADF too, checked below
			}
			t.Errorf("%s (mode %s): NewVmspliceWriter = %v, %v; want nil, EBADF", f.Name(), st, v, err)
		}
	}
}

// TestVmspliceWriterFIFOCopies writes through a FIFO opened for writing (which refuses
// pwritev2 RWF_NOWAIT from the start), with small, large and straight
// writes, reading odd sizes; then fills it and checks that Close and a
// deadline end a copied commit's wait.
func TestVmspliceWriterFIFOCopies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, how := range []string{"OpenFIFO", "os.OpenFile"} {
		t.Run(how, func(t *testing.T) {
			r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var w *os.File
			if how == "OpenFIFO" {
				w, err = pipe.OpenFIFO(context.Background(), path, os.O_WRONLY)
			} else {
				w, err = os.OpenFile(path, os.O_WRONLY, 0)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			v, err := pipe.NewVmspliceWriter(w, 64<<10)
			if err != nil {
				t.Fatal(err)
			}
			got := make(chan []byte, 1)
			go func() { b, _ := readAllIn(r, 777); got <- b }()
			var want []byte
			for i, n := range []int{100, 8 << 10, 64 << 10, 20 << 10, 4096} {
				b := v.Buffer()[:n]
				for j := range b {
					b[j] = byte(i + j*7)
				}
				want = append(want, b...)
				if err := v.Commit(n); err != nil {
					t.Fatal(err)
				}
			}
			big := make([]byte, 300<<10)
			for j := range big {
				big[j] = byte(j * 13)
			}
			want = append(want, big...)
			if _, err := v.Write(big); err != nil {
				t.Fatal(err)
			}
			if err := v.Close(); err != nil {
				t.Fatal(err)
			}
			w.Close()
			if all := <-got; !bytes.Equal(all, want) {
				t.Errorf("got %d bytes, want %d (%d in order)", len(all), len(want), commonPrefix(all, want))
			}
		})
	}
	for _, end := range []string{"Close", "deadline"} {
		t.Run("wait/"+end, func(t *testing.T) {
			r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			w, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			v, err := pipe.NewVmspliceWriter(w, 64<<10)
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			fill(t, w)
			done := make(chan error, 1)
			go func() { done <- v.Commit(8 << 10) }()
			waitBlocked(t, "VmspliceWriter).Commit(")
			want := os.ErrDeadlineExceeded
			if end == "Close" {
				want = os.ErrClosed
				w.Close()
			} else {
				w.SetWriteDeadline(time.Now())
			}
			checkReturns(t, done, want)
			go io.Copy(io.Discard, r)
		})
	}
}
