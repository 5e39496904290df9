package pipe_test

// Which error OpenFIFO reports when its context ends just after the call
// began, and ReadFrom misuse.

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pipe2go/pipe"
)

// cancelAfterEntry is a context that is cancelled by its first Err call:
// OpenFIFO's entry check sees it live, everything after sees it done. That
// is one interleaving of a cancel racing the call, made deterministic.
type cancelAfterEntry struct {
	context.Context
	once   sync.Once
	cancel context.CancelFunc
}

func newCancelAfterEntry() *cancelAfterEntry {
	ctx, cancel := context.WithCancel(context.Background())
	return &cancelAfterEntry{Context: ctx, cancel: cancel}
}

func (c *cancelAfterEntry) Err() error {
	first := false
	c.once.Do(func() { first = true })
	if first {
		defer c.cancel()
		return nil
	}
	return c.Context.Err()
}

// TestOpenFIFOContextFirstIsConsistent: the doc says "When ctx is
// done first, OpenFIFO returns at once with an error matching ctx.Err()".
// With ctx done before the call reaches the path, every failure about the
// path gives ctx's error: a path that vanished, one that is not a FIFO, and
// O_CREATE|O_EXCL on an existing path alike.
func TestOpenFIFOContextFirstIsConsistent(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := pipe.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		path string
		flag int
	}{
		{"vanished", filepath.Join(dir, "missing"), os.O_WRONLY},
		{"not a FIFO", regular, os.O_WRONLY},
		{"O_EXCL on an existing FIFO", fifo, os.O_WRONLY | os.O_CREATE | os.O_EXCL},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := pipe.OpenFIFO(newCancelAfterEntry(), c.path, c.flag)
			if f != nil {
				f.Close()
				t.Fatal("OpenFIFO returned a file")
			}
			if !errors.Is(err, context.Canceled) {
				t.Errorf("OpenFIFO(%s, %#x) with ctx cancelled before the path was looked at: %v; want context.Canceled, as for a vanished path", c.path, c.flag, err)
			}
		})
	}
}

// TestVmspliceWriterReadFromNil: ReadFrom(nil) is misuse; it should give an error
// matching os.ErrInvalid, not panic.
func TestVmspliceWriterReadFromNil(t *testing.T) {
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	_ = r
	v, err := pipe.NewVmspliceWriter(w, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	var got error
	func() {
		defer func() {
			if p := recover(); p != nil {
				got = errors.New("panic")
				t.Errorf("ReadFrom(nil) panicked: %v", p)
			}
		}()
		_, got = v.ReadFrom(nil)
	}()
	if !errors.Is(got, os.ErrInvalid) {
		t.Errorf("ReadFrom(nil) = %v; want an error matching os.ErrInvalid", got)
	}
}

// TestOpenFIFOPreCancelledExcl: with ctx already done, O_CREATE|O_EXCL
// on an existing path gives ctx's error (the doc: "When ctx is done first"),
// and touches nothing. This holds.
func TestOpenFIFOPreCancelledExcl(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	if err := pipe.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f, err := pipe.OpenFIFO(ctx, path, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if f != nil || !errors.Is(err, context.Canceled) || errors.Is(err, os.ErrExist) {
		t.Errorf("OpenFIFO(cancelled, existing, O_CREATE|O_EXCL) = %v, %v; want context.Canceled only", f, err)
	}
}
