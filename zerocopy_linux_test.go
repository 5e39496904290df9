package pipe_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pipe2go/pipe"
	"golang.org/x/sys/unix"
)

// testData returns n pseudo-random bytes, the first n of one buffer made
// once per test binary from a logged seed.
var testData = func() func(t testing.TB, n int) []byte {
	var (
		once sync.Once
		data []byte
		seed uint64
	)
	return func(t testing.TB, n int) []byte {
		t.Helper()
		once.Do(func() {
			seed = uint64(time.Now().UnixNano())
			if s := os.Getenv("PIPE_TEST_SEED"); s != "" {
				seed, _ = strconv.ParseUint(s, 10, 64)
			}
			data = make([]byte, 64<<20)
			rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24),
				byte(seed >> 32), byte(seed >> 40), byte(seed >> 48), byte(seed >> 56)})
			rng.Read(data)
		})
		t.Logf("data seed %d (PIPE_TEST_SEED to repeat)", seed)
		return data[:n]
	}
}()

var integritySizes = []int{0, 1, 42, 1025, os.Getpagesize() + 1, 32769, 1<<20 + 3, 64 << 20}

// A source holds data for a transfer to read; a sink collects what a
// transfer writes. done closes the sink's writing side and returns what
// arrived (nil for /dev/null).
type (
	source func(t *testing.T, data []byte) syscall.Conn
	sink   func(t *testing.T) (c syscall.Conn, done func() []byte)
)

// feed writes data to w in 1 MiB pieces, then closes it. (The race detector
// checks the whole remaining buffer at every write(2), so one Write of 64 MiB
// in 64 KiB steps would take it minutes.)
func feed(w io.WriteCloser, data []byte) {
	for len(data) > 0 {
		n, err := w.Write(data[:min(len(data), 1<<20)])
		if err != nil {
			break
		}
		data = data[n:]
	}
	w.Close()
}

// pipeSource returns a pipe's read end, fed by a goroutine.
func pipeSource(t *testing.T, data []byte) syscall.Conn {
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	go feed(w, data)
	return r
}

// fileSource returns a regular file holding data, positioned at its start.
func fileSource(t *testing.T, data []byte) syscall.Conn {
	name := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t testing.TB) (a, b *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
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
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.FailNow()
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// tcpSource returns a socket whose peer sends data and then shuts down.
func tcpSource(t *testing.T, data []byte) syscall.Conn {
	a, b := tcpPair(t)
	go feed(halfCloser{a}, data)
	return b
}

// halfCloser's Close shuts down only the sending side of a TCP connection.
type halfCloser struct{ *net.TCPConn }

func (h halfCloser) Close() error { return h.CloseWrite() }

// collect reads r to EOF in a goroutine; the returned func waits for it.
// It reads 64 KiB at a time: the race detector checks the whole buffer
// passed to each read(2), so a growing bytes.Buffer would be slow.
func collect(t *testing.T, r io.Reader) func() []byte {
	var got []byte
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := r.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				done <- nil
				return
			}
			if err != nil {
				done <- err
				return
			}
		}
	}()
	return func() []byte {
		if err := <-done; err != nil {
			t.Errorf("collecting: %v", err)
		}
		if got == nil {
			got = []byte{}
		}
		return got
	}
}

func pipeSink(t *testing.T) (syscall.Conn, func() []byte) {
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	got := collect(t, r)
	return w, func() []byte { w.Close(); return got() }
}

func fileSink(t *testing.T) (syscall.Conn, func() []byte) {
	f, err := os.Create(filepath.Join(t.TempDir(), "dst"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, func() []byte {
		b, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

func tcpSink(t *testing.T) (syscall.Conn, func() []byte) {
	a, b := tcpPair(t)
	got := collect(t, b)
	return a, func() []byte { a.CloseWrite(); return got() }
}

func nullSink(t *testing.T) (syscall.Conn, func() []byte) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, func() []byte { return nil }
}

var pairings = []struct {
	name string
	src  source
	dst  sink
}{
	{"pipe-pipe", pipeSource, pipeSink},
	{"pipe-file", pipeSource, fileSink},
	{"file-pipe", fileSource, pipeSink},
	{"socket-pipe", tcpSource, pipeSink},
	{"pipe-socket", pipeSource, tcpSink},
	{"pipe-devnull", pipeSource, nullSink},
}

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

// checkArrived compares what a sink got with what was sent.
func checkArrived(t *testing.T, got, data []byte, n int64) {
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

func TestIntegrity(t *testing.T) {
	type method struct {
		name string
		move func(dst, src syscall.Conn) (int64, error)
	}
	methods := []method{
		{"Splice", spliceAll},
		{"Copy", func(dst, src syscall.Conn) (int64, error) {
			return pipe.Copy(dst.(io.Writer), src.(io.Reader))
		}},
	}
	for _, size := range integritySizes {
		for _, m := range methods {
			for _, p := range pairings {
				t.Run(fmt.Sprintf("%s/%s/%d", m.name, p.name, size), func(t *testing.T) {
					data := testData(t, size)
					src := p.src(t, data)
					dst, done := p.dst(t)
					n, err := m.move(dst, src)
					if err != nil {
						t.Fatal(err)
					}
					checkArrived(t, done(), data, n)
				})
			}
		}
		t.Run(fmt.Sprintf("Copy/LimitedReader/%d", size), func(t *testing.T) {
			data := testData(t, size)
			// Offer more than the limit: Copy must stop at N.
			src := pipeSource(t, append(append([]byte(nil), data...), "and more"...))
			dst, done := pipeSink(t)
			lr := &io.LimitedReader{R: src.(io.Reader), N: int64(size)}
			n, err := pipe.Copy(dst.(io.Writer), lr)
			if err != nil {
				t.Fatal(err)
			}
			if lr.N != 0 {
				t.Errorf("LimitedReader.N = %d after the copy; want 0", lr.N)
			}
			checkArrived(t, done(), data, n)
		})
		t.Run(fmt.Sprintf("Tee/%d", size), func(t *testing.T) { testTee(t, testData(t, size)) })
		t.Run(fmt.Sprintf("Vmsplice/%d", size), func(t *testing.T) {
			data := testData(t, size)
			dst, done := pipeSink(t)
			n, err := pipe.Vmsplice(dst.(*os.File), [][]byte{data[:len(data)/3], nil, data[len(data)/3:]}, 0)
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
	src := pipeSource(t, data).(*os.File)
	dst, done := pipeSink(t)
	var kept bytes.Buffer
	var total int64
	for {
		n, err := pipe.Tee(dst.(*os.File), src, 1<<20, 0)
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
	w.Write([]byte("0123456789"))
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
// and a non-blocking one, where the kernel or poll(2) does the waiting.
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
			go func() {
				time.Sleep(20 * time.Millisecond) // let the splice wait first
				w.Write(data)
				w.Close()
			}()
			got := collect(t, dr)
			n, err := spliceAll(dw, r)
			if err != nil {
				t.Fatal(err)
			}
			dw.Close()
			checkArrived(t, got(), data, n)
		})
	}
}

func TestSpliceErrors(t *testing.T) {
	dir := t.TempDir()
	f1, _ := os.Create(filepath.Join(dir, "a"))
	f2, _ := os.Create(filepath.Join(dir, "b"))
	defer f1.Close()
	defer f2.Close()
	f1.WriteString("data")
	f1.Seek(0, io.SeekStart)
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	w.Write([]byte("data"))

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

func second[T any](_ T, err error) error { return err }

// TestReaderGoneIsEPIPE closes the destination's reader mid-transfer.
func TestReaderGoneIsEPIPE(t *testing.T) {
	for _, name := range []string{"Splice", "Copy", "Vmsplice"} {
		t.Run(name, func(t *testing.T) {
			src := pipeSource(t, testData(t, 8<<20))
			dr, dw := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			go func() {
				io.CopyN(io.Discard, dr, 100<<10)
				dr.Close()
			}()
			var err error
			switch name {
			case "Splice":
				_, err = spliceAll(dw, src)
			case "Copy":
				_, err = pipe.Copy(dw, src.(io.Reader))
			case "Vmsplice":
				_, err = pipe.Vmsplice(dw, [][]byte{testData(t, 8<<20)}, 0)
			}
			if !errors.Is(err, syscall.EPIPE) {
				t.Errorf("%s to a pipe whose reader left: %v; want EPIPE", name, err)
			}
		})
	}
}

// stalled returns a pipe write end that is full and that nobody reads.
func stalled(t *testing.T) *os.File {
	t.Helper()
	_, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	fill(t, w)
	return w
}

// fill writes to w until its pipe is full, leaving w's blocking mode as it
// was.
func fill(t *testing.T, w *os.File) {
	t.Helper()
	wasNonblock := fcntlGet(t, w, unix.F_GETFL)&unix.O_NONBLOCK != 0
	if err := pipe.SetNonblock(w, true); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := rawWrite(t, w, make([]byte, 4096)); errors.Is(err, syscall.EAGAIN) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if err := pipe.SetNonblock(w, wasNonblock); err != nil {
		t.Fatal(err)
	}
}

func TestZeroCopyDeadlines(t *testing.T) {
	t.Run("source", func(t *testing.T) {
		r, _ := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
		_, dw := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
		r.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
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
		src := pipeSource(t, testData(t, 1<<20))
		dw := stalled(t)
		dw.SetWriteDeadline(time.Now().Add(30 * time.Millisecond))
		if _, err := pipe.Splice(dw, src, 100, 0); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Splice into a full pipe past its write deadline: %v", err)
		}
		if _, err := pipe.Copy(dw, src.(io.Reader)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Copy into a full pipe past its write deadline: %v", err)
		}
		if _, err := pipe.Vmsplice(dw, [][]byte{{1, 2, 3}}, 0); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Vmsplice into a full pipe past its write deadline: %v", err)
		}
	})
}

// TestCloseWakes closes the side a blocked call waits on.
func TestZeroCopyCloseWakes(t *testing.T) {
	type setup func(t *testing.T) (call func() error, victim *os.File)
	cases := map[string]setup{
		"Splice/source": func(t *testing.T) (func() error, *os.File) {
			r, _ := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			_, dw := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			return func() error { return second(pipe.Splice(dw, r, 100, 0)) }, r
		},
		"Splice/destination": func(t *testing.T) (func() error, *os.File) {
			src := pipeSource(t, testData(t, 1<<20))
			dw := stalled(t)
			return func() error { return second(pipe.Splice(dw, src, 100, 0)) }, dw
		},
		"Copy/source": func(t *testing.T) (func() error, *os.File) {
			r, _ := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			_, dw := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			return func() error { return second(pipe.Copy(dw, r)) }, r
		},
		"Copy/destination": func(t *testing.T) (func() error, *os.File) {
			src := pipeSource(t, testData(t, 1<<20))
			dw := stalled(t)
			return func() error { return second(pipe.Copy(dw, src.(io.Reader))) }, dw
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

// cpuTime returns the process's user and system time so far.
func cpuTime(t *testing.T) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestStalledDestinationDoesNotSpin waits in Copy on a full pipe nobody
// reads, from a pipe and from a socket, into a non-blocking and a blocking
// pipe, and checks that the process uses almost no CPU meanwhile. (io.Copy
// from a socket to a stalled blocking pipe spins: golang/go#75304.)
func TestStalledDestinationDoesNotSpin(t *testing.T) {
	for _, tc := range []struct {
		name     string
		src      source
		blocking bool
	}{
		{"pipe-to-pipe", pipeSource, false},
		{"socket-to-pipe", tcpSource, false},
		{"socket-to-blocking-pipe", tcpSource, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.src(t, testData(t, 4<<20))
			flags := pipe.O_CLOEXEC | pipe.O_NONBLOCK
			if tc.blocking {
				flags = pipe.O_CLOEXEC
			}
			dr, dw := newPipe(t, flags)
			fill(t, dw)
			done := make(chan error, 1)
			go func() { done <- second(pipe.Copy(dw, s.(io.Reader))) }()
			time.Sleep(50 * time.Millisecond)
			before := cpuTime(t)
			const wait = 500 * time.Millisecond
			time.Sleep(wait)
			used := cpuTime(t) - before
			// A blocking splice holds its descriptor: only reading frees it.
			go io.Copy(io.Discard, dr)
			if err := <-done; err != nil {
				t.Error(err)
			}
			if used > wait/10 {
				t.Errorf("the process used %v of CPU in %v while Copy waited on a full pipe", used, wait)
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
			w.Write([]byte("12345678"))
			if n, err := pipe.Copy(dw, io.LimitReader(r, 8)); n != 8 || err != nil {
				t.Fatalf("Copy %d = %d, %v", i, n, err)
			}
			if _, err := io.ReadFull(dr, buf); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestCopyConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			data := testData(t, 1<<20+i)
			src := pipeSource(t, data)
			dst, done := pipeSink(t)
			n, err := pipe.Copy(dst.(io.Writer), src.(io.Reader))
			if err != nil {
				t.Error(err)
				return
			}
			checkArrived(t, done(), data, n)
		}(i)
	}
	wg.Wait()
}

// readSyscalls returns the read system calls this process has made
// (syscr in /proc/self/io). splice(2) does not count as one; read(2) does.
func readSyscalls(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Skipf("/proc/self/io: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "syscr: "); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	t.Skip("no syscr in /proc/self/io")
	return 0
}

// spliceSink returns a pipe whose reader drains into /dev/null with Splice,
// so that draining it makes no read(2).
func spliceSink(t *testing.T) (syscall.Conn, func() []byte) {
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	null, _ := nullSink(t)
	done := make(chan error, 1)
	go func() { done <- second(spliceAll(null, r)) }()
	return w, func() []byte {
		w.Close()
		if err := <-done; err != nil {
			t.Error(err)
		}
		return nil
	}
}

// TestCopySplices proves Copy took the zero-copy path: moving 16 MiB with
// io.Copy takes hundreds of read(2) calls, with splice(2) none.
func TestCopySplices(t *testing.T) {
	const size = 16 << 20
	measure := func(copyFn func(io.Writer, io.Reader) (int64, error), src source, dst sink) int {
		s := src(t, testData(t, size))
		d, done := dst(t)
		before := readSyscalls(t)
		n, err := copyFn(d.(io.Writer), s.(io.Reader))
		reads := readSyscalls(t) - before
		if err != nil || n != size {
			t.Fatalf("copy = %d, %v", n, err)
		}
		done()
		return reads
	}
	// The measure must tell the paths apart: io.Copy's reads are seen.
	if reads := measure(io.Copy, pipeSource, nullSink); reads < 100 {
		t.Skipf("io.Copy of %d bytes counted only %d read calls: syscr does not tell the paths apart here", size, reads)
	}
	for _, p := range []struct {
		name    string
		src     source
		dst     sink
		splices bool
	}{
		{"pipe-devnull", pipeSource, nullSink, true},
		{"pipe-pipe", pipeSource, spliceSink, true},
		{"file-pipe", fileSource, spliceSink, true},
		{"socket-pipe", tcpSource, spliceSink, true},
		// Left to read and write, which measured faster (see copy_linux.go).
		{"pipe-file", pipeSource, fileSink, false},
	} {
		reads := measure(pipe.Copy, p.src, p.dst)
		if p.splices && reads > 20 {
			t.Errorf("Copy %s made %d read calls: it did not splice", p.name, reads)
		}
		if !p.splices && reads < 100 {
			t.Errorf("Copy %s made %d read calls: it spliced", p.name, reads)
		}
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
	n, err := pipe.Vmsplice(dst.(*os.File), bufs, 0)
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
