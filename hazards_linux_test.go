package pipe_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pipe2go/pipe"
	"golang.org/x/sys/unix"
)

// The tests in this file each reproduce a way the zero-copy calls once went
// wrong: a Close that hung, a loop that spun, a misuse that moved data, a
// documented pattern that corrupted it.

// unixPair returns both ends of a Unix stream connection.
func unixPair(t testing.TB) (a, b *net.UnixConn) {
	t.Helper()
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	c, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.FailNow()
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.UnixConn), s.(*net.UnixConn)
}

// closeTakes closes c and returns how long Close took, giving up after
// limit (and then calling unblock, to let Close finish, before waiting for
// it).
func closeTakes(t *testing.T, c io.Closer, limit time.Duration, unblock func()) time.Duration {
	t.Helper()
	start := time.Now()
	done := make(chan struct{})
	go func() { c.Close(); close(done) }()
	select {
	case <-done:
		return time.Since(start)
	case <-time.After(limit):
		unblock()
		<-done
		return time.Since(start)
	}
}

// TestCloseDoesNotWaitForTheOtherSide closes a socket while a transfer
// between it and a blocking pipe waits on the pipe. Close must not wait for
// the pipe: the transfer may hold no reference to the socket while it
// sleeps.
func TestCloseDoesNotWaitForTheOtherSide(t *testing.T) {
	const limit = time.Second // a hang lasts until the pipe moves; prompt is well under 100 ms
	type conn interface {
		syscall.Conn
		io.ReadWriteCloser
	}
	pairs := map[string]func(t *testing.T) (conn, conn){
		"tcp":  func(t *testing.T) (conn, conn) { a, b := tcpPair(t); return a, b },
		"unix": func(t *testing.T) (conn, conn) { a, b := unixPair(t); return a, b },
	}
	for name, pair := range pairs {
		t.Run("Copy/"+name+"-to-full-blocking-pipe", func(t *testing.T) {
			peer, sock := pair(t)
			r, w := newPipe(t, pipe.O_CLOEXEC)
			fill(t, w)
			go peer.Write(make([]byte, 1<<20))
			done := make(chan error, 1)
			go func() { done <- second(pipe.Copy(w, sock)) }()
			waitBlocked(t, "pipe.Copy(")
			drain := func() { go io.Copy(io.Discard, r) }
			if d := closeTakes(t, sock, limit, drain); d > limit/10 {
				t.Errorf("Close of the socket took %v while Copy waited on a full blocking pipe", d)
			}
			drain()
			if err := <-done; err == nil {
				t.Error("Copy from a closed socket returned no error")
			}
		})
		t.Run("Splice/empty-blocking-pipe-to-"+name, func(t *testing.T) {
			sock, _ := pair(t)
			r, w := newPipe(t, pipe.O_CLOEXEC)
			done := make(chan error, 1)
			go func() { done <- second(pipe.Splice(sock, r, 100, 0)) }()
			waitBlocked(t, "pipe.Splice(")
			feed := func() { w.Write([]byte("x")) }
			if d := closeTakes(t, sock, limit, feed); d > limit/10 {
				t.Errorf("Close of the socket took %v while Splice waited on an empty blocking pipe", d)
			}
			feed()
			if err := <-done; !errors.Is(err, net.ErrClosed) {
				t.Errorf("Splice into a closed socket: %v; want net.ErrClosed", err)
			}
		})
	}
}

// sendUrgent makes c's peer see "abc", urgent data "X", then "def".
func sendUrgent(t *testing.T, c *net.TCPConn) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), []byte("X"), unix.MSG_OOB, nil)
		return serr != unix.EAGAIN
	}); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	if _, err := c.Write([]byte("def")); err != nil {
		t.Fatal(err)
	}
}

// TestUrgentDataDoesNotSpin sends TCP urgent data, where tcp_splice_read
// answers EAGAIN for ever while poll(2) reports the socket readable. Copy
// must deliver what read(2) delivers (the urgent byte is out of band) and
// then wait idle; Splice must say why it cannot go on, not spin.
func TestUrgentDataDoesNotSpin(t *testing.T) {
	t.Run("Copy", func(t *testing.T) {
		peer, sock := tcpPair(t)
		sendUrgent(t, peer)
		r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
		done := make(chan error, 1)
		go func() { done <- second(pipe.Copy(w, sock)) }()
		got := make([]byte, 6)
		r.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(r, got); err != nil || string(got) != "abcdef" {
			t.Fatalf("Copy delivered %q, %v; want %q", got, err, "abcdef")
		}
		waitBlocked(t, "pipe.Copy(")
		before := cpuTime(t)
		time.Sleep(300 * time.Millisecond)
		if used := cpuTime(t) - before; used > 100*time.Millisecond {
			t.Errorf("the process used %v of CPU in 300ms while Copy waited for more data", used)
		}
		peer.Close()
		if err := <-done; err != nil {
			t.Errorf("Copy at EOF: %v", err)
		}
	})
	t.Run("Splice", func(t *testing.T) {
		peer, sock := tcpPair(t)
		sendUrgent(t, peer)
		_, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
		done := make(chan error, 1)
		go func() {
			for {
				if _, err := pipe.Splice(w, sock, 100, 0); err != nil {
					done <- err
					return
				}
			}
		}()
		select {
		case err := <-done:
			if !errors.Is(err, syscall.EAGAIN) || !strings.Contains(err.Error(), "urgent") {
				t.Errorf("Splice at TCP urgent data: %v; want EAGAIN that names the cause", err)
			}
		case <-time.After(5 * time.Second):
			sock.Close() // stop the spinning call
			t.Errorf("Splice at TCP urgent data neither returned nor parked for 5s")
		}
	})
}

// TestVmspliceRefusesReadEnd: vmsplice(2) on a read end reads the pipe into
// the buffers instead.
func TestVmspliceRefusesReadEnd(t *testing.T) {
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	w.Write([]byte("hello!"))
	buf := []byte("secret")
	if n, err := pipe.Vmsplice(r, [][]byte{buf}, 0); n != 0 || !errors.Is(err, syscall.EBADF) {
		t.Errorf("Vmsplice on a read end = %d, %v; want EBADF", n, err)
	}
	if string(buf) != "secret" {
		t.Errorf("Vmsplice on a read end changed the buffer to %q", buf)
	}
	if n, err := pipe.Buffered(r); n != 6 || err != nil {
		t.Errorf("after Vmsplice on the read end the pipe holds %d bytes, %v; want the 6 written", n, err)
	}
	// With the writer gone vmsplice(2) on the read end returns 0: no loop.
	w.Close()
	done := make(chan error, 1)
	go func() { done <- second(pipe.Vmsplice(r, [][]byte{buf}, 0)) }()
	select {
	case err := <-done:
		if !errors.Is(err, syscall.EBADF) {
			t.Errorf("Vmsplice on a read end with no writer: %v; want EBADF", err)
		}
	case <-time.After(5 * time.Second):
		r.Close()
		t.Error("Vmsplice on a read end with no writer did not return in 5s")
	}
}

// TestCopyPipeIntoItself: splice(2) refuses one pipe on both sides, and
// io.Copy would copy the pipe into itself for ever.
func TestCopyPipeIntoItself(t *testing.T) {
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	w.Write([]byte("data"))
	done := make(chan error, 1)
	go func() { done <- second(pipe.Copy(w, r)) }()
	select {
	case err := <-done:
		if !errors.Is(err, syscall.EINVAL) {
			t.Errorf("Copy of a pipe into itself: %v; want EINVAL", err)
		}
	case <-time.After(5 * time.Second):
		w.Close()
		t.Fatal("Copy of a pipe into itself did not return in 5s")
	}
	if n, err := pipe.Buffered(r); n != 4 || err != nil {
		t.Errorf("the pipe holds %d bytes, %v; want the 4 written, untouched", n, err)
	}
}

// TestSetCapacityErrorsReturnZero: fcntl(2) answers -1 with its errors.
func TestSetCapacityErrorsReturnZero(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "notapipe")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _ := newPipe(t, pipe.O_CLOEXEC)
	for name, call := range map[string]func() (int, error){
		"SetCapacity(file)":     func() (int, error) { return pipe.SetCapacity(f, 4096) },
		"SetCapacity(-1)":       func() (int, error) { return pipe.SetCapacity(r, -1) },
		"SetCapacity(MaxInt)":   func() (int, error) { return pipe.SetCapacity(r, math.MaxInt) },
		"SetCapacity(nil)":      func() (int, error) { return pipe.SetCapacity(nil, 4096) },
		"Capacity(file)":        func() (int, error) { return pipe.Capacity(f) },
		"SetCapacity(too much)": func() (int, error) { return pipe.SetCapacity(r, math.MaxInt32) },
	} {
		n, err := call()
		if err == nil {
			continue // CAP_SYS_RESOURCE may allow "too much"
		}
		if n != 0 {
			t.Errorf("%s = %d, %v; want 0 with the error", name, n, err)
		}
	}
}

// TestWaitContract checks the documented rule of what wakes a waiting
// transfer: the deadline or Close of the side it waits on (the source while
// it is empty, the destination while it is full) wakes it; to cancel it
// whatever it waits on, close or set the deadline of both sides.
func TestWaitContract(t *testing.T) {
	type state struct {
		call         func() error
		waitedOn     *os.File
		notWaitedOn  *os.File
		deadlineFunc func(*os.File, time.Time) error
	}
	states := map[string]func(t *testing.T) state{
		"empty-source": func(t *testing.T) state {
			r, _ := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			_, dw := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			return state{func() error { return second(pipe.Splice(dw, r, 100, 0)) }, r, dw, (*os.File).SetReadDeadline}
		},
		"full-destination": func(t *testing.T) state {
			src := pipeSource(t, testData(t, 1<<20)).(*os.File)
			dw := stalled(t)
			return state{func() error { return second(pipe.Splice(dw, src, 100, 0)) }, dw, src, (*os.File).SetWriteDeadline}
		},
	}
	for name, setup := range states {
		t.Run(name+"/deadline-of-waited-side", func(t *testing.T) {
			s := setup(t)
			done := make(chan error, 1)
			go func() { done <- s.call() }()
			waitBlocked(t, "pipe.Splice(")
			s.deadlineFunc(s.waitedOn, time.Now())
			checkReturns(t, done, os.ErrDeadlineExceeded)
		})
		t.Run(name+"/close-of-waited-side", func(t *testing.T) {
			s := setup(t)
			done := make(chan error, 1)
			go func() { done <- s.call() }()
			waitBlocked(t, "pipe.Splice(")
			s.waitedOn.Close()
			checkReturns(t, done, os.ErrClosed)
		})
		t.Run(name+"/close-both", func(t *testing.T) {
			s := setup(t)
			done := make(chan error, 1)
			go func() { done <- s.call() }()
			waitBlocked(t, "pipe.Splice(")
			s.notWaitedOn.Close()
			s.waitedOn.Close()
			checkReturns(t, done, os.ErrClosed)
		})
	}
}

// checkReturns waits up to a second for a blocked call's error.
func checkReturns(t *testing.T, done <-chan error, want error) {
	t.Helper()
	select {
	case err := <-done:
		if !errors.Is(err, want) {
			t.Errorf("the waiting call returned %v; want %v", err, want)
		}
	case <-time.After(time.Second):
		t.Fatal("the waiting call did not return within a second")
	}
}

// TestVmspliceDoubleBufferPattern runs the pattern the docs give for
// Vmsplice with Go heap buffers: buffers as large as the capacity
// SetCapacity returned (which rounds up), kept reachable until the reader is
// done, a slow reader, and garbage collection forced throughout. Every
// record must arrive intact.
func TestVmspliceDoubleBufferPattern(t *testing.T) {
	for _, asked := range []int{1000, 100_000, 1_000_000, 3 * 4096} {
		t.Run(fmt.Sprint(asked), func(t *testing.T) {
			max, err := pipe.MaxCapacity()
			if err == nil && asked > max {
				t.Skipf("pipe-max-size is %d", max)
			}
			r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			// The pattern's rule: one buffer holds what the pipe holds.
			size, err := pipe.SetCapacity(w, asked)
			if err != nil {
				t.Fatal(err)
			}
			const records = 30
			got := make(chan error, 1)
			go func() {
				err := readRecords(r, size, records)
				r.Close() // a reader that gave up stops the writer (EPIPE)
				got <- err
			}()
			bufs, werr := produceRecords(w, size, records)
			runtime.GC()
			if err := <-got; err != nil {
				t.Fatal(err)
			}
			if werr != nil {
				t.Fatal(werr)
			}
			runtime.KeepAlive(bufs) // the pattern's rule: reachable until the reader is done
		})
	}
}

// produceRecords writes records of size bytes through two buffers with
// Vmsplice, as the documented pattern does, closes w and returns the
// buffers, which the caller must keep until the reader is done.
func produceRecords(w *os.File, size, records int) ([2][]byte, error) {
	bufs := [2][]byte{make([]byte, size), make([]byte, size)}
	for i := range records {
		b := bufs[i%2]
		fillRecord(b, i)
		if _, err := pipe.Vmsplice(w, [][]byte{b}, 0); err != nil {
			return bufs, err
		}
		runtime.GC()
	}
	return bufs, w.Close()
}

// fillRecord writes record i: its number in every 8 bytes.
func fillRecord(b []byte, i int) {
	for off := 0; off+8 <= len(b); off += 8 {
		binary.LittleEndian.PutUint64(b[off:], uint64(i))
	}
}

// readRecords reads records of size bytes slowly from r and checks each.
func readRecords(r *os.File, size, records int) error {
	want := make([]byte, size)
	got := make([]byte, size)
	for i := 0; ; i++ {
		// Small, slow reads: the writer is ahead and must wait, and a
		// record leaves the pipe a piece at a time.
		for off := 0; off < size; {
			time.Sleep(50 * time.Microsecond)
			n, err := r.Read(got[off:min(size, off+9999)])
			off += n
			if err == io.EOF && off == 0 && i == records {
				return nil
			} else if err != nil {
				return fmt.Errorf("record %d: %v", i, err)
			}
		}
		fillRecord(want, i)
		if !bytes.Equal(got, want) {
			return fmt.Errorf("record %d of %d bytes arrived corrupted (starts %x)", i, size, got[:16])
		}
	}
}
