package main

import (
	"errors"
	"io"
	"os"
	"syscall"
	"testing"

	"github.com/pipe2go/pipe"
)

// connReader is a file seen only through Read and its descriptor: pipe.Copy
// can still splice from it, and io.Copy, having no WriteTo, goes to the
// destination's ReadFrom.
type connReader struct{ f *os.File }

func (r connReader) Read(b []byte) (int, error)            { return r.f.Read(b) }
func (r connReader) SyscallConn() (syscall.RawConn, error) { return r.f.SyscallConn() }

// ioCopySpy is a file seen through Write, its descriptor and a ReadFrom that
// records its use. io.Copy calls ReadFrom; pipe.Copy never does: it splices,
// or reads and writes through Write alone.
type ioCopySpy struct {
	f        *os.File
	readFrom bool
}

func (w *ioCopySpy) Write(b []byte) (int, error)           { return w.f.Write(b) }
func (w *ioCopySpy) SyscallConn() (syscall.RawConn, error) { return w.f.SyscallConn() }
func (w *ioCopySpy) ReadFrom(r io.Reader) (int64, error) {
	w.readFrom = true
	return io.Copy(struct{ io.Writer }{w.f}, r)
}

// TestSamePathIsCopys checks pipebench's "same path" claim (copyDefers)
// against what pipe.Copy does, for every pairing of the ends the rows use,
// with and without an *io.LimitedReader as large as the rows' (fileSpan):
// io.Copy's ReadFrom is called exactly where copyDefers says Copy hands the
// job to io.Copy. If the library changes its routes, this fails.
func TestSamePathIsCopys(t *testing.T) {
	const total = 256 << 10 // well above the small copies Copy reads and writes itself
	for _, p := range []copyPath{
		{endPipe, endNull}, {endPipe, endFile}, {endPipe, endPipe},
		{endFile, endPipe}, {endFile, endFile}, {endFile, endNull},
	} {
		for _, limited := range []bool{false, true} {
			src, dst, check := ends(t, p, total)
			var from io.Reader = connReader{src}
			if limited {
				from = io.LimitReader(from, fileSpan)
			}
			spy := &ioCopySpy{f: dst}
			n, err := pipe.Copy(spy, from)
			if err != nil || n != total {
				t.Fatalf("%v: Copy = %d, %v; want %d", p, n, err, total)
			}
			check()
			if spy.readFrom != copyDefers(p) {
				t.Errorf("%v (limited %v): Copy went to io.Copy: %v; copyDefers says %v", p, limited, spy.readFrom, copyDefers(p))
			}
		}
	}
}

// ends makes a source holding total bytes and a destination of p's kinds.
// check, called after the copy, checks that the destination got them all.
func ends(t *testing.T, p copyPath, total int) (src, dst *os.File, check func()) {
	t.Helper()
	data := written(total)
	switch p.from {
	case endPipe:
		r, w := testPipe(t)
		go func() {
			_, _ = w.Write(data) // a short write shows as a short copy
			_ = w.Close()
		}()
		src = r
	case endFile:
		src = tempFile(t)
		if _, err := src.Write(data); err != nil {
			t.Fatal(err)
		}
		if _, err := src.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
	}
	check = func() {}
	switch p.to {
	case endPipe:
		r, w := testPipe(t)
		got := make(chan int64, 1)
		go func() {
			n, _ := io.Copy(io.Discard, r)
			got <- n
		}()
		dst = w
		check = func() {
			_ = w.Close()
			if n := <-got; n != int64(total) {
				t.Errorf("%v: the pipe got %d bytes; want %d", p, n, total)
			}
		}
	case endFile:
		dst = tempFile(t)
		check = func() {
			if fi, err := dst.Stat(); err != nil || fi.Size() != int64(total) {
				t.Errorf("%v: the file holds %v bytes (%v); want %d", p, fi.Size(), err, total)
			}
		}
	case endNull:
		f, err := openNull()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		dst = f
	}
	return src, dst, check
}

func testPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := newPipe()
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

func tempFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "samepath-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
