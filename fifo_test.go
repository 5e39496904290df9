package pipe_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"github.com/pipe2go/pipe"
)

// hasFIFOs reports whether the platform has named pipes for OpenFIFO.
func hasFIFOs() bool {
	switch runtime.GOOS {
	case "windows", "plan9", "js", "wasip1":
		return false
	}
	return true
}

func TestMkfifoBadMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	for _, mode := range []os.FileMode{os.ModeDir | 0o600, os.ModeSetuid | 0o600, os.ModeSticky | 0o600, os.ModeSymlink} {
		err := pipe.Mkfifo(path, mode)
		var pe *os.PathError
		if !errors.Is(err, syscall.EINVAL) || !errors.As(err, &pe) || pe.Op != "mkfifo" {
			t.Errorf("Mkfifo(%v): %v; want a *PathError for mkfifo matching EINVAL", mode, err)
		}
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused Mkfifo left something at %s: %v", path, err)
	}
}

func TestOpenFIFOBadFlag(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	for _, flag := range []int{-1, os.O_EXCL, os.O_WRONLY | os.O_APPEND, os.O_RDWR | os.O_EXCL, os.O_RDONLY | os.O_CREATE | os.O_TRUNC} {
		if f, err := pipe.OpenFIFO(context.Background(), path, flag); !errors.Is(err, syscall.EINVAL) || f != nil {
			t.Errorf("OpenFIFO with flag %#x: %v, %v; want EINVAL", flag, f, err)
		}
	}
}

func TestFIFOUnsupported(t *testing.T) {
	if hasFIFOs() {
		t.Skipf("%s has FIFOs", runtime.GOOS)
	}
	path := filepath.Join(t.TempDir(), "fifo")
	if err := pipe.Mkfifo(path, 0o600); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Mkfifo: %v; want errors.ErrUnsupported", err)
	}
	for _, flag := range []int{os.O_RDONLY, os.O_WRONLY, os.O_RDWR} {
		if f, err := pipe.OpenFIFO(context.Background(), path, flag); !errors.Is(err, errors.ErrUnsupported) || f != nil {
			t.Errorf("OpenFIFO(%#x): %v, %v; want errors.ErrUnsupported", flag, f, err)
		}
	}
}
