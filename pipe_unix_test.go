//go:build unix

package pipe_test

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pipe2go/pipe"
	"golang.org/x/sys/unix"
)

func init() {
	helpers["pipe-fds"] = helperPipeFDs
	helpers["emfile"] = helperEMFILE
	helpers["readers"] = helperReaders
}

// checkFlags fails the test unless r and w carry exactly the flags asked for.
// The kernel reports O_DIRECT on the write end only.
func checkFlags(t testing.TB, r, w *os.File, flags int) {
	t.Helper()
	for _, f := range []*os.File{r, w} {
		cloexec := fcntlGet(t, f, unix.F_GETFD)&unix.FD_CLOEXEC != 0
		fl := fcntlGet(t, f, unix.F_GETFL)
		if want := flags&pipe.O_CLOEXEC != 0; cloexec != want {
			t.Errorf("flags %#x: %s FD_CLOEXEC = %v; want %v", flags, f.Name(), cloexec, want)
		}
		if got, want := fl&unix.O_NONBLOCK != 0, flags&pipe.O_NONBLOCK != 0; got != want {
			t.Errorf("flags %#x: %s O_NONBLOCK = %v; want %v", flags, f.Name(), got, want)
		}
		if runtime.GOOS == "linux" && f == w {
			if got, want := fl&pipe.O_DIRECT != 0, flags&pipe.O_DIRECT != 0; got != want {
				t.Errorf("flags %#x: %s O_DIRECT = %v; want %v", flags, f.Name(), got, want)
			}
		}
	}
}

func TestWriteWithoutReaderIsEPIPE(t *testing.T) {
	for _, flags := range []int{pipe.O_CLOEXEC, pipe.O_CLOEXEC | pipe.O_NONBLOCK} {
		t.Run(fmt.Sprintf("flags=%#x", flags), func(t *testing.T) {
			r, w := newPipe(t, flags)
			r.Close()
			// Go raises SIGPIPE only for fds 1 and 2, so the process lives on.
			for i := 0; i < 20; i++ {
				n, err := w.Write([]byte("x"))
				if n != 0 || !errors.Is(err, syscall.EPIPE) {
					t.Fatalf("write %d: %d, %v; want 0, EPIPE", i, n, err)
				}
			}
		})
	}
}

func TestPipe2Flags(t *testing.T) {
	for _, flags := range flagSets() {
		t.Run(fmt.Sprintf("flags=%#x", flags), func(t *testing.T) {
			r, w := newPipe(t, flags)
			checkFlags(t, r, w, flags)
		})
	}
}

func TestFdKeepsNonblock(t *testing.T) {
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	for _, f := range []*os.File{r, w} {
		// os.Pipe's files would turn blocking here.
		if fd := f.Fd(); fd != uintptr(fdOf(t, f)) {
			t.Errorf("%s.Fd() = %d; SyscallConn says %d", f.Name(), fd, fdOf(t, f))
		}
	}
	checkFlags(t, r, w, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	// And the poller still serves r: a deadline works.
	if err := r.SetReadDeadline(time.Now().Add(10 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read after Fd: %v; want os.ErrDeadlineExceeded", err)
	}
}

func TestSetNonblock(t *testing.T) {
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	if err := pipe.SetNonblock(r, false); err != nil {
		t.Fatal(err)
	}
	if fcntlGet(t, r, unix.F_GETFL)&unix.O_NONBLOCK != 0 {
		t.Error("SetNonblock(r, false) left O_NONBLOCK set")
	}
	if fcntlGet(t, w, unix.F_GETFL)&unix.O_NONBLOCK == 0 {
		t.Error("SetNonblock(r, false) cleared O_NONBLOCK on the other end")
	}
	if err := pipe.SetNonblock(r, true); err != nil {
		t.Fatal(err)
	}
	if fcntlGet(t, r, unix.F_GETFL)&unix.O_NONBLOCK == 0 {
		t.Error("SetNonblock(r, true) left O_NONBLOCK clear")
	}
}

func TestNoFDLeak(t *testing.T) {
	checkNoLeak(t, "1000 create/close cycles", func() {
		for i := 0; i < 1000; i++ {
			flags := flagSets()[i%8]
			r, w, err := pipe.Pipe2(flags)
			if err != nil {
				if flags&pipe.O_DIRECT != 0 {
					continue // kernel or platform without packet mode; checked elsewhere
				}
				t.Fatal(err)
			}
			r.Close()
			w.Close()
		}
	})
	checkNoLeak(t, "unknown flags", func() {
		if _, _, err := pipe.Pipe2(-1); err == nil {
			t.Error("Pipe2(-1) succeeded")
		}
	})
	checkNoLeak(t, "SetNonblock on a closed file", func() {
		r, w, err := pipe.Pipe2(pipe.O_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
		w.Close()
		if err := pipe.SetNonblock(r, true); err == nil {
			t.Error("SetNonblock on a closed file succeeded")
		}
	})
}

// TestEMFILE runs a helper that lowers RLIMIT_NOFILE, fills the table and
// checks that Pipe2 then fails with EMFILE and opens nothing.
func TestEMFILE(t *testing.T) {
	out, err := helperCmd(t, "emfile").CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
}

func helperEMFILE() int {
	fail := func(format string, args ...any) int {
		fmt.Printf(format+"\n", args...)
		return 1
	}
	warm, w0, err := pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_NONBLOCK)
	if err != nil {
		return fail("warm-up: %v", err)
	}
	warm.Close()
	w0.Close()
	const limit = 64
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
		return fail("setrlimit: %v", err)
	}
	var files []*os.File
	for {
		r, w, err := pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_NONBLOCK)
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) {
				return fail("Pipe2 at the limit: %v; want EMFILE", err)
			}
			break
		}
		files = append(files, r, w)
		if len(files) > limit {
			return fail("created %d files under a limit of %d", len(files), limit)
		}
	}
	// Try with no free slot and with exactly one: either way nothing opens.
	for i := 0; i < 2; i++ {
		before := openFDs()
		_, _, err := pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_NONBLOCK)
		var se *os.SyscallError
		if !errors.Is(err, syscall.EMFILE) || !errors.As(err, &se) {
			return fail("Pipe2 with %d free slots: %v; want an *os.SyscallError matching EMFILE", limit-len(before), err)
		}
		if after := openFDs(); !slices.Equal(before, after) {
			return fail("failed Pipe2 changed open fds from %v to %v", before, after)
		}
		if free := limit - len(before); free == 0 {
			files[0].Close()
		} else if free > 1 {
			return fail("%d free slots, yet Pipe2 failed", free)
		}
	}
	return 0
}

// helperPipeFDs prints the device:inode of every pipe among the helper's
// first 1024 descriptors, one a line: the pipes the helper inherited.
func helperPipeFDs() int {
	for fd := 0; fd < 1024; fd++ {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFIFO {
			fmt.Printf("%d:%d\n", st.Dev, st.Ino)
		}
	}
	return 0
}

// childPipes runs the pipe-fds helper and returns the pipes it inherited.
func childPipes(t testing.TB) map[string]bool {
	t.Helper()
	out, err := helperCmd(t, "pipe-fds").Output()
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Fields(string(out)) {
		seen[line] = true
	}
	return seen
}

func TestCloseOnExec(t *testing.T) {
	for _, flags := range []int{0, pipe.O_NONBLOCK, pipe.O_CLOEXEC, pipe.O_CLOEXEC | pipe.O_NONBLOCK} {
		t.Run(fmt.Sprintf("flags=%#x", flags), func(t *testing.T) {
			r, _ := newPipe(t, flags)
			inherited := childPipes(t)[pipeID(t, r)]
			if want := flags&pipe.O_CLOEXEC == 0; inherited != want {
				t.Errorf("child inherited the pipe: %v; want %v", inherited, want)
			}
		})
	}
}

// TestCloseOnExecConcurrentForks creates O_CLOEXEC pipes in several
// goroutines while children start, and checks that no child inherits one.
// On darwin and aix this tests the ForkLock emulation.
func TestCloseOnExecConcurrentForks(t *testing.T) {
	var (
		mu    sync.Mutex
		ours  = map[string]bool{}
		stop  = make(chan struct{})
		wg    sync.WaitGroup
		errMu sync.Mutex
		gErr  error
	)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, w, err := pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_NONBLOCK)
				var id string
				if err == nil {
					id, err = pipeIDOf(r) // not pipeID: t.Fatal belongs to the test's goroutine
				}
				if err != nil {
					errMu.Lock()
					gErr = err
					errMu.Unlock()
					if r != nil {
						r.Close()
						w.Close()
					}
					return
				}
				mu.Lock()
				ours[id] = true
				mu.Unlock()
				time.Sleep(100 * time.Microsecond) // hold it open across forks
				r.Close()
				w.Close()
			}
		}()
	}
	var leaked []string
	for i := 0; i < 20; i++ {
		inherited := childPipes(t)
		mu.Lock()
		for id := range inherited {
			if ours[id] {
				leaked = append(leaked, id)
			}
		}
		mu.Unlock()
	}
	close(stop)
	wg.Wait()
	if gErr != nil {
		t.Fatal(gErr)
	}
	if len(ours) < 20 {
		t.Fatalf("only %d pipes were created during the forks", len(ours))
	}
	if len(leaked) > 0 {
		t.Errorf("children inherited O_CLOEXEC pipes %v (of %d created)", leaked, len(ours))
	}
}

// TestBlockedReadersUseNoThreads blocks 100 readers on empty O_NONBLOCK
// pipes in a helper whose thread limit is far below 100. The control run,
// with blocking pipes, must die of thread exhaustion, which shows the limit
// bites.
func TestBlockedReadersUseNoThreads(t *testing.T) {
	out, err := helperCmd(t, "readers", "nonblock").CombinedOutput()
	if err != nil {
		t.Fatalf("100 readers on O_NONBLOCK pipes: %v\n%s", err, out)
	}
	if testing.Short() {
		return
	}
	out, err = helperCmd(t, "readers", "block").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "thread exhaustion") {
		t.Errorf("control with blocking pipes did not exhaust threads: %v\n%s", err, tail(out))
	}
}

func helperReaders() int {
	flags := pipe.O_CLOEXEC | pipe.O_NONBLOCK
	if len(os.Args) > 1 && os.Args[1] == "block" {
		flags = pipe.O_CLOEXEC
	}
	const readers = 100
	limit := pprof.Lookup("threadcreate").Count() + 30
	debug.SetMaxThreads(limit)
	var ws []*os.File
	done := make(chan error, readers)
	for i := 0; i < readers; i++ {
		r, w, err := pipe.Pipe2(flags)
		if err != nil {
			fmt.Println(err)
			return 1
		}
		ws = append(ws, w)
		go func() {
			b := make([]byte, 1)
			_, err := r.Read(b)
			done <- err
		}()
	}
	// Let every reader block: with blocking pipes each holds a thread, and
	// the process dies of thread exhaustion here.
	for deadline := time.Now().Add(10 * time.Second); blockedCount("helperReaders") < readers; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			fmt.Printf("only %d of %d readers blocked within 10s\n", blockedCount("helperReaders"), readers)
			return 1
		}
	}
	for _, w := range ws {
		if _, err := w.Write([]byte{1}); err != nil {
			fmt.Println(err)
			return 1
		}
	}
	for i := 0; i < readers; i++ {
		if err := <-done; err != nil {
			fmt.Println(err)
			return 1
		}
	}
	fmt.Printf("%d readers woke; thread limit %d\n", readers, limit)
	return 0
}

// FuzzPipe2Flags checks that any flags value either gives a pipe with
// exactly those flags or an error with no descriptor left open.
func FuzzPipe2Flags(f *testing.F) {
	for _, flags := range flagSets() {
		f.Add(flags)
	}
	for _, flags := range []int{-1, unix.O_EXCL, unix.O_APPEND, unix.O_RDWR, math.MinInt32, int(^uint(0) >> 1)} {
		f.Add(flags)
	}
	f.Fuzz(func(t *testing.T, flags int) {
		before := openFDs()
		r, w, err := pipe.Pipe2(flags)
		if err != nil {
			if r != nil || w != nil {
				t.Fatalf("Pipe2(%#x) returned files with error %v", flags, err)
			}
			if after := openFDs(); !slices.Equal(before, after) {
				t.Fatalf("failed Pipe2(%#x) changed open fds from %v to %v", flags, before, after)
			}
			known := flags&^(pipe.O_CLOEXEC|pipe.O_NONBLOCK|pipe.O_DIRECT) == 0
			if !known && !errors.Is(err, syscall.EINVAL) {
				t.Fatalf("Pipe2(%#x): %v; want EINVAL", flags, err)
			}
			if known && flags&pipe.O_DIRECT == 0 {
				t.Fatalf("Pipe2(%#x): %v", flags, err)
			}
			return
		}
		checkFlags(t, r, w, flags)
		r.Close()
		w.Close()
		if after := openFDs(); !slices.Equal(before, after) {
			t.Fatalf("Pipe2(%#x) + Close changed open fds from %v to %v", flags, before, after)
		}
	})
}
