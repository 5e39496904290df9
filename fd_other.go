//go:build !unix

package pipe

import "os"

func setNonblock(f *os.File, nonblocking bool) error {
	return unsupported("SetNonblock")
}

func buffered(f *os.File) (int, error) {
	return 0, unsupported("Buffered (FIONREAD)")
}
