package pipe

import (
	"bytes"
	"io"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestVmspliceWriterPartlyCopiedPartlyMapped: a commit chosen to be copied writes
// part of itself with write(2), parks (pipe full), and wakes after the end
// was made blocking by a sharer: it maps the rest. The commit is then
// partly in the pipe as the buffer's own pages, so the next Buffer must be
// another buffer; v.total must count every byte once; the reader gets
// exactly what was committed.
func TestVmspliceWriterPartlyCopiedPartlyMapped(t *testing.T) {
	const size = 64 << 10
	r, w, err := Pipe2(O_CLOEXEC | O_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	v, err := NewVmspliceWriter(w, size)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if c, _ := capacity(w); c != size {
		t.Skipf("capacity %d", c)
	}
	var want []byte
	b := v.Buffer()
	fillWith(b, 'a')
	want = append(want, b...)
	if err := v.Commit(len(b)); err != nil { // mapped: the pipe is full
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r, make([]byte, 20000)); err != nil { // frees 4 slots
		t.Fatal(err)
	}
	want = want[20000:]
	v.way.copying = true // the next large commit is copied
	b = v.Buffer()
	first := &b[0]
	fillWith(b, 'b')
	want = append(want, b...)
	done := make(chan error, 1)
	go func() { done <- v.Commit(len(b)) }()
	// Wait until the copy has written what fits (16 KiB) and parked.
	for deadline := time.Now().Add(5 * time.Second); ; {
		n, err := buffered(w)
		if err != nil {
			t.Fatal(err)
		}
		if n == size-20000+16384 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("FIONREAD %d; the copy did not write 16 KiB", n)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	dup, err := unix.Dup(int(fdOfFile(t, w)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if dup >= 0 {
			unix.Close(dup)
		}
	}()
	if err := unix.SetNonblock(dup, false); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() { all, _ := io.ReadAll(r); got <- all }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the commit did not finish")
	}
	if v.total != 2*size {
		t.Errorf("v.total = %d; want %d", v.total, 2*size)
	}
	if v.way.copyNext() || v.way.bytes != 0 {
		t.Errorf("after a copy that had to map: copyNext %v, %d bytes measured; want mapping, the commit untimed", v.way.copyNext(), v.way.bytes)
	}
	nb := v.Buffer()
	if &nb[0] == first {
		t.Fatal("a commit that was partly mapped left the same buffer to be filled again: the pipe still holds its pages")
	}
	fillWith(nb, 'c')
	want = append(want, nb...)
	if err := v.Commit(len(nb)); err != nil {
		t.Fatal(err)
	}
	// A straight Write while the end stays blocking goes through the buffers.
	p := bytes.Repeat([]byte{'d'}, 2*size+123)
	want = append(want, p...)
	if n, err := v.Write(p); err != nil || n != len(p) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	unix.Close(dup)
	dup = -1
	w.Close()
	select {
	case all := <-got:
		if !bytes.Equal(all, want) {
			t.Fatalf("the reader got %d bytes that differ from the %d committed", len(all), len(want))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("reader did not finish")
	}
}

func fdOfFile(t *testing.T, f interface {
	Fd() uintptr
}) uintptr {
	t.Helper()
	// Test code only: the write end is from Pipe2 (O_NONBLOCK given to
	// pipe2, so Fd leaves it non-blocking).
	return f.Fd()
}
