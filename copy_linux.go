package pipe

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// This file decides whether Copy splices; splice_linux.go moves the bytes.

// copyChunk is how much Copy asks splice(2) to move at once: the default
// pipe-max-size, as internal/poll uses. A call moves at most what the pipe
// holds or has room for anyway; the size only bounds the request.
const copyChunk = 1 << 20

func copyPipe(dst io.Writer, src io.Reader) (int64, error) {
	written, handled, err := spliceCopy(dst, src)
	if handled {
		return written, err
	}
	return io.Copy(dst, src)
}

// spliceCopy copies src to dst with splice(2) where it can. When handled is
// false nothing was moved and io.Copy is to do the whole job: a side that is
// no descriptor, a pair splice(2) refuses (EINVAL: neither side a pipe, an
// O_APPEND destination, a file system without splice), a nil or closed side
// (io.Copy reports it as Read or Write would).
func spliceCopy(dst io.Writer, src io.Reader) (written int64, handled bool, err error) {
	lr, limited := src.(*io.LimitedReader)
	inner := src
	if limited {
		if lr.N <= 0 {
			return 0, true, nil
		}
		inner = lr.R
	}
	sc, ok := inner.(syscall.Conn)
	if !ok {
		return 0, false, nil
	}
	dc, ok := dst.(syscall.Conn)
	if !ok {
		return 0, false, nil
	}
	d, s, err := openBoth("splice", dc, sc)
	if err != nil || d.flags&unix.O_APPEND != 0 {
		return 0, false, nil
	}
	for {
		chunk := copyChunk
		if limited && lr.N < int64(chunk) {
			chunk = int(lr.N)
		}
		n, err := transfer("splice", d, s, 0, func(dfd, sfd int) (int, error) {
			// No SPLICE_F_MORE: on a socket it would hold back the last bytes.
			m, err := unix.Splice(sfd, nil, dfd, nil, chunk, SPLICE_F_NONBLOCK)
			return int(m), err
		})
		written += n
		if limited {
			lr.N -= n
		}
		switch {
		case err == errRefused:
			// The kernel will not splice this pair any further (TCP urgent
			// data, say): read(2) and write(2) can, and read(2) is what
			// io.Copy would have seen.
			m, err := readWrite(dst, src)
			return written + m, true, err
		case written == 0 && errors.Is(err, unix.EINVAL):
			if samePipe(d, s) {
				return 0, true, fmt.Errorf("pipe: Copy from %s to %s: the source and destination are the same pipe: %w",
					nameOf(s.c), nameOf(d.c), os.NewSyscallError("splice", unix.EINVAL))
			}
			return 0, false, nil
		case err != nil || n == 0 || limited && lr.N <= 0:
			return written, true, err
		}
	}
}

// readWrite copies src to dst with their Read and Write methods only, so
// that no ReaderFrom or WriterTo splices again.
func readWrite(dst io.Writer, src io.Reader) (int64, error) {
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, make([]byte, 64<<10))
}

// samePipe reports whether d and s are descriptors of one pipe, which
// splice(2) refuses with EINVAL and io.Copy would copy into itself for ever.
func samePipe(d, s *fdConn) bool {
	var ds, ss unix.Stat_t
	_, errno, err := both("fstat", d, s, func(dfd, sfd int) (int, error) {
		if err := unix.Fstat(dfd, &ds); err != nil {
			return 0, err
		}
		return 0, unix.Fstat(sfd, &ss)
	})
	return err == nil && errno == nil && ds.Mode&unix.S_IFMT == unix.S_IFIFO && ds.Dev == ss.Dev && ds.Ino == ss.Ino
}
