//go:build !linux

package pipe

import (
	"os"
	"syscall"
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
