//go:build unix

package pipe

import (
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// owned records the files this package made with os.NewFile from a
// descriptor that was non-blocking already: Pipe2's ends with O_NONBLOCK
// (the parent's ends of Cmd's pipes among them) and OpenFIFO's files.
// (*os.File).Fd leaves such a descriptor non-blocking, so exec.Cmd hands it
// to a child as it is; Fd makes blocking again only the files that os made
// non-blocking itself (os.Pipe's, os.OpenFile's of a pollable file, net's
// File), which are never registered here. checkBlocking refuses a
// registered file that is non-blocking when a command starts.
//
// An entry is keyed by descriptor number and names the file by its address
// and the pipe or FIFO by its device and inode: it keeps no file alive, and
// the next registration of the same number replaces it, so the map holds at
// most one entry per descriptor number. A stale entry (its file closed and
// collected) matches another file only at the same address, with the same
// number, on the same pipe or FIFO: a dup of a registered end wrapped by
// os.NewFile, rightly refused as it keeps O_NONBLOCK through Fd too, or a
// FIFO reopened with os.OpenFile that lands exactly where the old file was,
// wrongly refused. (A map keyed by
// weak pointers, with a cleanup per file, made a non-blocking Pipe2 about a
// quarter dearer in CPU time: each adds a special record to the file's span,
// which the runtime walks linearly. This costs one fstat(2) per pipe, about
// a tenth.)
var owned = struct {
	mu    sync.Mutex
	files map[int]ownedFile
}{files: make(map[int]ownedFile)}

// ownedFile identifies the file registered for a descriptor number.
type ownedFile struct {
	addr     uintptr // the *os.File's address: a number, which keeps nothing alive
	dev, ino uint64  // the pipe or FIFO
}

// newPipePair is newPair for a pipe made with flags: with O_NONBLOCK both
// files are registered. fstat(2) of a descriptor just made cannot fail; if
// it did, the files would go unregistered, as blocking ends are.
func newPipePair(p [2]int, flags int) (r, w *os.File) {
	r, w = newPair(p)
	if flags&O_NONBLOCK == 0 {
		return r, w
	}
	var st unix.Stat_t
	if unix.Fstat(p[0], &st) == nil { // both ends are one inode
		owned.mu.Lock()
		register(p[0], r, &st)
		register(p[1], w, &st)
		owned.mu.Unlock()
	}
	return r, w
}

// own registers f, a file this package opened with O_NONBLOCK. A closed f
// (which it cannot be) would go unregistered.
func own(f *os.File) {
	_ = control("fstat", f, func(fd int) error {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return err
		}
		owned.mu.Lock()
		register(fd, f, &st)
		owned.mu.Unlock()
		return nil
	})
}

// register records f as the file on descriptor fd, described by st. The
// caller holds owned.mu.
func register(fd int, f *os.File, st *unix.Stat_t) {
	owned.files[fd] = ownedFile{uintptr(unsafe.Pointer(f)), uint64(st.Dev), uint64(st.Ino)}
}

// keepsNonblock reports whether f, whose descriptor is fd, is a registered
// file that has O_NONBLOCK now: exec.Cmd would hand it to a child
// non-blocking. It makes no system call for a file that was never
// registered.
func keepsNonblock(fd int, f *os.File) (bool, error) {
	owned.mu.Lock()
	e, ok := owned.files[fd]
	owned.mu.Unlock()
	if !ok || e.addr != uintptr(unsafe.Pointer(f)) {
		return false, nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, err
	}
	if uint64(st.Dev) != e.dev || uint64(st.Ino) != e.ino {
		return false, nil
	}
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	return err == nil && fl&unix.O_NONBLOCK != 0, err
}
