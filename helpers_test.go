package pipe_test

// Helpers shared by the test files of every platform. Those that need
// x/sys/unix are in helpers_unix_test.go, those that need Linux in
// helpers_linux_test.go.

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pipe2go/pipe"
)

// helperEnv selects a helper role when the test binary is re-run as a child.
const helperEnv = "PIPE_TEST_HELPER"

// helpers are the roles a re-run test binary can play, registered by the
// test files that need them. Each returns the process exit status.
var helpers = map[string]func() int{}

func TestMain(m *testing.M) {
	if role := os.Getenv(helperEnv); role != "" {
		h, ok := helpers[role]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown helper %q\n", role)
			os.Exit(2)
		}
		os.Exit(h())
	}
	os.Exit(m.Run())
}

// helperCmd returns a command that re-runs the test binary in the given
// role with args, killed when the test ends.
func helperCmd(t testing.TB, role string, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), exe, args...)
	// atexit_sleep_ms=0: a -race binary otherwise sleeps a second on exit.
	cmd.Env = append(os.Environ(), helperEnv+"="+role, "GORACE=atexit_sleep_ms=0")
	return cmd
}

// needProgram skips the test unless the named programs are installed.
func needProgram(t testing.TB, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			t.Skipf("%s is not installed: %v", name, err)
		}
	}
}

// newPipe calls Pipe2 and closes both ends when the test ends. It skips the
// test where the platform lacks what flags ask for. Call it on the test's
// goroutine only: it may stop the test.
func newPipe(t testing.TB, flags int) (r, w *os.File) {
	t.Helper()
	r, w, err := pipe.Pipe2(flags)
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("Pipe2(%#x): %v", flags, err)
	}
	if flags&pipe.O_DIRECT != 0 && errors.Is(err, syscall.EINVAL) {
		t.Skipf("O_DIRECT: %v (needs Linux >= 3.4)", err)
	}
	if err != nil {
		t.Fatalf("Pipe2(%#x): %v", flags, err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// mustWrite writes b to w and fails the test unless all of it was written.
func mustWrite(t testing.TB, w io.Writer, b []byte) {
	t.Helper()
	if n, err := w.Write(b); n != len(b) || err != nil {
		t.Fatalf("Write of %d bytes = %d, %v", len(b), n, err)
	}
}

// testData returns n pseudo-random bytes, the first n of one 64 MiB buffer
// made once per test binary from a logged seed.
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
				seed, _ = strconv.ParseUint(s, 10, 64) // a bad seed is 0: still a seed
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

// feed writes data to w in 1 MiB pieces, then closes it. It stops at the
// first error: the reader then sees less than was sent, which the test
// reports. (The race detector checks the whole remaining buffer at every
// write(2), so one Write of 64 MiB in 64 KiB steps would take it minutes.)
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

// feedForever writes zeros to w from a goroutine until w is closed, which
// happens when the test ends.
func feedForever(t testing.TB, w io.WriteCloser) {
	go func() {
		buf := make([]byte, 1<<20)
		for {
			if _, err := w.Write(buf); err != nil {
				return // closed: the test is over
			}
		}
	}()
	t.Cleanup(func() { w.Close() })
}

// collect reads r to EOF in a goroutine; the returned func waits for it and
// returns what was read, reporting a read error with t.Errorf.
// It reads 64 KiB at a time: the race detector checks the whole buffer
// passed to each read(2), so a growing bytes.Buffer would be slow.
func collect(t testing.TB, r io.Reader) func() []byte {
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

// readWith reads r to EOF with buf, each Read asking for all of buf, and
// returns the bytes read and how many reads returned data. Not
// io.CopyBuffer(io.Discard, r, buf): io.Discard's ReadFrom reads 8 KiB at
// a time whatever buf is.
func readWith(r io.Reader, buf []byte) (n, reads int64, err error) {
	if len(buf) == 0 {
		return 0, 0, errors.New("readWith: empty buffer")
	}
	for {
		m, err := r.Read(buf)
		if m > 0 {
			n += int64(m)
			reads++
		}
		if err == io.EOF {
			return n, reads, nil
		}
		if err != nil {
			return n, reads, err
		}
	}
}

// drainForever reads r, 128 KiB at a time, from a goroutine until r is
// closed, which happens when the test ends.
func drainForever(t testing.TB, r io.ReadCloser) {
	go func() {
		buf := make([]byte, 128<<10)
		for {
			if _, err := r.Read(buf); err != nil {
				return // closed: the test is over
			}
		}
	}()
	t.Cleanup(func() { r.Close() })
}

// second returns the error of a two-result call.
func second[T any](_ T, err error) error { return err }

// blockedCount returns how many goroutines are blocked, parked in the
// runtime poller ("IO wait") or in a system call, with frame (such as
// "pipe.Splice(") on their stack.
func blockedCount(frame string) int {
	return countStacks(frame, "[IO wait", "[syscall")
}

// waitingCount is blockedCount counting also goroutines parked in a
// select, where OpenFIFO waits for a FIFO's other side.
func waitingCount(frame string) int {
	return countStacks(frame, "[IO wait", "[syscall", "[select")
}

// countStacks returns how many goroutines have frame on their stack and a
// header (such as "goroutine 7 [IO wait]:") holding one of states.
func countStacks(frame string, states ...string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		for _, state := range states {
			if strings.Contains(header, state) && strings.Contains(g, frame) {
				count++
				break
			}
		}
	}
	return count
}

// waitBlocked waits until some goroutine is blocked with frame on its
// stack (see blockedCount). A test that closes or times out a call must
// first see it blocked, or it may test the call's start instead.
func waitBlocked(t testing.TB, frame string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); blockedCount(frame) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no goroutine blocked in %s within 10s", frame)
		}
	}
}

// checkCloseWakes starts call, waits until it is blocked with frame on its
// stack, closes victim, and checks that call returns os.ErrClosed within a
// second.
func checkCloseWakes(t *testing.T, frame string, call func() error, victim io.Closer) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	waitBlocked(t, frame)
	victim.Close()
	checkReturns(t, done, os.ErrClosed)
}

// checkReturns waits up to a second for a blocked call's error and checks
// that it matches want.
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

// tail returns the last 2000 bytes of a helper's output.
func tail(b []byte) string {
	s := string(b)
	if len(s) > 2000 {
		s = s[len(s)-2000:]
	}
	return s
}
