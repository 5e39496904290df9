//go:build !linux

package pipe

import "io"

// copyPipe is io.Copy where the kernel cannot splice.
func copyPipe(dst io.Writer, src io.Reader) (int64, error) {
	return io.Copy(dst, src)
}

// readSource is r: only Linux reads descriptors itself.
func readSource(r io.Reader) (io.Reader, func()) { return r, func() {} }
