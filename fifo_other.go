//go:build !unix

package pipe

import (
	"context"
	"os"
)

// This platform (Windows, Plan 9, js/wasm, wasip1) has no FIFOs that
// open(2) could wait on.

func mkfifo(path string, mode os.FileMode) error {
	return unsupported("Mkfifo")
}

func openFIFO(ctx context.Context, path string, flag int) (*os.File, error) {
	return nil, unsupported("OpenFIFO")
}
