//go:build unix

package pipe_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pipe2go/pipe"
	"golang.org/x/sys/unix"
)

func init() {
	helpers["fifo-waits"] = helperFIFOWaits
}

// darwin's FIFOs from OpenFIFO are blocking (no deadlines, Close does not
// wake a Read), as os.OpenFile's are there.
const fifoPolled = runtime.GOOS != "darwin" && runtime.GOOS != "ios"

// newFIFO makes a FIFO in a fresh temporary directory and returns its path.
func newFIFO(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fifo")
	if err := pipe.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// openFIFO calls OpenFIFO with ctx and closes the file when the test ends.
func openFIFO(t testing.TB, ctx context.Context, path string, flag int) *os.File {
	t.Helper()
	f, err := pipe.OpenFIFO(ctx, path, flag)
	if err != nil {
		t.Fatalf("OpenFIFO(%s, %#x): %v", path, flag, err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// result is what OpenFIFO returned, and when.
type result struct {
	f   *os.File
	err error
	at  time.Time
}

// goOpenFIFO runs OpenFIFO in a goroutine and returns a channel that will
// hold its result. Whoever receives the result puts it back (see await), so
// that the cleanup can close the file the call returned, if any.
func goOpenFIFO(t testing.TB, ctx context.Context, path string, flag int) chan result {
	t.Helper()
	c := make(chan result, 1)
	go func() {
		f, err := pipe.OpenFIFO(ctx, path, flag)
		c <- result{f, err, time.Now()}
	}()
	t.Cleanup(func() {
		if r := <-c; r.f != nil {
			r.f.Close()
		}
	})
	return c
}

// await returns the result from c, failing the test if none comes within d.
func await(t testing.TB, c chan result, d time.Duration) result {
	t.Helper()
	select {
	case r := <-c:
		c <- r
		return r
	case <-time.After(d):
		t.Fatalf("OpenFIFO did not return within %v", d)
		return result{}
	}
}

// notYet fails the test if c delivers within d.
func notYet(t testing.TB, c chan result, d time.Duration, why string) {
	t.Helper()
	select {
	case r := <-c:
		c <- r
		t.Fatalf("OpenFIFO returned (%v) %s", r.err, why)
	case <-time.After(d):
	}
}

// fifoID returns the device and inode of the file at path.
func fifoID(t testing.TB, path string) [2]uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return [2]uint64{uint64(st.Dev), uint64(st.Ino)}
}

// openCount returns how many of this process's descriptors refer to id.
func openCount(id [2]uint64) int {
	n := 0
	for _, fd := range openFDs() {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil && uint64(st.Dev) == id[0] && uint64(st.Ino) == id[1] {
			n++
		}
	}
	return n
}

// waitFIFOWaits waits until n goroutines are parked in OpenFIFO.
func waitFIFOWaits(t testing.TB, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); waitingCount("pipe.OpenFIFO(") < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines waiting in OpenFIFO after 10s; want %d", waitingCount("pipe.OpenFIFO("), n)
		}
	}
}

// waitOpened waits until this process holds n descriptors for the FIFO at
// path: the sign that that many OpenFIFO readers are waiting on it.
func waitOpened(t testing.TB, path string, n int) {
	t.Helper()
	id := fifoID(t, path)
	for deadline := time.Now().Add(5 * time.Second); openCount(id) < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d descriptors open, want %d", path, openCount(id), n)
		}
	}
}

func TestMkfifo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	if err := pipe.Mkfifo(path, 0o640|os.ModeNamedPipe); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	umask := unix.Umask(0)
	unix.Umask(umask)
	if fi.Mode().Type() != os.ModeNamedPipe || fi.Mode().Perm() != 0o640&^os.FileMode(umask) {
		t.Errorf("mode = %v; want a named pipe with %v", fi.Mode(), 0o640&^os.FileMode(umask))
	}

	err = pipe.Mkfifo(path, 0o600)
	var pe *os.PathError
	if !errors.Is(err, os.ErrExist) || !errors.As(err, &pe) || pe.Op != "mkfifo" || pe.Path != path {
		t.Errorf("Mkfifo over an existing file: %v; want a *PathError for mkfifo matching os.ErrExist", err)
	}
	if err := pipe.Mkfifo(filepath.Join(path+".d", "x"), 0o600); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Mkfifo in a missing directory: %v; want os.ErrNotExist", err)
	}
}

func TestOpenFIFOBadInput(t *testing.T) {
	dir := t.TempDir()
	fifo := newFIFO(t)
	regular := filepath.Join(dir, "regular")
	const content = "keep me"
	if err := os.WriteFile(regular, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	checkNoLeak(t, "bad input", func() {
		for _, flag := range []int{os.O_RDONLY, os.O_WRONLY, os.O_RDWR} {
			if _, err := pipe.OpenFIFO(ctx, filepath.Join(dir, "missing"), flag); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("flag %#x, missing path: %v; want os.ErrNotExist", flag, err)
			}
			for _, path := range []string{regular, dir, os.DevNull} {
				_, err := pipe.OpenFIFO(ctx, path, flag)
				var pe *os.PathError
				if !errors.Is(err, syscall.EINVAL) || !errors.As(err, &pe) || pe.Path != path ||
					!strings.Contains(err.Error(), "not a FIFO") {
					t.Errorf("flag %#x, %s: %v; want a *PathError saying not a FIFO, matching EINVAL", flag, path, err)
				}
			}
		}
		for _, flag := range []int{-1, 3, os.O_WRONLY | os.O_EXCL, os.O_WRONLY | os.O_TRUNC, os.O_RDONLY | syscall.O_NONBLOCK} {
			if _, err := pipe.OpenFIFO(ctx, fifo, flag); !errors.Is(err, syscall.EINVAL) {
				t.Errorf("flag %#x: %v; want EINVAL", flag, err)
			}
		}
		var nilCtx context.Context
		if _, err := pipe.OpenFIFO(nilCtx, fifo, os.O_RDONLY); !errors.Is(err, os.ErrInvalid) {
			t.Errorf("nil context: %v; want os.ErrInvalid", err)
		}
		if _, err := pipe.OpenFIFO(ctx, "bad\x00path", os.O_RDONLY); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("path with a NUL: %v; want EINVAL", err)
		}
		if !linux {
			if _, err := pipe.OpenFIFO(ctx, fifo, os.O_RDWR); !errors.Is(err, errors.ErrUnsupported) {
				t.Errorf("O_RDWR: %v; want errors.ErrUnsupported", err)
			}
		}
	})
	if b, err := os.ReadFile(regular); string(b) != content || err != nil {
		t.Errorf("the regular file holds %q, %v after the attempts; want %q", b, err, content)
	}
}

// TestOpenFIFORefusesSwappedPath replaces a FIFO with a regular file or a
// socket (whose open(2) fails with ENXIO, as a FIFO's does) while a writer
// waits for a reader, and checks that the writer refuses it.
func TestOpenFIFORefusesSwappedPath(t *testing.T) {
	for _, kind := range []string{"regular file", "socket"} {
		t.Run(kind, func(t *testing.T) {
			path := newFIFO(t)
			c := goOpenFIFO(t, t.Context(), path, os.O_WRONLY)
			notYet(t, c, 30*time.Millisecond, "with no reader")
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if kind == "socket" {
				ln, err := net.Listen("unix", path)
				if err != nil {
					t.Skipf("unix socket: %v", err)
				}
				defer ln.Close()
			} else if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			r := await(t, c, 5*time.Second)
			if !errors.Is(r.err, syscall.EINVAL) || !strings.Contains(fmt.Sprint(r.err), "not a FIFO but a "+kind) {
				t.Errorf("OpenFIFO after the swap: %v; want not a FIFO but a %s", r.err, kind)
			}
		})
	}
}

// TestOpenFIFOShellWriter has sh write to a Go reader, with either side
// first.
func TestOpenFIFOShellWriter(t *testing.T) {
	needProgram(t, "sh")
	for _, readerFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("readerFirst=%v", readerFirst), func(t *testing.T) {
			path := newFIFO(t)
			sh := exec.CommandContext(t.Context(), "sh", "-c", `echo hi > "$1"`, "sh", path)
			var c chan result
			if readerFirst {
				c = goOpenFIFO(t, t.Context(), path, os.O_RDONLY)
				waitOpened(t, path, 1)
				notYet(t, c, 50*time.Millisecond, "before any writer")
				if err := sh.Start(); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := sh.Start(); err != nil {
					t.Fatal(err)
				}
				waitProcessBlocked(t, sh.Process.Pid) // in open(2), most likely
				c = goOpenFIFO(t, t.Context(), path, os.O_RDONLY)
			}
			r := await(t, c, 5*time.Second)
			if r.err != nil {
				t.Fatal(r.err)
			}
			got, err := io.ReadAll(r.f)
			if err != nil || string(got) != "hi\n" {
				t.Errorf("read %q, %v; want %q", got, err, "hi\n")
			}
			if err := sh.Wait(); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestOpenFIFOCatReader has a Go writer feed cat, with either side first:
// cat blocked in its own open(2) counts as a reader.
func TestOpenFIFOCatReader(t *testing.T) {
	needProgram(t, "cat")
	for _, writerFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("writerFirst=%v", writerFirst), func(t *testing.T) {
			path := newFIFO(t)
			cat := exec.CommandContext(t.Context(), "cat", path)
			var out bytes.Buffer
			cat.Stdout = &out
			var c chan result
			if writerFirst {
				c = goOpenFIFO(t, t.Context(), path, os.O_WRONLY)
				notYet(t, c, 50*time.Millisecond, "with no reader")
				if err := cat.Start(); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := cat.Start(); err != nil {
					t.Fatal(err)
				}
				waitProcessBlocked(t, cat.Process.Pid) // in open(2), most likely
				c = goOpenFIFO(t, t.Context(), path, os.O_WRONLY)
			}
			r := await(t, c, 5*time.Second)
			if r.err != nil {
				t.Fatal(r.err)
			}
			if _, err := io.WriteString(r.f, "hello, cat\n"); err != nil {
				t.Fatal(err)
			}
			r.f.Close()
			if err := cat.Wait(); err != nil {
				t.Fatal(err)
			}
			if out.String() != "hello, cat\n" {
				t.Errorf("cat printed %q", out.String())
			}
		})
	}
}

// TestOpenFIFOGoPeers meets a Go reader and a Go writer with either one
// first, the other arriving after a delay.
func TestOpenFIFOGoPeers(t *testing.T) {
	for _, writerFirst := range []bool{true, false} {
		for _, delay := range []time.Duration{0, 30 * time.Millisecond, 200 * time.Millisecond} {
			t.Run(fmt.Sprintf("writerFirst=%v/delay=%v", writerFirst, delay), func(t *testing.T) {
				path := newFIFO(t)
				var cr, cw chan result
				if writerFirst {
					cw = goOpenFIFO(t, t.Context(), path, os.O_WRONLY)
					time.Sleep(delay)
					cr = goOpenFIFO(t, t.Context(), path, os.O_RDONLY)
				} else {
					cr = goOpenFIFO(t, t.Context(), path, os.O_RDONLY)
					time.Sleep(delay)
					cw = goOpenFIFO(t, t.Context(), path, os.O_WRONLY)
				}
				// The writer returns first: the reader waits for its data.
				w := await(t, cw, 5*time.Second)
				if w.err != nil {
					t.Fatal(w.err)
				}
				if _, err := w.f.Write([]byte("ping")); err != nil {
					t.Fatal(err)
				}
				w.f.Close()
				r := await(t, cr, 5*time.Second)
				if r.err != nil {
					t.Fatal(r.err)
				}
				if got, err := io.ReadAll(r.f); string(got) != "ping" || err != nil {
					t.Errorf("read %q, %v; want ping", got, err)
				}
			})
		}
	}
}

// TestOpenFIFOReaderSilentWriter checks what a reader waits for: a writer,
// not another reader, and on Linux not data either: a writer that has
// connected and written nothing is enough, as for open(2). Elsewhere the
// first byte is.
func TestOpenFIFOReaderSilentWriter(t *testing.T) {
	path := newFIFO(t)
	c := goOpenFIFO(t, t.Context(), path, os.O_RDONLY)
	waitFIFOWaits(t, 1)
	notYet(t, c, 100*time.Millisecond, "with no writer")
	// A second reader raises inotify's IN_OPEN as a writer does.
	r2, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	notYet(t, c, 100*time.Millisecond, "for a second reader")
	unix.Close(r2)
	w := openFIFO(t, t.Context(), path, os.O_WRONLY) // at once: the reader is there
	if !linux {
		notYet(t, c, 100*time.Millisecond, "for a writer that wrote nothing")
	} else {
		r := await(t, c, 5*time.Second)
		if r.err != nil {
			t.Fatal(r.err)
		}
		// Connected, nothing written: Read waits rather than end of file.
		r.f.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if n, err := r.f.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Read before any byte = %d, %v; want os.ErrDeadlineExceeded", n, err)
		}
		r.f.SetReadDeadline(time.Time{})
	}
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	r := await(t, c, 5*time.Second)
	if r.err != nil {
		t.Fatal(r.err)
	}
	w.Close()
	if got, err := io.ReadAll(r.f); string(got) != "x" || err != nil {
		t.Errorf("read %q, %v; want x", got, err)
	}
}

// TestOpenFIFOCancel cancels waiting readers and writers, before and during
// the wait, by cancel and by deadline, and checks that each returns within
// 100 ms with an error matching ctx.Err() and leaves nothing open.
func TestOpenFIFOCancel(t *testing.T) {
	for _, flag := range []int{os.O_RDONLY, os.O_WRONLY} {
		t.Run(fmt.Sprintf("flag=%#x/before", flag), func(t *testing.T) {
			path := newFIFO(t)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			checkNoLeak(t, "canceled OpenFIFO", func() {
				if _, err := pipe.OpenFIFO(ctx, path, flag); !errors.Is(err, context.Canceled) {
					t.Errorf("OpenFIFO with a canceled ctx: %v; want context.Canceled", err)
				}
			})
		})
		t.Run(fmt.Sprintf("flag=%#x/during", flag), func(t *testing.T) {
			path := newFIFO(t)
			checkNoLeak(t, "OpenFIFO canceled while waiting", func() {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				c := goOpenFIFO(t, ctx, path, flag)
				waitFIFOWaits(t, 1)
				start := time.Now()
				cancel()
				r := await(t, c, 5*time.Second)
				if d := r.at.Sub(start); d > 100*time.Millisecond {
					t.Errorf("returned %v after cancel", d)
				}
				if !errors.Is(r.err, context.Canceled) || r.f != nil {
					t.Errorf("OpenFIFO canceled while waiting: %v, %v; want context.Canceled", r.f, r.err)
				}
			})
		})
		t.Run(fmt.Sprintf("flag=%#x/deadline", flag), func(t *testing.T) {
			path := newFIFO(t)
			const timeout = 150 * time.Millisecond
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			_, err := pipe.OpenFIFO(ctx, path, flag)
			if d := time.Since(start); d < timeout || d > timeout+100*time.Millisecond {
				t.Errorf("returned after %v; want %v to %v", d, timeout, timeout+100*time.Millisecond)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("OpenFIFO past its deadline: %v; want context.DeadlineExceeded", err)
			}
		})
	}
}

// TestOpenFIFONoLeak runs 1,000 canceled waits and 100 successful opens and
// checks that no descriptor and no goroutine is left behind.
func TestOpenFIFONoLeak(t *testing.T) {
	path := newFIFO(t)
	goroutines0 := runtime.NumGoroutine()
	settle := func() int {
		// Exited goroutines may take a moment to be counted out.
		n := runtime.NumGoroutine()
		for deadline := time.Now().Add(time.Second); n > goroutines0 && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			n = runtime.NumGoroutine()
		}
		return n
	}
	checkNoLeak(t, "1000 canceled waits", func() {
		for i := 0; i < 1000; i++ {
			flag := []int{os.O_RDONLY, os.O_WRONLY}[i%2]
			var ctx context.Context
			var cancel context.CancelFunc
			if i%4 < 2 {
				ctx, cancel = context.WithTimeout(context.Background(), time.Millisecond)
			} else {
				ctx, cancel = context.WithCancel(context.Background())
				cancel()
			}
			f, err := pipe.OpenFIFO(ctx, path, flag)
			cancel()
			if !errors.Is(err, ctx.Err()) || f != nil {
				t.Fatalf("cycle %d: %v, %v; want %v", i, f, err, ctx.Err())
			}
		}
		for i := 0; i < 100; i++ {
			c := goOpenFIFO(t, t.Context(), path, os.O_RDONLY)
			w := openFIFO(t, t.Context(), path, os.O_WRONLY)
			w.Write([]byte{1})
			w.Close()
			r := await(t, c, 5*time.Second)
			if r.err != nil {
				t.Fatal(r.err)
			}
			r.f.Close()
		}
	})
	if n := settle(); n > goroutines0 {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines before, %d after:\n%s", goroutines0, n, buf[:runtime.Stack(buf, true)])
	}
}

// TestOpenFIFOWriterConnectsQuickly lets a writer wait long enough to reach
// its longest pause, then opens a reader and measures how long the writer
// takes to connect: under 50 ms.
func TestOpenFIFOWriterConnectsQuickly(t *testing.T) {
	var lags []time.Duration
	for i := 0; i < 5; i++ {
		path := newFIFO(t)
		c := goOpenFIFO(t, t.Context(), path, os.O_WRONLY)
		notYet(t, c, 150*time.Millisecond, "with no reader")
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		r := await(t, c, 5*time.Second)
		unix.Close(fd)
		if r.err != nil {
			t.Fatal(r.err)
		}
		lags = append(lags, r.at.Sub(start))
	}
	t.Logf("writer connected %v after the reader appeared", lags)
	for _, d := range lags {
		if d > 50*time.Millisecond {
			t.Errorf("a writer connected %v after the reader appeared; want under 50ms", d)
		}
	}
}

// TestOpenFIFOWaitDoesNotSpin keeps 10 readers and 10 writers waiting for
// half a second and checks that the process uses almost no CPU meanwhile.
func TestOpenFIFOWaitDoesNotSpin(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var cs []chan result
	for i := 0; i < 10; i++ {
		path := newFIFO(t)
		cs = append(cs, goOpenFIFO(t, ctx, path, os.O_RDONLY))
		waitOpened(t, path, 1)
		cs = append(cs, goOpenFIFO(t, ctx, newFIFO(t), os.O_WRONLY))
	}
	// The writers retry with growing pauses, which nothing shows: give
	// them time to reach the longest before measuring.
	time.Sleep(50 * time.Millisecond)
	checkIdle(t, "20 waiting OpenFIFO calls", 250*time.Millisecond)
	cancel()
	for _, c := range cs {
		if r := await(t, c, 5*time.Second); !errors.Is(r.err, context.Canceled) {
			t.Errorf("OpenFIFO: %v; want context.Canceled", r.err)
		}
	}
}

// TestOpenFIFOCopy moves random data through a FIFO with Copy at both ends,
// from a file into the writer and from the reader into a pipe, and compares
// checksums.
func TestOpenFIFOCopy(t *testing.T) {
	path := newFIFO(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	data := make([]byte, 8<<20+13)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)}).Read(data)
	name := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()

	errc := make(chan error, 1)
	go func() {
		w, err := pipe.OpenFIFO(t.Context(), path, os.O_WRONLY)
		if err == nil {
			_, err = pipe.Copy(w, src)
			w.Close()
		}
		errc <- err
	}()
	r := openFIFO(t, t.Context(), path, os.O_RDONLY)
	pr, pw := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	sum := make(chan [sha256.Size]byte, 1)
	go func() {
		h := sha256.New()
		io.Copy(h, pr)
		sum <- [sha256.Size]byte(h.Sum(nil))
	}()
	n, err := pipe.Copy(pw, r)
	pw.Close()
	if err != nil || n != int64(len(data)) {
		t.Errorf("Copy from the FIFO = %d, %v; want %d", n, err, len(data))
	}
	if err := <-errc; err != nil {
		t.Errorf("writer: %v", err)
	}
	if got, want := <-sum, sha256.Sum256(data); got != want {
		t.Errorf("sha256 %x arrived; %x was sent", got, want)
	}
}

// fifoPair returns both ends of a fresh FIFO, opened with OpenFIFO.
func fifoPair(t *testing.T) (r, w *os.File) {
	t.Helper()
	path := newFIFO(t)
	c := goOpenFIFO(t, t.Context(), path, os.O_RDONLY)
	w = openFIFO(t, t.Context(), path, os.O_WRONLY)
	if _, err := w.Write([]byte("!")); err != nil {
		t.Fatal(err)
	}
	res := await(t, c, 5*time.Second)
	if res.err != nil {
		t.Fatal(res.err)
	}
	if _, err := io.ReadFull(res.f, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	return res.f, w
}

// TestOpenFIFOFile checks the returned files: close-on-exec, in the poller
// with deadlines, woken by Close, and served by the package's helpers.
func TestOpenFIFOFile(t *testing.T) {
	r, w := fifoPair(t)
	for _, f := range []*os.File{r, w} {
		if fcntlGet(t, f, unix.F_GETFD)&unix.FD_CLOEXEC == 0 {
			t.Errorf("%s: FD_CLOEXEC not set", f.Name())
		}
		if got := fcntlGet(t, f, unix.F_GETFL)&unix.O_NONBLOCK != 0; got != fifoPolled {
			t.Errorf("%s: O_NONBLOCK = %v; want %v", f.Name(), got, fifoPolled)
		}
	}
	if !fifoPolled {
		t.Skipf("on %s OpenFIFO returns blocking files", runtime.GOOS)
	}

	if _, err := w.Write([]byte("12345")); err != nil {
		t.Fatal(err)
	}
	if n, err := pipe.Buffered(r); n != 5 || err != nil {
		t.Errorf("Buffered = %d, %v; want 5", n, err)
	}
	io.ReadFull(r, make([]byte, 5))

	if err := r.SetReadDeadline(time.Now().Add(30 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read past the deadline: %v; want os.ErrDeadlineExceeded", err)
	}
	r.SetReadDeadline(time.Time{})

	if err := pipe.SetNonblock(w, false); err != nil {
		t.Fatal(err)
	}
	if fcntlGet(t, w, unix.F_GETFL)&unix.O_NONBLOCK != 0 {
		t.Error("SetNonblock(w, false) left O_NONBLOCK set")
	}
}

// TestOpenFIFOCloseWakes closes a reader parked in Read and a writer parked
// in Write on a full FIFO.
func TestOpenFIFOCloseWakes(t *testing.T) {
	if !fifoPolled {
		t.Skipf("on %s OpenFIFO returns blocking files", runtime.GOOS)
	}
	for _, side := range []string{"Read", "Write"} {
		t.Run(side, func(t *testing.T) {
			r, w := fifoPair(t)
			victim, call := r, func() error { _, err := r.Read(make([]byte, 1)); return err }
			if side == "Write" {
				victim, call = w, func() error { _, err := w.Write(make([]byte, 8<<20)); return err }
			}
			// The call's own frame, not os.(*File).Read: no other goroutine
			// can be mistaken for it.
			checkCloseWakes(t, "TestOpenFIFOCloseWakes.func", call, victim)
		})
	}
}

// TestOpenFIFOThreads runs 1,000 concurrent OpenFIFO waits under a limit of
// 100 threads in a helper process. The control run, with os.OpenFile, must
// die of thread exhaustion, which shows the limit bites.
func TestOpenFIFOThreads(t *testing.T) {
	out, err := helperCmd(t, "fifo-waits", "openfifo", t.TempDir()).CombinedOutput()
	if err != nil {
		t.Fatalf("1000 OpenFIFO waits: %v\n%s", err, tail(out))
	}
	t.Logf("%s", out)
	if testing.Short() {
		return
	}
	out, err = helperCmd(t, "fifo-waits", "openfile", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "thread exhaustion") {
		t.Errorf("control with os.OpenFile did not exhaust threads: %v\n%s", err, tail(out))
	}
}

// helperFIFOWaits makes 1,000 FIFOs in the directory os.Args[2] and waits
// on each under a limit of 100 threads: 500 readers waiting for writers and
// 500 writers waiting for readers. os.Args[1] says how: "openfifo" or
// "openfile", which holds a thread in each open(2).
func helperFIFOWaits() int {
	const n, threads = 1000, 100
	mode, dir := os.Args[1], os.Args[2]
	fail := func(format string, args ...any) int {
		fmt.Printf(format+"\n", args...)
		return 1
	}
	open := func(path string, flag int) (*os.File, error) {
		if mode == "openfile" {
			return os.OpenFile(path, flag, 0)
		}
		return pipe.OpenFIFO(context.Background(), path, flag)
	}
	paths := make([]string, n)
	for i := range paths {
		paths[i] = filepath.Join(dir, fmt.Sprint(i))
		if err := pipe.Mkfifo(paths[i], 0o600); err != nil {
			return fail("%v", err)
		}
	}
	debug.SetMaxThreads(threads)
	// Waiters: readers on the first half, writers on the second. Each writer
	// writes a byte once connected; each reader reads one.
	errc := make(chan error, 2*n)
	var wg sync.WaitGroup
	for i, path := range paths {
		flag := os.O_RDONLY
		if i >= n/2 {
			flag = os.O_WRONLY
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- exchange(open, path, flag)
		}()
	}
	// Let every waiter wait (os.OpenFile's run out of threads here).
	frame := "pipe.OpenFIFO("
	if mode == "openfile" {
		frame = "os.OpenFile("
	}
	for deadline := time.Now().Add(10 * time.Second); waitingCount(frame) < n; time.Sleep(time.Millisecond) {
		if mode == "openfile" && blockedCount(frame) >= n/2 {
			break // os.OpenFile's writers are not seen: their readers hold no thread
		}
		if time.Now().After(deadline) {
			return fail("only %d of %d waits parked within 10s", waitingCount(frame), n)
		}
	}
	// Peers: a writer for each reader, a reader for each writer.
	for i, path := range paths {
		flag := os.O_WRONLY
		if i >= n/2 {
			flag = os.O_RDONLY
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- exchange(open, path, flag)
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			return fail("%v", err)
		}
	}
	fmt.Printf("%d waits on %d FIFOs met their peers under a limit of %d threads\n", n, n, threads)
	return 0
}

// exchange opens path with open and moves one byte through it: it writes one
// if flag is O_WRONLY and reads one otherwise.
func exchange(open func(string, int) (*os.File, error), path string, flag int) error {
	f, err := open(path, flag)
	if err != nil {
		return err
	}
	defer f.Close()
	if flag == os.O_WRONLY {
		_, err = f.Write([]byte{1})
	} else {
		_, err = io.ReadFull(f, make([]byte, 1))
	}
	return err
}

// TestOpenFIFOCreate checks os.O_CREATE: a missing path becomes a FIFO with
// mode 0o600 less the umask, an existing FIFO is used as it is, anything
// else is refused and left untouched, and O_EXCL refuses an existing path.
func TestOpenFIFOCreate(t *testing.T) {
	dir := t.TempDir()
	// open returns OpenFIFO's error after a wait of at most 20 ms: no peer
	// ever comes, so a FIFO it accepts times out.
	open := func(path string, flag int) error {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()
		f, err := pipe.OpenFIFO(ctx, path, flag)
		if f != nil {
			t.Errorf("OpenFIFO(%s, %#x) returned a file with no peer", path, flag)
			f.Close()
		}
		return err
	}
	umask := unix.Umask(0)
	unix.Umask(umask)
	checkNoLeak(t, "OpenFIFO with O_CREATE", func() {
		for _, flag := range []int{os.O_RDONLY, os.O_WRONLY} {
			path := filepath.Join(dir, fmt.Sprint("new", flag))
			if err := open(path, flag|os.O_CREATE); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("flag %#x|O_CREATE, missing path: %v; want to wait for a peer", flag, err)
			}
			fi, err := os.Lstat(path)
			if err != nil || fi.Mode() != os.ModeNamedPipe|0o600&^os.FileMode(umask) {
				t.Fatalf("O_CREATE made %v, %v; want a FIFO with mode %v", fi, err, 0o600&^os.FileMode(umask))
			}
			// Again, on the FIFO now there: the same inode.
			id := fifoID(t, path)
			if err := open(path, flag|os.O_CREATE); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("flag %#x|O_CREATE, existing FIFO: %v; want to wait for a peer", flag, err)
			}
			if fifoID(t, path) != id {
				t.Errorf("O_CREATE replaced an existing FIFO")
			}
			if err := open(path, flag|os.O_CREATE|os.O_EXCL); !errors.Is(err, os.ErrExist) {
				t.Errorf("flag %#x|O_CREATE|O_EXCL, existing FIFO: %v; want os.ErrExist", flag, err)
			}
			path = filepath.Join(dir, fmt.Sprint("excl", flag))
			if err := open(path, flag|os.O_CREATE|os.O_EXCL); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("flag %#x|O_CREATE|O_EXCL, missing path: %v; want to wait for a peer", flag, err)
			}
			if err := open(filepath.Join(dir, "missing", "fifo"), flag|os.O_CREATE); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("flag %#x|O_CREATE in a missing directory: %v; want os.ErrNotExist", flag, err)
			}
		}
		regular := filepath.Join(dir, "regular")
		if err := os.WriteFile(regular, []byte("keep me"), 0o640); err != nil {
			t.Fatal(err)
		}
		flags := []int{os.O_RDONLY, os.O_WRONLY}
		if linux {
			flags = append(flags, os.O_RDWR)
		}
		for _, flag := range flags {
			for _, path := range []string{regular, dir} {
				if err := open(path, flag|os.O_CREATE); !errors.Is(err, syscall.EINVAL) || !strings.Contains(err.Error(), "not a FIFO") {
					t.Errorf("flag %#x|O_CREATE, %s: %v; want not a FIFO", flag, path, err)
				}
			}
		}
		if b, err := os.ReadFile(regular); string(b) != "keep me" || err != nil {
			t.Errorf("the regular file holds %q, %v; want keep me", b, err)
		}
		if fi, err := os.Stat(regular); err != nil || fi.Mode() != 0o640&^os.FileMode(umask) {
			t.Errorf("the regular file's mode is now %v, %v", fi.Mode(), err)
		}
	})
}

// TestOpenFIFOContextBeatsVanishedPath cancels waiting opens and removes
// their FIFO at the same moment: the error is the context's, never the
// missing path's, on either side.
func TestOpenFIFOContextBeatsVanishedPath(t *testing.T) {
	for i := range 40 {
		flag := []int{os.O_RDONLY, os.O_WRONLY}[i%2]
		path := newFIFO(t)
		ctx, cancel := context.WithCancel(t.Context())
		c := goOpenFIFO(t, ctx, path, flag)
		waitFIFOWaits(t, 1)
		if i%4 < 2 {
			cancel()
			os.Remove(path)
		} else {
			os.Remove(path)
			cancel()
		}
		if r := await(t, c, 5*time.Second); !errors.Is(r.err, context.Canceled) {
			t.Fatalf("round %d, flag %#x: %v; want context.Canceled", i, flag, r.err)
		}
	}
}
