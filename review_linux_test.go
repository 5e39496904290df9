package pipe_test

import (
	"bytes"
	"errors"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/pipe2go/pipe"
	"golang.org/x/sys/unix"
)

// TestVmspliceDoesNotKeepFileAlive: a file that Vmsplice has been given
// must still be collectable once the caller drops it (its cache is keyed
// by a weak pointer, so the entry must not hold the file strongly).
func TestVmspliceDoesNotKeepFileAlive(t *testing.T) {
	collected := make(chan struct{})
	func() {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if _, err := pipe.Vmsplice(w, [][]byte{[]byte("x")}, 0); err != nil {
			t.Fatal(err)
		}
		w.Close()
		runtime.AddCleanup(w, func(ch chan struct{}) { close(ch) }, collected)
	}()
	for range 20 {
		runtime.GC()
		select {
		case <-collected:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("the *os.File given to Vmsplice was never collected: something keeps it alive")
}

// TestVmspliceRefusesReadEndAfterDup2: the descriptor of an *os.File can
// come to name another open file (dup2 onto it, as programs do to redirect
// stdout). Vmsplice promises to refuse a read end; before the cache it
// checked F_GETFL at each call.
func TestVmspliceRefusesReadEndAfterDup2(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if _, err := pipe.Vmsplice(w, [][]byte{[]byte("x")}, 0); err != nil {
		t.Fatal(err)
	}
	r2, w2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	defer w2.Close()
	if _, err := w2.Write([]byte("EVIL")); err != nil {
		t.Fatal(err)
	}
	fdOf := func(f *os.File) (fd int) {
		rc, err := f.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		rc.Control(func(u uintptr) { fd = int(u) })
		return fd
	}
	if err := unix.Dup3(fdOf(r2), fdOf(w), unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	buf := []byte("good")
	n, err := pipe.Vmsplice(w, [][]byte{buf}, pipe.SPLICE_F_NONBLOCK)
	if !errors.Is(err, syscall.EBADF) {
		t.Errorf("Vmsplice on a file now naming a read end = %d, %v; want EBADF", n, err)
	}
	if !bytes.Equal(buf, []byte("good")) {
		t.Errorf("Vmsplice wrote into the caller's buffer: %q", buf)
	}
}

// TestVmspliceWriterReaderEvery300usDoesNotSpin: as
// TestVmspliceWriterSlowReaderDoesNotSpin, with a reader that takes a page
// every 300 µs (a precise nanosleep that uses no CPU, where time.Sleep
// lasts about a millisecond): a park then lasts less than spinShortPark,
// so the budget never halves and each page costs a spin of spinMax.
func TestVmspliceWriterReaderEvery300usDoesNotSpin(t *testing.T) {
	for _, size := range waitSizes {
		t.Run(sizeName(size), func(t *testing.T) {
			ts := unix.NsecToTimespec(int64(300 * time.Microsecond))
			pause := func() { _ = unix.Nanosleep(&ts, nil) }
			noMoreCPUThanWrite(t, "a reader that reads every 300 µs", 3,
				func() time.Duration { return slowReaderCPU(t, "Write", size, pause) },
				func() time.Duration { return slowReaderCPU(t, "Commit", size, pause) })
		})
	}
}

// TestVmspliceDoesNotStallGCWhileAnotherHoldsThePipeLock: a process (here a
// thread in a plain syscall) splicing the pipe into a full blocking socket
// holds the pipe's lock; a raw vmsplice then waits for the lock holding its
// P, and a stop-the-world (ReadMemStats, any GC) waits with it.
func TestVmspliceDoesNotStallGCWhileAnotherHoldsThePipeLock(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sp[0])
	defer unix.Close(sp[1])
	const hold = 300 * time.Millisecond
	tv := unix.NsecToTimeval(int64(hold))
	if err := unix.SetsockoptTimeval(sp[0], unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	_ = unix.SetsockoptInt(sp[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 4096)
	unix.SetNonblock(sp[0], true)
	for {
		if _, err := unix.Write(sp[0], make([]byte, 4096)); err != nil {
			break
		}
	}
	unix.SetNonblock(sp[0], false)
	if _, err := w.Write(make([]byte, 60000)); err != nil {
		t.Fatal(err)
	}
	rc, _ := r.SyscallConn()
	var rfd int
	rc.Control(func(fd uintptr) { rfd, _ = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) })
	defer unix.Close(rfd)
	spliced := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		unix.Splice(rfd, nil, sp[0], nil, 60000, 0) // blocks in the socket, holding the pipe's lock
		spliced <- time.Since(start)
	}()
	time.Sleep(50 * time.Millisecond)
	vmspliced := make(chan struct{})
	go func() {
		defer close(vmspliced)
		pipe.Vmsplice(w, [][]byte{[]byte("x")}, pipe.SPLICE_F_NONBLOCK)
	}()
	defer func() { <-vmspliced }()
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	stw := time.Since(start)
	t.Logf("blocking splice held the lock %v; a stop-the-world took %v", <-spliced, stw)
	if stw > hold/3 {
		t.Errorf("a stop-the-world waited %v for a vmsplice blocked on the pipe's lock", stw)
	}
}
