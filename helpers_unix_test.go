//go:build unix

package pipe_test

// Helpers shared by the test files of the Unix platforms.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/pipe2go/pipe"
	"golang.org/x/sys/unix"
)

// fdOf returns f's descriptor through SyscallConn, which, unlike Fd, cannot
// change its blocking mode.
func fdOf(t testing.TB, f *os.File) int {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	if err := rc.Control(func(u uintptr) { fd = int(u) }); err != nil {
		t.Fatal(err)
	}
	return fd
}

// fcntlGet returns fcntl(fd, cmd) for F_GETFL or F_GETFD.
func fcntlGet(t testing.TB, f *os.File, cmd int) int {
	t.Helper()
	v, err := unix.FcntlInt(uintptr(fdOf(t, f)), cmd, 0)
	if err != nil {
		t.Fatalf("fcntl(%s): %v", f.Name(), err)
	}
	return v
}

// rawWrite makes one write(2) on f through SyscallConn, without waiting in
// the poller: a full non-blocking pipe gives EAGAIN here, where f.Write
// would wait.
func rawWrite(t testing.TB, f *os.File, b []byte) (n int, err error) {
	t.Helper()
	rc, cerr := f.SyscallConn()
	if cerr != nil {
		t.Fatal(cerr)
	}
	if cerr := rc.Write(func(fd uintptr) bool {
		n, err = unix.Write(int(fd), b)
		n = max(n, 0) // unix.Write gives -1 with an error
		return true
	}); cerr != nil {
		t.Fatal(cerr)
	}
	return n, err
}

// fill writes to w until its pipe is full, leaving w's blocking mode as it
// was.
func fill(t testing.TB, w *os.File) {
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

// stalled returns a pipe write end that is full and that nobody reads.
func stalled(t testing.TB) *os.File {
	t.Helper()
	_, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	fill(t, w)
	return w
}

// defaultCapacity returns the capacity of a new pipe: 16 pages unless the
// user is past pipe-user-pages-soft, and not known where Capacity is not
// supported, where it returns 64 KiB.
func defaultCapacity(t testing.TB) int {
	t.Helper()
	r, _ := newPipe(t, pipe.O_CLOEXEC)
	c, err := pipe.Capacity(r)
	if errors.Is(err, errors.ErrUnsupported) {
		return 64 << 10
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// openFDs returns the open descriptors below 1024, found with fcntl(F_GETFD)
// so that looking opens nothing.
func openFDs() []int {
	var fds []int
	for fd := 0; fd < 1024; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
			fds = append(fds, fd)
		}
	}
	return fds
}

// checkNoLeak runs f and fails the test if the set of open descriptors
// differs afterwards. Tests using it must not run in parallel.
func checkNoLeak(t *testing.T, what string, f func()) {
	t.Helper()
	// Warm up the runtime poller, which opens descriptors of its own once.
	r, w, err := pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	w.Close()
	// The standard library keeps a pool of pipes for its own splicing
	// (io.Copy between sockets and files), and Copy one of its own, which
	// a GC empties by closing them from finalizers and cleanups: collect
	// until the open descriptors stay the same three rounds in a row, so
	// that no such close lands during f.
	runtime.GC() // a sync.Pool lets go of its items in the second collection
	before := openFDs()
	for stable, round := 0, 0; stable < 3 && round < 200; round++ {
		runtime.GC()
		time.Sleep(5 * time.Millisecond) // finalizers and cleanups run on goroutines of their own
		now := openFDs()
		if slices.Equal(before, now) {
			stable++
		} else {
			stable = 0
		}
		before = now
	}
	f()
	if after := openFDs(); !slices.Equal(before, after) {
		t.Errorf("%s: open fds changed from %v to %v", what, before, after)
	}
}

// pipeIDOf returns the device and inode that identify the pipe behind f.
func pipeIDOf(f *os.File) (string, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return "", err
	}
	var st unix.Stat_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Fstat(int(fd), &st) }); err != nil {
		return "", err
	}
	if serr != nil {
		return "", serr
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino), nil
}

// pipeID is pipeIDOf for the test's goroutine: it fails the test on error.
func pipeID(t testing.TB, f *os.File) string {
	t.Helper()
	id, err := pipeIDOf(f)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// cpuTime returns the process's user and system time so far.
func cpuTime(t testing.TB) time.Duration {
	t.Helper()
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// checkIdle measures the CPU time the whole process uses over d while
// something waits, and fails the test if it used more than a quarter of the
// wall time that passed, twice in a row. A loop that spins burns a core,
// close to all of the time, in every window; one that parks, close to none.
// The bound leaves room for the race detector and a busy machine, which
// only lower what a spinning loop gets. The garbage collector's work is
// done before the window (runtime.GC), and a window that still runs over
// is measured again: with the whole suite under -race -count=10, three
// tests failed in 20 runs (50-105 ms of CPU in windows of 200-300), where
// a spin is over in every window.
func checkIdle(t testing.TB, what string, d time.Duration) {
	t.Helper()
	runtime.GC()
	for try := 1; ; try++ {
		start, before := time.Now(), cpuTime(t)
		time.Sleep(d)
		used, elapsed := cpuTime(t)-before, time.Since(start)
		t.Logf("%s: the process used %v of CPU in %v", what, used, elapsed)
		if used <= elapsed/4 {
			return
		}
		if try == 2 {
			t.Errorf("%s: the process used %v of CPU in %v, in two windows in a row: something spins", what, used, elapsed)
			return
		}
	}
}

// waitProcessBlocked waits until the process is asleep, blocked in a
// system call such as read(2) or open(2), or has exited, as /proc/<pid>/stat
// tells. Where there is no /proc it returns at once: tests use it only to
// make a bug visible or a case likely, never to be correct.
func waitProcessBlocked(t testing.TB, pid int) {
	t.Helper()
	const limit = time.Minute
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		// "pid (comm) state ...", and comm may hold spaces and parentheses.
		if i := bytes.LastIndexByte(b, ')'); i > 0 && i+2 < len(b) && (b[i+2] == 'S' || b[i+2] == 'Z') {
			return
		}
	}
	t.Logf("process %d did not block within %v", pid, limit)
}

// connPair returns both ends of a stream connection on network, from a
// listener on addr, closed when the test ends.
func connPair(t testing.TB, network, addr string) (dialed, accepted net.Conn) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		c   net.Conn
		err error
	}
	acc := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		acc <- result{c, err}
	}()
	c, err := net.Dial(network, ln.Addr().String())
	if err != nil {
		ln.Close() // ends the Accept
		if a := <-acc; a.c != nil {
			a.c.Close()
		}
		t.Fatal(err)
	}
	a := <-acc
	if a.err != nil {
		c.Close()
		t.Fatal(a.err)
	}
	t.Cleanup(func() { c.Close(); a.c.Close() })
	return c, a.c
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t testing.TB) (a, b *net.TCPConn) {
	t.Helper()
	c, s := connPair(t, "tcp", "127.0.0.1:0")
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// unixPair returns both ends of a Unix stream connection.
func unixPair(t testing.TB) (a, b *net.UnixConn) {
	t.Helper()
	c, s := connPair(t, "unix", filepath.Join(t.TempDir(), "sock"))
	return c.(*net.UnixConn), s.(*net.UnixConn)
}

// halfCloser's Close shuts down only the sending side of a connection: the
// peer reads EOF and can still send.
type halfCloser struct {
	io.Writer
	closeWrite func() error
}

func (h halfCloser) Close() error { return h.closeWrite() }

// devNull opens /dev/null for writing, closed when the test ends.
func devNull(t testing.TB) *os.File {
	t.Helper()
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// tempFile creates an empty file in the test's temporary directory, closed
// when the test ends.
func tempFile(t testing.TB, name string) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// dropToNobody makes the process user and group nobody if it runs as root,
// which also drops every capability.
func dropToNobody() error {
	const nobody = 65534
	if os.Geteuid() != 0 {
		return nil
	}
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(nobody); err != nil {
		return fmt.Errorf("setgid: %w", err)
	}
	if err := syscall.Setuid(nobody); err != nil {
		return fmt.Errorf("setuid: %w", err)
	}
	return nil
}

// childPIDs returns, sorted, the process IDs of this process's children,
// running or exited and not yet reaped, from the parent field of every
// /proc/<pid>/stat. ok is false where there is no such /proc.
func childPIDs(t testing.TB) (pids []int, ok bool) {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, false
	}
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		return nil, false
	}
	me := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited and reaped meanwhile
		}
		// "pid (comm) state ppid ...", and comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		var state string
		var ppid int
		if i < 0 {
			continue
		}
		if _, err := fmt.Sscan(string(b[i+1:]), &state, &ppid); err == nil && ppid == me {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids, true
}
