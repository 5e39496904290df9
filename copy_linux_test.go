package pipe_test

// Tests of Copy (copy_linux.go): that it moves everything between every kind
// of source and sink, takes the zero-copy path where it says it does, and
// waits without spinning where io.Copy would.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pipe2go/pipe"
	"golang.org/x/sys/unix"
)

// TestCopyIntegrity copies data of many sizes between every kind of source
// and sink of the tests' pairings, and through an io.LimitedReader, and
// compares what arrived.
func TestCopyIntegrity(t *testing.T) {
	for _, size := range integritySizes {
		for _, p := range pairings {
			if !p.test {
				continue
			}
			t.Run(fmt.Sprintf("%s-%s/%d", p.src.name, p.dst.name, size), func(t *testing.T) {
				data := testData(t, size)
				src, _ := p.src.open(t, data)
				dst, done, _ := p.dst.open(t, true)
				n, err := pipe.Copy(dst, src)
				if err != nil {
					t.Fatal(err)
				}
				checkArrived(t, done(), data, n)
			})
		}
		t.Run(fmt.Sprintf("LimitedReader/%d", size), func(t *testing.T) {
			data := testData(t, size)
			// Offer more than the limit: Copy must stop at N.
			src := pipeSource(t, append(append([]byte(nil), data...), "and more"...))
			dst, done := pipeSink(t)
			lr := &io.LimitedReader{R: src, N: int64(size)}
			n, err := pipe.Copy(dst, lr)
			if err != nil {
				t.Fatal(err)
			}
			if lr.N != 0 {
				t.Errorf("LimitedReader.N = %d after the copy; want 0", lr.N)
			}
			checkArrived(t, done(), data, n)
		})
	}
}

// TestStalledDestinationDoesNotSpin waits in Copy on a full pipe nobody
// reads, from a pipe and from a socket, into a non-blocking and a blocking
// pipe, and checks that the process uses almost no CPU meanwhile. (io.Copy
// from a socket to a stalled blocking pipe spins: golang/go#75304.)
func TestStalledDestinationDoesNotSpin(t *testing.T) {
	// The sources hold data, then end of file, before Copy starts, so that
	// Copy can only wait on the full destination: fed by a goroutine, a
	// source may still be empty when Copy starts, and the test would watch
	// Copy wait on the source.
	pipeSrc := func(t *testing.T) io.Reader {
		r, w := loadedSource(t)
		w.Close()
		return r
	}
	tcpSrc := func(t *testing.T) io.Reader {
		peer, c := tcpPair(t)
		loadConn(t, peer, c, 64<<10)
		if err := peer.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		name     string
		src      func(t *testing.T) io.Reader
		blocking bool
	}{
		{"pipe-to-pipe", pipeSrc, false},
		{"socket-to-pipe", tcpSrc, false},
		{"socket-to-blocking-pipe", tcpSrc, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.src(t)
			flags := pipe.O_CLOEXEC | pipe.O_NONBLOCK
			if tc.blocking {
				flags = pipe.O_CLOEXEC
			}
			dr, dw := newPipe(t, flags)
			fill(t, dw)
			done := make(chan error, 1)
			go func() { done <- second(pipe.Copy(dw, s)) }()
			waitBlocked(t, "pipe.Copy(")
			checkIdle(t, "Copy waiting on a full pipe", 250*time.Millisecond)
			// A blocking splice holds its descriptor: only reading frees
			// it. The drain ends when the test closes dr.
			go func() { _, _ = io.Copy(io.Discard, dr) }()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}
}

func TestCopyNoFDGrowth(t *testing.T) {
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	dr, dw := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	buf := make([]byte, 8)
	checkNoLeak(t, "10000 Copy calls", func() {
		for i := 0; i < 10000; i++ {
			mustWrite(t, w, []byte("12345678"))
			if n, err := pipe.Copy(dw, io.LimitReader(r, 8)); n != 8 || err != nil {
				t.Fatalf("Copy %d = %d, %v", i, n, err)
			}
			if _, err := io.ReadFull(dr, buf); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestCopyConcurrent runs eight Copy calls at once. The pipes are made on
// the test's goroutine, which alone may stop the test.
func TestCopyConcurrent(t *testing.T) {
	type transfer struct {
		data []byte
		src  *os.File
		dst  *os.File
		done func() []byte
	}
	var transfers []transfer
	for i := 0; i < 8; i++ {
		data := testData(t, 1<<20+i)
		dst, done := pipeSink(t)
		transfers = append(transfers, transfer{data, pipeSource(t, data), dst, done})
	}
	var wg sync.WaitGroup
	for _, tr := range transfers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := pipe.Copy(tr.dst, tr.src)
			if err != nil {
				t.Error(err)
			}
			checkArrived(t, tr.done(), tr.data, n)
		}()
	}
	wg.Wait()
}

// TestCopySplices proves Copy took the zero-copy path: moving 16 MiB with
// io.Copy takes hundreds of read(2) calls, with splice(2) none.
func TestCopySplices(t *testing.T) {
	const size = 16 << 20
	// spliceSink is a pipe whose reader drains into /dev/null with Splice,
	// so that draining it makes no read(2).
	spliceSink := sink{"splice-drained-pipe", func(t testing.TB, _ bool) (io.Writer, func() []byte, func()) {
		r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
		null := devNull(t)
		done := make(chan error, 1)
		go func() { done <- second(spliceAll(null, r)) }()
		return w, func() []byte {
			w.Close()
			if err := <-done; err != nil {
				t.Error(err)
			}
			return nil
		}, nop
	}}
	measure := func(copyFn func(io.Writer, io.Reader) (int64, error), src source, dst sink) int {
		s, _ := src.open(t, testData(t, size))
		d, done, _ := dst.open(t, false)
		var n int64
		var err error
		reads := readSyscalls(t, func() { n, err = copyFn(d, s) })
		if err != nil || n != size {
			t.Fatalf("copy = %d, %v", n, err)
		}
		done()
		return reads
	}
	// The measure must tell the paths apart: io.Copy's reads are seen.
	if reads := measure(io.Copy, srcPipe, dstNull); reads < 100 {
		t.Skipf("io.Copy of %d bytes counted only %d read calls: syscr does not tell the paths apart here", size, reads)
	}
	for _, p := range []struct {
		src     source
		dst     sink
		splices bool
	}{
		{srcPipe, dstNull, true},
		{srcPipe, spliceSink, true},
		{srcFile, spliceSink, true},
		{srcTCP, spliceSink, true},
		// Left to read and write, which measured faster (see copy_linux.go).
		{srcPipe, dstFile, false},
	} {
		reads := measure(pipe.Copy, p.src, p.dst)
		if p.splices && reads > 20 {
			t.Errorf("Copy %s-%s made %d read calls: it did not splice", p.src.name, p.dst.name, reads)
		}
		if !p.splices && reads < 100 {
			t.Errorf("Copy %s-%s made %d read calls: it spliced", p.src.name, p.dst.name, reads)
		}
	}
}

// sendUrgent makes c's peer see "abc", urgent data "X", then "def".
func sendUrgent(t *testing.T, c *net.TCPConn) {
	t.Helper()
	mustWrite(t, c, []byte("abc"))
	sendOOB(t, c, "X")
	mustWrite(t, c, []byte("def"))
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
		if err := r.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(r, got); err != nil || string(got) != "abcdef" {
			t.Fatalf("Copy delivered %q, %v; want %q", got, err, "abcdef")
		}
		waitBlocked(t, "pipe.Copy(")
		checkIdle(t, "Copy waiting for more data after urgent data", 250*time.Millisecond)
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

// TestCopyPipeIntoItself: splice(2) refuses one pipe on both sides, and
// io.Copy would copy the pipe into itself for ever.
func TestCopyPipeIntoItself(t *testing.T) {
	for _, appendMode := range []bool{false, true} {
		t.Run(fmt.Sprint("O_APPEND=", appendMode), func(t *testing.T) {
			r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			if appendMode { // a "log FIFO" opened for appending: io.Copy's path
				rc, err := w.SyscallConn()
				if err != nil {
					t.Fatal(err)
				}
				var ferr error
				if err := rc.Control(func(fd uintptr) {
					_, ferr = unix.FcntlInt(fd, unix.F_SETFL, unix.O_NONBLOCK|unix.O_APPEND)
				}); err != nil || ferr != nil {
					t.Fatal(err, ferr)
				}
			}
			mustWrite(t, w, []byte("data"))
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
		})
	}
}

// TestFailedCopyFreesItsPipe: a socket-to-pipe Copy that fails midway leaves
// bytes in its buffer pipe, which must be closed at once, not when the
// garbage collector gets to it: its pages count against the user's limits.
func TestFailedCopyFreesItsPipe(t *testing.T) {
	before := len(openFDs())
	for range 50 {
		peer, sock := unixPair(t)
		go peer.Write(make([]byte, 4<<20))
		r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
		r.Close() // no reader: EPIPE once the pump starts
		if _, err := pipe.Copy(w, io.LimitReader(sock, 1<<20)); !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("Copy into a pipe with no reader: %v; want EPIPE", err)
		}
		w.Close()
		peer.Close()
		sock.Close()
	}
	// No garbage collection here: that would close dropped pipes anyway.
	if after := len(openFDs()); after > before+4 {
		t.Errorf("%d descriptors open after 50 failed copies, %d before: their buffer pipes were kept", after, before)
	}
}
