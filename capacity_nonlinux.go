//go:build !linux

package pipe

import "os"

// Only Linux can query or resize a pipe's buffer.

func capacity(f *os.File) (int, error) {
	return 0, unsupported("Capacity (F_GETPIPE_SZ)")
}

func setCapacity(f *os.File, n int) (int, error) {
	return 0, unsupported("SetCapacity (F_SETPIPE_SZ)")
}

func maxCapacity() (int, error) {
	return 0, unsupported("MaxCapacity (pipe-max-size)")
}
