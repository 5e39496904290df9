package pipe_test

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/pipe2go/pipe"
	"golang.org/x/sys/unix"
)

// TestOpenFIFOReaderHangUp checks that on Linux a reader returns when a
// writer has come and gone without writing, and then reads end of file.
func TestOpenFIFOReaderHangUp(t *testing.T) {
	path := newFIFO(t)
	c := goOpenFIFO(t, t.Context(), path, os.O_RDONLY)
	waitOpened(t, path, 1)
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	notYet(t, c, 50*time.Millisecond, "while a silent writer is connected")
	unix.Close(fd)
	r := await(t, c, 5*time.Second)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if n, err := r.f.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("Read after the writer left = %d, %v; want 0, EOF", n, err)
	}
}

// TestOpenFIFOReadWrite checks O_RDWR: it opens at once with no peer, lets
// a writer connect without waiting, and never reads end of file.
func TestOpenFIFOReadWrite(t *testing.T) {
	path := newFIFO(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	rw := openFIFO(t, ctx, path, os.O_RDWR) // no peer, yet no wait
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	w := openFIFO(t, ctx, path, os.O_WRONLY) // rw is a reader: no wait
	if _, err := w.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	w.Close()
	buf := make([]byte, 10)
	if n, err := rw.Read(buf); string(buf[:n]) != "abc" || err != nil {
		t.Fatalf("Read = %q, %v; want abc", buf[:n], err)
	}
	// Every other writer has gone, yet rw itself is one: no end of file.
	rw.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if _, err := rw.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read with only rw left: %v; want os.ErrDeadlineExceeded (no EOF)", err)
	}
	// And rw's own reading side keeps writes from failing with EPIPE.
	if _, err := rw.Write([]byte("x")); err != nil {
		t.Errorf("Write with only rw left: %v", err)
	}
}

// TestOpenFIFOPipeHelpers uses Capacity, SetCapacity, Splice and Tee on
// FIFO ends from OpenFIFO.
func TestOpenFIFOPipeHelpers(t *testing.T) {
	r, w := fifoPair(t)
	if got, err := pipe.SetCapacity(w, 1<<17); got != 1<<17 || err != nil {
		t.Errorf("SetCapacity = %d, %v; want %d", got, err, 1<<17)
	}
	if got, err := pipe.Capacity(r); got != 1<<17 || err != nil {
		t.Errorf("Capacity = %d, %v; want %d", got, err, 1<<17)
	}
	if n, err := pipe.Buffered(w); n != 0 || err != nil {
		t.Errorf("Buffered(w) = %d, %v; want 0", n, err)
	}

	// FIFO -> pipe with Splice, pipe -> pipe with Tee.
	pr, pw := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	tr, tw := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	if _, err := w.Write([]byte("spliced")); err != nil {
		t.Fatal(err)
	}
	if n, err := pipe.Splice(pw, r, 100, 0); n != 7 || err != nil {
		t.Fatalf("Splice from the FIFO = %d, %v; want 7", n, err)
	}
	if n, err := pipe.Tee(tw, pr, 100, 0); n != 7 || err != nil {
		t.Fatalf("Tee = %d, %v; want 7", n, err)
	}
	// pipe -> FIFO with Splice, read back from the FIFO.
	if n, err := pipe.Splice(w, pr, 100, 0); n != 7 || err != nil {
		t.Fatalf("Splice into the FIFO = %d, %v; want 7", n, err)
	}
	buf := make([]byte, 7)
	for _, f := range []*os.File{r, tr} {
		if _, err := io.ReadFull(f, buf); string(buf) != "spliced" || err != nil {
			t.Errorf("%s: read %q, %v; want spliced", f.Name(), buf, err)
		}
	}
}
