package pipe_test

// Helpers shared by the Linux test files: the kinds of sources and sinks a
// transfer (Splice, Copy, io.Copy) moves data between, used by the tests and
// the benchmarks alike, and a count of read system calls.

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pipe2go/pipe"
	"golang.org/x/sys/unix"
)

// A source is a kind of reader a transfer takes data from. open returns one
// that yields data and then EOF or, for a nil data, zeros without end (for
// benchmarks, which take what they need through an io.LimitReader);
// rewind readies it for the next benchmark operation.
type source struct {
	name string
	open func(t testing.TB, data []byte) (r io.Reader, rewind func())
}

// A sink is a kind of writer a transfer puts data into. open returns one,
// and done, which closes its writing side and returns what arrived: nil
// where nothing is kept (/dev/null, and every sink opened with keep false,
// whose reader discards what it reads, as benchmarks need); rewind readies
// it for the next benchmark operation.
type sink struct {
	name string
	open func(t testing.TB, keep bool) (w io.Writer, done func() []byte, rewind func())
}

func nop() {}

var (
	// srcPipe is a pipe fed by a goroutine of this process.
	srcPipe = source{"pipe", func(t testing.TB, data []byte) (io.Reader, func()) {
		if data == nil {
			r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			feedForever(t, w)
			return r, nop
		}
		return pipeSource(t, data), nop
	}}
	// srcChild is a pipe fed by a child process, `cat`, through a blocking
	// write end: the workload of a program reading a child's output. The
	// read end is the same as srcPipe's; the writer does not share this
	// process's CPU time, which matters to benchmarks.
	srcChild = source{"child-pipe", func(t testing.TB, data []byte) (io.Reader, func()) {
		needProgram(t, "cat")
		name := "/dev/zero"
		if data != nil {
			name = fileWith(t, data).Name()
		}
		r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
		if err := pipe.SetNonblock(w, false); err != nil { // the child's end
			t.Fatal(err)
		}
		cmd := exec.CommandContext(t.Context(), "cat", name)
		cmd.Stdout = w
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		// The test's context is done by then: cat of /dev/zero is killed.
		t.Cleanup(func() { r.Close(); _ = cmd.Wait() })
		return r, nop
	}}
	// srcFile is a regular file, read from its start; for a benchmark, one
	// of 64 MiB of zeros.
	srcFile = source{"file", func(t testing.TB, data []byte) (io.Reader, func()) {
		if data == nil {
			data = make([]byte, 64<<20)
		}
		f := fileWith(t, data)
		return f, func() {
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				t.Fatal(err)
			}
		}
	}}
	// srcTCP is a loopback TCP socket whose peer sends data, then shuts
	// down its sending side.
	srcTCP = source{"tcp", func(t testing.TB, data []byte) (io.Reader, func()) {
		peer, c := tcpPair(t)
		if data == nil {
			feedForever(t, peer)
		} else {
			go feed(halfCloser{peer, peer.CloseWrite}, data)
		}
		return c, nop
	}}
	// srcUnix is srcTCP for a Unix stream socket.
	srcUnix = source{"unix", func(t testing.TB, data []byte) (io.Reader, func()) {
		peer, c := unixPair(t)
		if data == nil {
			feedForever(t, peer)
		} else {
			go feed(halfCloser{peer, peer.CloseWrite}, data)
		}
		return c, nop
	}}

	// dstPipe is a pipe whose reader is a goroutine of this process.
	dstPipe = sink{"pipe", func(t testing.TB, keep bool) (io.Writer, func() []byte, func()) {
		if keep {
			w, done := pipeSink(t)
			return w, done, nop
		}
		r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
		drainForever(t, r)
		return w, func() []byte { w.Close(); return nil }, nop
	}}
	// dstFile is a regular file; a benchmark writes each operation from its
	// start.
	dstFile = sink{"file", func(t testing.TB, keep bool) (io.Writer, func() []byte, func()) {
		f := tempFile(t, "dst")
		done := func() []byte {
			if !keep {
				return nil
			}
			b, err := os.ReadFile(f.Name())
			if err != nil {
				t.Errorf("reading the sink: %v", err) // done may run off the test's goroutine
			}
			return b
		}
		return f, done, func() {
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				t.Fatal(err)
			}
		}
	}}
	// dstNull is /dev/null.
	dstNull = sink{"devnull", func(t testing.TB, _ bool) (io.Writer, func() []byte, func()) {
		return devNull(t), func() []byte { return nil }, nop
	}}
	// dstTCP is a loopback TCP socket whose peer reads.
	dstTCP = sink{"tcp", func(t testing.TB, keep bool) (io.Writer, func() []byte, func()) {
		c, peer := tcpPair(t)
		return c, socketReader(t, peer, keep, c.CloseWrite), nop
	}}
	// dstUnix is dstTCP for a Unix stream socket.
	dstUnix = sink{"unix", func(t testing.TB, keep bool) (io.Writer, func() []byte, func()) {
		c, peer := unixPair(t)
		return c, socketReader(t, peer, keep, c.CloseWrite), nop
	}}
)

// socketReader reads what arrives at peer, to keep or to discard, and
// returns the sink's done func.
func socketReader(t testing.TB, peer io.ReadCloser, keep bool, closeWrite func() error) func() []byte {
	if !keep {
		drainForever(t, peer)
		return func() []byte { _ = closeWrite(); return nil } // the reader discards: nothing to check
	}
	got := collect(t, peer)
	return func() []byte {
		if err := closeWrite(); err != nil {
			t.Errorf("shutting down the sink: %v", err)
		}
		return got()
	}
}

// pairings are the transfers that TestSpliceIntegrity and TestCopyIntegrity
// (test) and BenchmarkCopy (bench) run. A pipe source is fed by a goroutine
// in the tests, which then need no other program, and by a child process in
// the benchmarks, as programs mostly get their pipes and so that feeding it
// takes none of this process's CPU time; Splice and Copy see the same
// non-blocking read end either way. The tests leave out the child and Unix
// socket rows, which take the same paths as the pipe and TCP rows, to stay
// within CI's time: 64 MiB under the race detector takes seconds a row.
var pairings = []struct {
	src         source
	dst         sink
	test, bench bool
}{
	{srcPipe, dstPipe, true, false},
	{srcPipe, dstFile, true, false},
	{srcPipe, dstTCP, true, false},
	{srcPipe, dstNull, true, false},
	{srcFile, dstPipe, true, true},
	{srcTCP, dstPipe, true, true},
	{srcUnix, dstPipe, false, true},
	{srcChild, dstFile, false, true},
	{srcChild, dstNull, false, true},
	{srcChild, dstPipe, false, true},
	{srcChild, dstTCP, false, true},
	{srcChild, dstUnix, false, true},
}

// pipeSource returns a pipe's read end, fed data by a goroutine.
func pipeSource(t testing.TB, data []byte) *os.File {
	t.Helper()
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	go feed(w, data)
	return r
}

// loadedSource returns both ends of a pipe that already holds 4 KiB of test
// data, written before it returns; the ends are closed when the test ends,
// and a test that wants end of file after the data closes w. A test that wants a call to wait on the other side uses it
// rather than pipeSource: a feeding goroutine may not have run when the call
// starts, which then waits on the empty source instead. 4 KiB fits any
// pipe, even one shrunk to a page past pipe-user-pages-soft, so the write
// cannot wait.
func loadedSource(t testing.TB) (r, w *os.File) {
	t.Helper()
	r, w = newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	mustWrite(t, w, testData(t, 4096))
	return r, w
}

// loadConn makes peer send n bytes to c and returns once all of them are
// in c's receive queue, so that a call reading c finds them there rather
// than waiting on c. n must fit the socket buffers (64 KiB does).
func loadConn(t testing.TB, peer io.Writer, c syscall.Conn, n int) {
	t.Helper()
	mustWrite(t, peer, testData(t, n))
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		queued, qerr := 0, error(nil)
		if err := rc.Control(func(fd uintptr) { queued, qerr = unix.IoctlGetInt(int(fd), unix.TIOCINQ) }); err != nil || qerr != nil {
			t.Fatal(err, qerr)
		}
		if queued >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of the %d bytes sent reached the socket's receive queue within 10s", queued, n)
		}
	}
}

// pipeSink returns a pipe's write end, read by a goroutine; done closes it
// and returns what arrived.
func pipeSink(t testing.TB) (w *os.File, done func() []byte) {
	t.Helper()
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	got := collect(t, r)
	return w, func() []byte { w.Close(); return got() }
}

// fileWith returns a regular file holding data, open for reading at its
// start and closed when the test ends.
func fileWith(t testing.TB, data []byte) *os.File {
	t.Helper()
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

// readSyscalls returns the read system calls that f makes on the calling
// goroutine (syscr in /proc/thread-self/io, with the goroutine locked to its
// thread while f runs). splice(2) does not count as one; read(2) does.
// Reads by other goroutines, such as a test's feeder or one left over from
// an earlier test, do not count: counting the whole process (/proc/self/io),
// one go test -race -count=10 saw 29 reads during a spliced Copy.
func readSyscalls(t testing.TB, f func()) int {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := threadSyscr(t)
	f()
	return threadSyscr(t) - before
}

// threadSyscr returns syscr from /proc/thread-self/io.
func threadSyscr(t testing.TB) int {
	t.Helper()
	b, err := os.ReadFile("/proc/thread-self/io")
	if err != nil {
		t.Skipf("/proc/thread-self/io: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "syscr: "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("syscr in /proc/thread-self/io: %v", err)
			}
			return n
		}
	}
	t.Skip("no syscr in /proc/thread-self/io")
	return 0
}

// noMoreCPUThanWrite measures a Write round and then a Commit round (each
// returns the CPU time it used), rounds times, and fails the test only if
// Commit used more than 1.5 times its Write round (plus 5 ms) in every
// pair. A spin costs CPU in every round; the machine sometimes doubles the
// CPU time of whatever runs for a second or two (one go test -race -count=10
// saw Write rounds of 75 and 203 ms back to back, and the Commit rounds
// after the bad one 139 and 153), so rounds taken in turn, and judged in
// pairs, tell a spin from a bad moment.
func noMoreCPUThanWrite(t *testing.T, what string, rounds int, write, commit func() time.Duration) {
	t.Helper()
	noMoreCPUThan(t, what, "Write", "Commit", rounds, write, commit)
}

// noMoreCPUThan is noMoreCPUThanWrite for any two ways of doing the same
// job, named in the failure: plain's rounds, then ours'.
func noMoreCPUThan(t *testing.T, what, plainName, oursName string, rounds int, plain, ours func() time.Duration) {
	t.Helper()
	var pairs []string
	for range rounds {
		p, o := plain(), ours()
		limit := p*3/2 + 5*time.Millisecond
		pairs = append(pairs, fmt.Sprintf("%s %v, %s %v", oursName, o, plainName, p))
		if o <= limit {
			return
		}
	}
	t.Errorf("%s: %s used more than 1.5 times %s's CPU time (plus 5 ms) in each of %d pairs of rounds, it spins: %s",
		what, oursName, plainName, rounds, strings.Join(pairs, "; "))
}
