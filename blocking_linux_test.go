package pipe_test

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pipe2go/pipe"
	"golang.org/x/sys/unix"
)

// The tests in this file give the zero-copy calls blocking descriptors that
// are not pipes, as a program gets them from inetd or a terminal: a kernel
// call on them can sleep even when poll(2) said ready, and a blocking
// socket's splice answers 0 at TCP urgent data.

// blockingSocketpair returns both ends of a Unix stream socket pair as
// blocking *os.File values, outside the runtime poller.
func blockingSocketpair(t *testing.T) (a, b *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b = os.NewFile(uintptr(fds[0]), "sock0"), os.NewFile(uintptr(fds[1]), "sock1")
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// blockingTCPFile returns the accepted end of a loopback TCP connection as
// a blocking *os.File outside the runtime poller, as inetd hands a program
// its socket, and the peer.
func blockingTCPFile(t *testing.T) (peer *net.TCPConn, f *os.File) {
	t.Helper()
	peer, c := tcpPair(t)
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	fd, ferr := -1, error(nil)
	if err := rc.Control(func(s uintptr) {
		if fd, ferr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0); ferr == nil {
			ferr = unix.SetNonblock(fd, false) // the description is shared: c is done with it
		}
	}); err != nil || ferr != nil {
		t.Fatal(err, ferr)
	}
	f = os.NewFile(uintptr(fd), "tcp") // blocking: not in the poller
	t.Cleanup(func() { f.Close() })
	return peer, f
}

// TestCloseWhileSplicingIntoBlockingSocket: splice into a blocking socket
// sleeps until the socket has taken everything, even after poll(2) said it
// had room, with the pipe locked. Splice refuses such a destination at
// once; Copy must not splice there, and Close of the pipe must not wait for
// it.
func TestCloseWhileSplicingIntoBlockingSocket(t *testing.T) {
	t.Run("Splice", func(t *testing.T) {
		sock, _ := blockingSocketpair(t)
		r := pipeSource(t, []byte("data"))
		if n, err := pipe.Splice(sock, r, 1<<20, 0); n != 0 || !errors.Is(err, syscall.EINVAL) || !strings.Contains(err.Error(), "blocking") {
			t.Errorf("Splice into a blocking socket = %d, %v; want EINVAL that says why", n, err)
		}
	})
	t.Run("Copy", func(t *testing.T) {
		sock, peer := blockingSocketpair(t)
		r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
		if _, err := pipe.SetCapacity(w, 1<<20); err != nil {
			t.Skipf("SetCapacity: %v", err)
		}
		fill(t, w) // more than the socket's buffer holds
		done := make(chan error, 1)
		go func() { done <- second(pipe.Copy(sock, r)) }()
		waitBlocked(t, "pipe.Copy(")
		drain := func() { go io.Copy(io.Discard, peer) }
		if d := closeTakes(r, time.Second, drain); d > 100*time.Millisecond {
			t.Errorf("Close of the pipe took %v while Copy wrote to a full blocking socket", d)
		}
		drain()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("Copy did not return once the socket was drained")
		}
	})
}

// TestBlockingSocketUrgentData: a blocking socket's splice answers 0 at TCP
// urgent data, which must not pass for end of file.
func TestBlockingSocketUrgentData(t *testing.T) {
	t.Run("Copy", func(t *testing.T) {
		peer, sock := blockingTCPFile(t)
		sendUrgent(t, peer)
		r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
		done := make(chan error, 1)
		go func() {
			_, err := pipe.Copy(w, sock)
			w.Close()
			done <- err
		}()
		got := make([]byte, 6)
		r.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(r, got); err != nil || string(got) != "abcdef" {
			t.Errorf("Copy delivered %q, %v; want %q", got, err, "abcdef")
		}
		peer.Close()
		if err := <-done; err != nil {
			t.Errorf("Copy at EOF: %v", err)
		}
	})
	t.Run("Splice", func(t *testing.T) {
		peer, sock := blockingTCPFile(t)
		sendUrgent(t, peer)
		_, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
		var total int64
		for range 3 {
			n, err := pipe.Splice(w, sock, 100, 0)
			total += n
			if err != nil {
				if !errors.Is(err, syscall.EAGAIN) || !strings.Contains(err.Error(), "urgent") {
					t.Errorf("Splice at urgent data: %v; want EAGAIN naming the cause", err)
				}
				return
			}
			if n == 0 {
				t.Fatalf("Splice returned 0 (end of file) after %d bytes, with the peer still open", total)
			}
		}
		t.Errorf("Splice moved %d bytes in 3 calls and never stopped at the urgent data", total)
	})
}

// TestPastDeadlineOfTheOtherSide: a deadline long past on the side a call is
// not waiting on plays no part.
func TestPastDeadlineOfTheOtherSide(t *testing.T) {
	// The source holds data before the call (with an empty one, Splice
	// would wait on the source, whose deadline is past) and the destination
	// is full, so the call can only wait on the destination.
	src, _ := loadedSource(t)
	if err := src.SetReadDeadline(time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	dw := stalled(t)
	done := make(chan error, 1)
	go func() { done <- second(pipe.Splice(dw, src, 100, 0)) }()
	waitBlocked(t, "pipe.Splice(")
	select {
	case err := <-done:
		t.Fatalf("Splice waiting on a full destination returned %v", err)
	default:
	}
	dw.Close()
	checkReturns(t, done, os.ErrClosed)
}

// TestSpliceZeroBytes: asking for nothing moves nothing, at once.
func TestSpliceZeroBytes(t *testing.T) {
	r, _ := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	_, dw := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	if n, err := pipe.Splice(dw, r, 0, 0); n != 0 || err != nil {
		t.Errorf("Splice(n=0) = %d, %v; want 0, nil", n, err)
	}
	if n, err := pipe.Tee(dw, r, 0, 0); n != 0 || err != nil {
		t.Errorf("Tee(n=0) = %d, %v; want 0, nil", n, err)
	}
}
