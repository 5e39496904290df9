package pipe_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/pipe2go/pipe"
	"golang.org/x/sys/unix"
)

// TestVmspliceWriterReadFromOwnPipeVariants: every descriptor of the writer's own
// pipe is refused at once with EINVAL; other sources (a closed file, a nil
// *os.File in the interface, a socket, another pipe) are not refused by the
// check, and end with their own error or data, promptly, without panic.
func TestVmspliceWriterReadFromOwnPipeVariants(t *testing.T) {
	own := func(t *testing.T, name string, v *pipe.VmspliceWriter, src io.Reader) {
		t.Helper()
		done := make(chan error, 1)
		go func() { _, err := v.ReadFrom(src); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, syscall.EINVAL) {
				t.Errorf("%s: ReadFrom = %v; want EINVAL", name, err)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("%s: ReadFrom did not return", name)
		}
	}
	t.Run("pipe", func(t *testing.T) {
		r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
		v, err := pipe.NewVmspliceWriter(w, 4096)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		own(t, "the write end itself", v, w)
		fd, err := unix.Dup(fdOf(t, r))
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.SetNonblock(fd, true); err != nil {
			t.Fatal(err)
		}
		d := os.NewFile(uintptr(fd), "dup of r")
		defer d.Close()
		own(t, "a dup of the read end", v, d)
		p, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", fdOf(t, r)), os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		own(t, "the read end reopened through /proc", v, p)
		own(t, "the read end wrapped in a struct", v, struct{ *os.File }{r})
		// Not the own pipe.
		r2, w2 := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
		mustWrite(t, w2, []byte("hello"))
		w2.Close()
		go io.Copy(io.Discard, r)
		if n, err := v.ReadFrom(r2); err != nil || n != 5 {
			t.Errorf("ReadFrom(another pipe) = %d, %v", n, err)
		}
		c, _ := os.Open(os.DevNull)
		c.Close()
		if _, err := v.ReadFrom(c); !errors.Is(err, os.ErrClosed) {
			t.Errorf("ReadFrom(closed file) = %v; want os.ErrClosed", err)
		}
		var nilFile *os.File
		if _, err := v.ReadFrom(nilFile); !errors.Is(err, os.ErrInvalid) {
			t.Errorf("ReadFrom(nil *os.File) = %v; want os.ErrInvalid", err)
		}
		a, b := net.Pipe() // not a syscall.Conn
		go func() { a.Write([]byte("xy")); a.Close() }()
		if n, err := v.ReadFrom(b); err != nil || n != 2 {
			t.Errorf("ReadFrom(net.Pipe) = %d, %v", n, err)
		}
		ua, ub := unixPair(t)
		go func() { ua.Write([]byte("xyz")); ua.Close() }()
		if n, err := v.ReadFrom(ub); err != nil || n != 3 {
			t.Errorf("ReadFrom(unix socket) = %d, %v", n, err)
		}
		if err := v.Flush(); err != nil {
			t.Errorf("Flush after those: %v", err)
		}
	})
	t.Run("fifo", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "f")
		if err := unix.Mkfifo(path, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		w, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		v, err := pipe.NewVmspliceWriter(w, 4096)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		r2, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer r2.Close()
		own(t, "the FIFO's read side opened separately", v, r2)
		rw, err := os.OpenFile(path, os.O_RDWR|syscall.O_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer rw.Close()
		own(t, "the FIFO opened O_RDWR", v, rw)
	})
}
