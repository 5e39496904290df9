package pipe_test

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/pipe2go/pipe"
)

// TestVmspliceWriterEverywhere checks what every platform gives: a writer
// on Linux, an error matching errors.ErrUnsupported elsewhere, and the same
// errors for a nil file and a bad size everywhere.
func TestVmspliceWriterEverywhere(t *testing.T) {
	if v, err := pipe.NewVmspliceWriter(nil, 4096); !errors.Is(err, os.ErrInvalid) || v != nil {
		t.Errorf("NewVmspliceWriter(nil) = %v, %v; want os.ErrInvalid", v, err)
	}
	_, w := newPipe(t, pipe.O_CLOEXEC)
	if v, err := pipe.NewVmspliceWriter(w, 0); !errors.Is(err, syscall.EINVAL) || v != nil {
		t.Errorf("NewVmspliceWriter(w, 0) = %v, %v; want EINVAL", v, err)
	}
	v, err := pipe.NewVmspliceWriter(w, 4096)
	if err != nil {
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Fatalf("NewVmspliceWriter = %v; want a writer or errors.ErrUnsupported", err)
		}
		return
	}
	if _, err := v.Write([]byte("x")); err != nil {
		t.Error(err)
	}
	if err := v.Close(); err != nil {
		t.Error(err)
	}
}
