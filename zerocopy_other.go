//go:build !linux

package pipe

import (
	"io"
	"os"
	"syscall"
)

// Flags for [Splice], [Tee] and [Vmsplice], which only Linux has. The values
// are Linux's, so that portable code compiles.
const (
	SPLICE_F_MOVE     = 0x1 // move pages instead of copying (no effect since Linux 2.6.21)
	SPLICE_F_NONBLOCK = 0x2 // return EAGAIN instead of waiting on a pipe
	SPLICE_F_MORE     = 0x4 // more data follows
	SPLICE_F_GIFT     = 0x8 // Vmsplice: the pages are given to the kernel
)

func splice(dst, src syscall.Conn, n int, flags int) (int64, error) {
	return 0, unsupported("Splice (splice(2))")
}

func tee(dst, src *os.File, n int, flags int) (int64, error) {
	return 0, unsupported("Tee (tee(2))")
}

func vmsplice(w *os.File, bufs [][]byte, flags int) (int, error) {
	return 0, unsupported("Vmsplice (vmsplice(2))")
}

// copyPipe is io.Copy where the kernel cannot splice.
func copyPipe(dst io.Writer, src io.Reader) (int64, error) {
	return io.Copy(dst, src)
}
