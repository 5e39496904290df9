package pipe_test

// Tests of Splice, Tee and Vmsplice (splice_linux.go): what they move, their
// errors, and how they wait. Several reproduce a way the calls once went
// wrong: a Close that hung, a misuse that moved data, a documented pattern
// that corrupted it.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pipe2go/pipe"
)

var integritySizes = []int{0, 1, 42, 1025, os.Getpagesize() + 1, 32769, 1<<20 + 3, 64 << 20}

// spliceAll calls Splice until EOF and returns the total moved.
func spliceAll(dst, src syscall.Conn) (int64, error) {
	var total int64
	for {
		n, err := pipe.Splice(dst, src, 1<<20, 0)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// checkArrived compares what a sink got with what was sent; a nil got (a
// sink that keeps nothing) checks only the count.
func checkArrived(t testing.TB, got, data []byte, n int64) {
	t.Helper()
	if n != int64(len(data)) {
		t.Errorf("moved %d bytes; want %d", n, len(data))
	}
	if got != nil && !bytes.Equal(got, data) {
		i := 0
		for i < len(got) && i < len(data) && got[i] == data[i] {
			i++
		}
		t.Errorf("received %d bytes, differing from the %d sent at byte %d", len(got), len(data), i)
	}
}

// TestSpliceIntegrity moves data of many sizes with Splice between every
// kind of source and sink of the tests' pairings, with Tee from pipe to
// pipe and with Vmsplice into a pipe, and compares what arrived.
func TestSpliceIntegrity(t *testing.T) {
	for _, size := range integritySizes {
		for _, p := range pairings {
			if !p.test {
				continue
			}
			t.Run(fmt.Sprintf("Splice/%s-%s/%d", p.src.name, p.dst.name, size), func(t *testing.T) {
				data := testData(t, size)
				src, _ := p.src.open(t, data)
				dst, done, _ := p.dst.open(t, true)
				n, err := spliceAll(dst.(syscall.Conn), src.(syscall.Conn))
				if err != nil {
					t.Fatal(err)
				}
				checkArrived(t, done(), data, n)
			})
		}
		t.Run(fmt.Sprintf("Tee/%d", size), func(t *testing.T) { testTee(t, testData(t, size)) })
		t.Run(fmt.Sprintf("Vmsplice/%d", size), func(t *testing.T) {
			data := testData(t, size)
			dst, done := pipeSink(t)
			n, err := pipe.Vmsplice(dst, [][]byte{data[:len(data)/3], nil, data[len(data)/3:]}, 0)
			if err != nil {
				t.Fatal(err)
			}
			checkArrived(t, done(), data, int64(n))
		})
	}
}

// testTee tees everything from pipe a into pipe b, consuming a after each
// Tee, and checks that both streams are the data.
func testTee(t *testing.T, data []byte) {
	src := pipeSource(t, data)
	dst, done := pipeSink(t)
	var kept bytes.Buffer
	var total int64
	for {
		n, err := pipe.Tee(dst, src, 1<<20, 0)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		total += n
		// The data is still in src: read exactly what was teed.
		if _, err := io.CopyN(&kept, src, n); err != nil {
			t.Fatal(err)
		}
	}
	checkArrived(t, done(), data, total)
	if !bytes.Equal(kept.Bytes(), data) {
		t.Errorf("the source kept %d bytes that differ from the %d sent", kept.Len(), len(data))
	}
}

func TestSpliceEOFAndShort(t *testing.T) {
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	dr, dw := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	mustWrite(t, w, []byte("0123456789"))
	if n, err := pipe.Splice(dw, r, 4, 0); n != 4 || err != nil {
		t.Fatalf("Splice(n=4) = %d, %v; want 4", n, err)
	}
	if n, err := pipe.Splice(dw, r, 100, 0); n != 6 || err != nil {
		t.Fatalf("Splice(n=100) with 6 left = %d, %v; want 6", n, err)
	}
	w.Close()
	if n, err := pipe.Splice(dw, r, 100, 0); n != 0 || err != nil {
		t.Fatalf("Splice at EOF = %d, %v; want 0, nil", n, err)
	}
	got := make([]byte, 10)
	if _, err := io.ReadFull(dr, got); err != nil || string(got) != "0123456789" {
		t.Fatalf("read %q, %v", got, err)
	}
}

func TestSpliceCallerNonblock(t *testing.T) {
	r, _ := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	_, dw := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	start := time.Now()
	if n, err := pipe.Splice(dw, r, 100, pipe.SPLICE_F_NONBLOCK); n != 0 || !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("Splice(SPLICE_F_NONBLOCK) of an empty pipe = %d, %v; want EAGAIN", n, err)
	}
	if n, err := pipe.Tee(dw, r, 100, pipe.SPLICE_F_NONBLOCK); n != 0 || !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("Tee(SPLICE_F_NONBLOCK) of an empty pipe = %d, %v; want EAGAIN", n, err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("took %v: it waited", d)
	}
}

// TestBlockingPipes splices between blocking pipes, and between a blocking
// and a non-blocking one, where the kernel or poll(2) does the waiting: the
// data comes only once the splice waits on the empty source.
func TestBlockingPipes(t *testing.T) {
	for _, tc := range []struct{ src, dst int }{
		{pipe.O_CLOEXEC, pipe.O_CLOEXEC},
		{pipe.O_CLOEXEC, pipe.O_CLOEXEC | pipe.O_NONBLOCK},
		{pipe.O_CLOEXEC | pipe.O_NONBLOCK, pipe.O_CLOEXEC},
	} {
		t.Run(fmt.Sprintf("src=%#x/dst=%#x", tc.src, tc.dst), func(t *testing.T) {
			data := testData(t, 1<<20+3)
			r, w := newPipe(t, tc.src)
			dr, dw := newPipe(t, tc.dst)
			got := collect(t, dr)
			type result struct {
				n   int64
				err error
			}
			done := make(chan result, 1)
			go func() {
				n, err := spliceAll(dw, r)
				dw.Close()
				done <- result{n, err}
			}()
			waitBlocked(t, "pipe.Splice(")
			feed(w, data)
			res := <-done
			if res.err != nil {
				t.Fatal(res.err)
			}
			checkArrived(t, got(), data, res.n)
		})
	}
}

func TestSpliceErrors(t *testing.T) {
	dir := t.TempDir()
	f1 := fileWith(t, []byte("data"))
	f2 := tempFile(t, "b")
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	mustWrite(t, w, []byte("data"))

	isSyscall := func(err error, name string, errno syscall.Errno) bool {
		var se *os.SyscallError
		return errors.Is(err, errno) && errors.As(err, &se) && se.Syscall == name
	}
	if _, err := pipe.Splice(f2, f1, 4, 0); !isSyscall(err, "splice", syscall.EINVAL) {
		t.Errorf("Splice between two files: %v; want splice EINVAL", err)
	}
	if _, err := pipe.Splice(w, r, 4, 0); !isSyscall(err, "splice", syscall.EINVAL) {
		t.Errorf("Splice within one pipe: %v; want splice EINVAL", err)
	}
	if _, err := pipe.Tee(f2, r, 4, 0); !isSyscall(err, "tee", syscall.EINVAL) {
		t.Errorf("Tee into a file: %v; want tee EINVAL", err)
	}
	if _, err := pipe.Splice(w, r, -1, 0); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("Splice(n=-1): %v; want EINVAL", err)
	}

	app, err := os.OpenFile(filepath.Join(dir, "append"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	if _, err := pipe.Splice(app, r, 4, 0); !errors.Is(err, syscall.EINVAL) || !strings.Contains(err.Error(), "O_APPEND") {
		t.Errorf("Splice to an O_APPEND file: %v; want EINVAL naming O_APPEND", err)
	}
	// Copy, like io.Copy, appends.
	if n, err := pipe.Copy(app, io.LimitReader(r, 4)); n != 4 || err != nil {
		t.Errorf("Copy to an O_APPEND file = %d, %v; want 4", n, err)
	}

	var nilFile *os.File
	for name, err := range map[string]error{
		"Splice(nil dst)":      second(pipe.Splice(nil, r, 1, 0)),
		"Splice(nil *os.File)": second(pipe.Splice(nilFile, r, 1, 0)),
		"Tee(nil)":             second(pipe.Tee(nil, r, 1, 0)),
		"Vmsplice(nil)":        second(pipe.Vmsplice(nil, [][]byte{{1}}, 0)),
	} {
		if !errors.Is(err, os.ErrInvalid) {
			t.Errorf("%s: %v; want os.ErrInvalid", name, err)
		}
	}

	cr, cw, err := pipe.Pipe2(pipe.O_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	cr.Close()
	cw.Close()
	for name, err := range map[string]error{
		"Splice(closed src)": second(pipe.Splice(w, cr, 1, 0)),
		"Splice(closed dst)": second(pipe.Splice(cw, r, 1, 0)),
		"Tee(closed)":        second(pipe.Tee(cw, r, 1, 0)),
		"Vmsplice(closed)":   second(pipe.Vmsplice(cw, [][]byte{{1}}, 0)),
	} {
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("%s: %v; want os.ErrClosed", name, err)
		}
	}
}

// TestReaderGoneIsEPIPE closes the destination's reader mid-transfer.
func TestReaderGoneIsEPIPE(t *testing.T) {
	for _, name := range []string{"Splice", "Copy", "Vmsplice"} {
		t.Run(name, func(t *testing.T) {
			src := pipeSource(t, testData(t, 8<<20))
			dr, dw := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			readErr := make(chan error, 1)
			go func() {
				_, err := io.CopyN(io.Discard, dr, 100<<10)
				dr.Close()
				readErr <- err
			}()
			var err error
			switch name {
			case "Splice":
				_, err = spliceAll(dw, src)
			case "Copy":
				_, err = pipe.Copy(dw, src)
			case "Vmsplice":
				_, err = pipe.Vmsplice(dw, [][]byte{testData(t, 8<<20)}, 0)
			}
			if !errors.Is(err, syscall.EPIPE) {
				t.Errorf("%s to a pipe whose reader left: %v; want EPIPE", name, err)
			}
			if err := <-readErr; err != nil {
				t.Errorf("the reader: %v", err)
			}
		})
	}
}

// TestZeroCopyDeadlines sets a deadline on the side a call waits on: the
// empty source or the full destination.
func TestZeroCopyDeadlines(t *testing.T) {
	t.Run("source", func(t *testing.T) {
		r, _ := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
		_, dw := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
		if err := r.SetReadDeadline(time.Now().Add(30 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if _, err := pipe.Splice(dw, r, 100, 0); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Splice from an empty pipe past its read deadline: %v", err)
		}
		if _, err := pipe.Copy(dw, r); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Copy from an empty pipe past its read deadline: %v", err)
		}
		if _, err := pipe.Tee(dw, r, 100, 0); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Tee from an empty pipe past its read deadline: %v", err)
		}
	})
	t.Run("destination", func(t *testing.T) {
		src, _ := loadedSource(t)
		dw := stalled(t)
		if err := dw.SetWriteDeadline(time.Now().Add(30 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if _, err := pipe.Splice(dw, src, 100, 0); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Splice into a full pipe past its write deadline: %v", err)
		}
		if _, err := pipe.Copy(dw, src); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Copy into a full pipe past its write deadline: %v", err)
		}
		if _, err := pipe.Vmsplice(dw, [][]byte{{1, 2, 3}}, 0); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Vmsplice into a full pipe past its write deadline: %v", err)
		}
	})
}

// TestZeroCopyCloseWakes closes the side a blocked call waits on.
func TestZeroCopyCloseWakes(t *testing.T) {
	type setup func(t *testing.T) (call func() error, victim *os.File)
	cases := map[string]setup{
		"Splice/source": func(t *testing.T) (func() error, *os.File) {
			r, _ := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			_, dw := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			return func() error { return second(pipe.Splice(dw, r, 100, 0)) }, r
		},
		"Splice/destination": func(t *testing.T) (func() error, *os.File) {
			src, _ := loadedSource(t)
			dw := stalled(t)
			return func() error { return second(pipe.Splice(dw, src, 100, 0)) }, dw
		},
		"Copy/source": func(t *testing.T) (func() error, *os.File) {
			r, _ := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			_, dw := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			return func() error { return second(pipe.Copy(dw, r)) }, r
		},
		"Copy/destination": func(t *testing.T) (func() error, *os.File) {
			src, _ := loadedSource(t)
			dw := stalled(t)
			return func() error { return second(pipe.Copy(dw, src)) }, dw
		},
		"Vmsplice": func(t *testing.T) (func() error, *os.File) {
			dw := stalled(t)
			return func() error { return second(pipe.Vmsplice(dw, [][]byte{{1}}, 0)) }, dw
		},
	}
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			call, victim := setup(t)
			checkCloseWakes(t, "pipe."+strings.Split(name, "/")[0]+"(", call, victim)
		})
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
			src, _ := loadedSource(t)
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
			if err := s.deadlineFunc(s.waitedOn, time.Now()); err != nil {
				t.Fatal(err)
			}
			checkReturns(t, done, os.ErrDeadlineExceeded)
		})
		t.Run(name+"/close-of-waited-side", func(t *testing.T) {
			s := setup(t)
			checkCloseWakes(t, "pipe.Splice(", s.call, s.waitedOn)
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

// closeTakes closes c and returns how long Close took, giving up after
// limit (and then calling unblock, to let Close finish, before waiting for
// it).
func closeTakes(c io.Closer, limit time.Duration, unblock func()) time.Duration {
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
			// The socket holds data before Copy starts, so that Copy can
			// only wait on the full pipe: written by a goroutine, it may
			// not have arrived when Copy starts, which then waits on the
			// socket, and Close of the socket would merely wake it.
			loadConn(t, peer, sock, 64<<10)
			done := make(chan error, 1)
			go func() { done <- second(pipe.Copy(w, sock)) }()
			waitBlocked(t, "pipe.Copy(")
			drain := func() { go func() { _, _ = io.Copy(io.Discard, r) }() } // ends when the test closes r
			if d := closeTakes(sock, limit, drain); d > limit/10 {
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
			// A byte for the splice, which may still be waiting; the pipe
			// has room for it, so this cannot block.
			feedOne := func() {
				if _, err := w.Write([]byte("x")); err != nil {
					t.Errorf("writing the byte the splice waits for: %v", err)
				}
			}
			if d := closeTakes(sock, limit, feedOne); d > limit/10 {
				t.Errorf("Close of the socket took %v while Splice waited on an empty blocking pipe", d)
			}
			feedOne()
			if err := <-done; !errors.Is(err, net.ErrClosed) {
				t.Errorf("Splice into a closed socket: %v; want net.ErrClosed", err)
			}
		})
	}
}

// TestVmspliceRefusesReadEnd: vmsplice(2) on a read end reads the pipe into
// the buffers instead.
func TestVmspliceRefusesReadEnd(t *testing.T) {
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	mustWrite(t, w, []byte("hello!"))
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

// TestVmspliceDoubleBuffer keeps the lifetime rule with two buffers and a
// pipe of one buffer's capacity, rewriting each buffer as soon as it is
// free, and checks the reader sees exactly the stream.
func TestVmspliceDoubleBuffer(t *testing.T) {
	const bufSize = 64 << 10
	data := testData(t, 16<<20)
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	if _, err := pipe.SetCapacity(w, bufSize); err != nil {
		t.Fatal(err)
	}
	got := collect(t, r)
	bufs := [2][]byte{make([]byte, bufSize), make([]byte, bufSize)}
	for i := 0; i*bufSize < len(data); i++ {
		b := bufs[i%2]
		// Free again: the previous Vmsplice of the other buffer could not
		// return before the reader took all of this one.
		copy(b, data[i*bufSize:])
		if _, err := pipe.Vmsplice(w, [][]byte{b}, 0); err != nil {
			t.Fatal(err)
		}
	}
	// The last buffer is in use until the reader reaches EOF.
	w.Close()
	checkArrived(t, got(), data, int64(len(data)))
}

func TestVmspliceManyBuffers(t *testing.T) {
	data := testData(t, 3000)
	bufs := make([][]byte, len(data)) // more iovecs than one call takes
	for i := range data {
		bufs[i] = data[i : i+1]
	}
	dst, done := pipeSink(t)
	n, err := pipe.Vmsplice(dst, bufs, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkArrived(t, done(), data, int64(n))
}

func TestVmspliceCallerNonblock(t *testing.T) {
	w := stalled(t)
	if n, err := pipe.Vmsplice(w, [][]byte{{1}}, pipe.SPLICE_F_NONBLOCK); n != 0 || !errors.Is(err, syscall.EAGAIN) {
		t.Errorf("Vmsplice(SPLICE_F_NONBLOCK) into a full pipe = %d, %v; want EAGAIN", n, err)
	}
}

// TestVmspliceBlockingPipe fills a blocking pipe, where the wait happens in
// poll(2) rather than the runtime poller.
func TestVmspliceBlockingPipe(t *testing.T) {
	data := testData(t, 4<<20+3)
	r, w := newPipe(t, pipe.O_CLOEXEC)
	got := collect(t, r)
	n, err := pipe.Vmsplice(w, [][]byte{data}, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	checkArrived(t, got(), data, int64(n))
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
