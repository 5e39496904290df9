//go:build unix

package pipe_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pipe2go/pipe"
	"golang.org/x/sys/unix"
)

func init() {
	helpers["cmd-fds"] = helperCmdFDs
}

// bound is how long a test waits for a child: the child is killed then,
// and reads and writes of its pipes time out, so that a regression fails the
// test rather than hanging it.
const bound = 2 * time.Minute

// command returns pipe.CommandContext(t.Context(), ...) killed after bound.
func command(t *testing.T, name string, arg ...string) *pipe.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), bound)
	t.Cleanup(cancel)
	return pipe.CommandContext(ctx, name, arg...)
}

// helperCommand returns a command that re-runs the test binary in role.
func helperCommand(t *testing.T, role string) *pipe.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := command(t, exe)
	// atexit_sleep_ms=0: a -race binary otherwise sleeps a second on exit.
	c.Env = append(os.Environ(), helperEnv+"="+role, "GORACE=atexit_sleep_ms=0")
	return c
}

// start starts c and makes sure it is waited for when the test ends.
func start(t *testing.T, c *pipe.Cmd) {
	t.Helper()
	if err := c.Start(); err != nil {
		t.Fatalf("Start %s: %v", c, err)
	}
	t.Cleanup(func() {
		if c.ProcessState == nil {
			c.Process.Kill()
			c.Wait()
		}
	})
}

// end calls a pipe method such as c.StdoutPipe and returns the parent's end
// with its deadline bound away, closed when the test ends.
func end(t *testing.T, pipeMethod func() (*os.File, error)) *os.File {
	t.Helper()
	f, err := pipeMethod()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	f.SetDeadline(time.Now().Add(bound))
	return f
}

// pipes gives c a StdinPipe and a StdoutPipe, as end does.
func pipes(t *testing.T, c *pipe.Cmd) (in, out *os.File) {
	t.Helper()
	return end(t, c.StdinPipe), end(t, c.StdoutPipe)
}

// writeAfterBlocked writes data to w once the command reads from an empty
// pipe, then closes w; errors go to errc.
func writeAfterBlocked(t *testing.T, c *pipe.Cmd, w *os.File, data []byte) <-chan error {
	t.Helper()
	waitProcessBlocked(t, c.Process.Pid)
	errc := make(chan error, 1)
	go func() {
		_, err := w.Write(data)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		errc <- err
	}()
	return errc
}

// TestCommandPrograms feeds real programs through StdinPipe and reads
// StdoutPipe, writing only once each program waits in read(2): a program
// handed a non-blocking end would see EAGAIN there and fail (cat, sort, wc)
// or lose the input silently (dash's read, python3's sys.stdin.read).
func TestCommandPrograms(t *testing.T) {
	lines := func(n int) []byte {
		var b bytes.Buffer
		for i := n; i > 0; i-- {
			fmt.Fprintf(&b, "line %06d\n", i)
		}
		return b.Bytes()
	}
	big := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{'c', 'm', 'd'}).Read(big)
	for _, p := range []struct {
		name string
		args []string
		in   []byte
		want func([]byte) bool
	}{
		{"cat", []string{"cat"}, big, func(out []byte) bool { return bytes.Equal(out, big) }},
		{"sort", []string{"sort"}, lines(100000), func(out []byte) bool {
			s := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
			return len(s) == 100000 && slices.IsSorted(s)
		}},
		{"wc", []string{"wc", "-c"}, big, func(out []byte) bool { return strings.TrimSpace(string(out)) == strconv.Itoa(len(big)) }},
		{"sh", []string{"sh", "-c", "read x; echo \"[$x]\""}, []byte("a line\n"), func(out []byte) bool { return string(out) == "[a line]\n" }},
		{"python3", []string{"python3", "-c", "import sys; d = sys.stdin.buffer.read(); sys.stdout.write(str(len(d)))"}, big,
			func(out []byte) bool { return string(out) == strconv.Itoa(len(big)) }},
	} {
		t.Run(p.name, func(t *testing.T) {
			needProgram(t, p.args[0])
			c := command(t, p.args[0], p.args[1:]...)
			in, out := pipes(t, c)
			start(t, c)
			errc := writeAfterBlocked(t, c, in, p.in)
			got, err := io.ReadAll(out)
			if err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Errorf("writing: %v", err)
			}
			if err := c.Wait(); err != nil {
				t.Errorf("%s: %v", p.name, err)
			}
			if !p.want(got) {
				t.Errorf("%s wrote %d bytes: %.200q", p.name, len(got), got)
			}
		})
	}
}

// TestCmdReadAfterWait reads standard output and standard error after Wait
// (and after Run), which exec.Cmd's pipes do not allow: Wait closes them.
func TestCmdReadAfterWait(t *testing.T) {
	needProgram(t, "sh")
	for _, run := range []string{"Start+Wait", "Run"} {
		t.Run(run, func(t *testing.T) {
			c := command(t, "sh", "-c", "echo out; echo err >&2")
			out := end(t, c.StdoutPipe)
			stderr := end(t, c.StderrPipe)
			var err error
			if run == "Run" {
				err = c.Run()
			} else {
				start(t, c)
				err = c.Wait()
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []struct {
				f    *os.File
				want string
			}{{out, "out\n"}, {stderr, "err\n"}} {
				got, err := io.ReadAll(s.f)
				if err != nil || string(got) != s.want {
					t.Errorf("after Wait, %s read %q, %v; want %q", s.f.Name(), got, err, s.want)
				}
			}
		})
	}
}

// TestCmdOutputClosesChildEnds runs a command with a StderrPipe through
// Output: the reader of standard error must see end of file even though
// Output waits for the command before returning.
func TestCmdOutputClosesChildEnds(t *testing.T) {
	needProgram(t, "sh")
	c := command(t, "sh", "-c", "echo out; echo err >&2")
	stderr := end(t, c.StderrPipe)
	got, err := c.Output()
	if err != nil || string(got) != "out\n" {
		t.Fatalf("Output = %q, %v; want \"out\\n\"", got, err)
	}
	if b, err := io.ReadAll(stderr); err != nil || string(b) != "err\n" {
		t.Errorf("standard error: %q, %v; want \"err\\n\" and end of file", b, err)
	}

	c = command(t, "sh", "-c", "echo oops >&2; exit 3")
	_, err = c.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || string(ee.Stderr) != "oops\n" {
		t.Errorf("Output of a failing command: %v; want an *exec.ExitError holding \"oops\\n\"", err)
	}
	c = command(t, "sh", "-c", "echo out; echo err >&2")
	if b, err := c.CombinedOutput(); err != nil || string(b) != "out\nerr\n" {
		t.Errorf("CombinedOutput = %q, %v", b, err)
	}
}

// fdInfo is what the cmd-fds helper reports about one of its descriptors.
type fdInfo struct {
	pipe     string // device:inode of a pipe, "" for anything else
	nonblock bool
}

// helperCmdFDs prints every open descriptor below 1024 as "fd id
// nonblock", with id the device:inode of a pipe and "-" otherwise.
func helperCmdFDs() int {
	var b bytes.Buffer
	for fd := 0; fd < 1024; fd++ {
		fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err != nil {
			continue
		}
		id := "-"
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFIFO {
			id = fmt.Sprintf("%d:%d", st.Dev, st.Ino)
		}
		fmt.Fprintf(&b, "%d %s %v\n", fd, id, fl&unix.O_NONBLOCK != 0)
	}
	os.Stdout.Write(b.Bytes())
	return 0
}

// parseFDs reads the cmd-fds helper's report.
func parseFDs(out []byte) (map[int]fdInfo, error) {
	fds := map[int]fdInfo{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var (
			fd       int
			id       string
			nonblock bool
		)
		if _, err := fmt.Sscan(line, &fd, &id, &nonblock); err != nil {
			return nil, fmt.Errorf("helper wrote %q: %v", line, err)
		}
		if id == "-" {
			id = ""
		}
		fds[fd] = fdInfo{id, nonblock}
	}
	return fds, nil
}

// baselineFDs returns the descriptors of a helper child started with no
// pipe of ours: this sandbox may hand descriptors to every child.
func baselineFDs(t *testing.T) map[int]fdInfo {
	t.Helper()
	out, err := helperCommand(t, "cmd-fds").Output()
	if err != nil {
		t.Fatal(err)
	}
	fds, err := parseFDs(out)
	if err != nil {
		t.Fatal(err)
	}
	return fds
}

// TestCmdChildFDs checks what the child gets: its ends of our pipes at 0,
// 1, 2 and 3, blocking, and no other descriptor than a child with no pipes
// has; and what the parent keeps: its own ends, non-blocking and
// close-on-exec.
func TestCmdChildFDs(t *testing.T) {
	base := baselineFDs(t)
	c := helperCommand(t, "cmd-fds")
	in, out := pipes(t, c)
	stderr := end(t, c.StderrPipe)
	extra, fd, err := c.ExtraPipe(false)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if fd != 3 {
		t.Errorf("ExtraPipe's descriptor in the child = %d; want 3", fd)
	}
	parentEnds := map[int]*os.File{0: in, 1: out, 2: stderr, 3: extra}
	for _, f := range parentEnds {
		if fcntlGet(t, f, unix.F_GETFL)&unix.O_NONBLOCK == 0 {
			t.Errorf("parent's end %s is blocking", f.Name())
		}
		if fcntlGet(t, f, unix.F_GETFD)&unix.FD_CLOEXEC == 0 {
			t.Errorf("parent's end %s is not close-on-exec", f.Name())
		}
	}
	start(t, c)
	report, err := io.ReadAll(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(); err != nil {
		t.Fatal(err)
	}
	got, err := parseFDs(report)
	if err != nil {
		t.Fatal(err)
	}
	ours := map[string]int{}
	for childFD, f := range parentEnds {
		ours[pipeID(t, f)] = childFD
		info := got[childFD]
		if info.pipe != pipeID(t, f) {
			t.Errorf("child's fd %d is %+v; want pipe %s", childFD, info, pipeID(t, f))
		} else if info.nonblock {
			t.Errorf("child's fd %d (a pipe end) is non-blocking", childFD)
		}
	}
	// Only the pipes of ours at 0 to 3 and those a child with no pipes
	// inherits too: no other pipe this process holds.
	basePipes := map[string]bool{}
	for _, info := range base {
		basePipes[info.pipe] = true
	}
	held := parentPipes(t)
	for fd, info := range got {
		if want, ok := ours[info.pipe]; ok && fd != want {
			t.Errorf("child holds our pipe %s at fd %d too", info.pipe, fd)
		}
		if _, ok := ours[info.pipe]; !ok && held[info.pipe] && !basePipes[info.pipe] {
			t.Errorf("child holds pipe %s of this process at fd %d", info.pipe, fd)
		}
	}
	// The Go runtime opens files of its own (cgroup limits on Linux), at the
	// lowest free numbers: compare counts, not numbers.
	if len(got) != len(base)+1 {
		t.Errorf("child has %d descriptors; want one more than the %d of a child with no pipes:\n%v\n%v", len(got), len(base), got, base)
	}
}

// parentPipes returns the device:inode of every pipe this process holds.
func parentPipes(t *testing.T) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	for _, fd := range openFDs() {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFIFO {
			ids[fmt.Sprintf("%d:%d", st.Dev, st.Ino)] = true
		}
	}
	return ids
}

// newPipeFDs returns the descriptors open now that are pipes and were not
// open in before.
func newPipeFDs(t *testing.T, before []int) []int {
	t.Helper()
	var fds []int
	for _, fd := range openFDs() {
		var st unix.Stat_t
		if !slices.Contains(before, fd) && unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFIFO {
			fds = append(fds, fd)
		}
	}
	return fds
}

// fdsOf returns the descriptors of files, sorted.
func fdsOf(t *testing.T, files ...*os.File) []int {
	t.Helper()
	var fds []int
	for _, f := range files {
		fds = append(fds, fdOf(t, f))
	}
	slices.Sort(fds)
	return fds
}

// TestCmdParentHoldsNoChildEnd checks /proc/self/fd (through fcntl) after
// Start, when it succeeds and when it fails at each stage: the parent holds
// its own ends and not one descriptor of the child's ends. A failed start
// leaves no reader and no writer: writing fails with EPIPE and reading gives
// end of file at once.
func TestCmdParentHoldsNoChildEnd(t *testing.T) {
	needProgram(t, "cat")
	for _, tc := range []struct {
		name string
		cmd  func() *pipe.Cmd
	}{
		{"started", func() *pipe.Cmd { return command(t, "cat") }},
		{"not found", func() *pipe.Cmd { return command(t, "pipe-test-no-such-program") }},
		{"no such file", func() *pipe.Cmd { return command(t, "/nonexistent/pipe-test") }},
		{"bad Dir", func() *pipe.Cmd {
			c := command(t, "cat")
			c.Dir = "/nonexistent/pipe-test"
			return c
		}},
		{"context done", func() *pipe.Cmd {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			return pipe.CommandContext(ctx, "cat")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkNoLeak(t, tc.name, func() {
				before := openFDs()
				c := tc.cmd()
				in := end(t, c.StdinPipe)
				out := end(t, c.StdoutPipe)
				stderr := end(t, c.StderrPipe)
				extra, _, err := c.ExtraPipe(true)
				if err != nil {
					t.Fatal(err)
				}
				extra.SetDeadline(time.Now().Add(bound))
				defer func() {
					for _, f := range []*os.File{in, out, stderr, extra} {
						f.Close() // before checkNoLeak looks
					}
				}()
				startErr := c.Start()
				if got, want := newPipeFDs(t, before), fdsOf(t, in, out, stderr, extra); !slices.Equal(got, want) {
					t.Errorf("after Start (%v) the parent holds pipe fds %v; want only its own ends %v", startErr, got, want)
				}
				if tc.name == "started" {
					if startErr != nil {
						t.Fatal(startErr)
					}
					in.Close()
					if err := c.Wait(); err != nil {
						t.Fatal(err)
					}
					return
				}
				if startErr == nil {
					c.Wait()
					t.Fatal("Start succeeded")
				}
				if _, err := in.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
					t.Errorf("write to stdin after a failed Start: %v; want EPIPE", err)
				}
				for _, f := range []*os.File{out, stderr, extra} {
					if n, err := f.Read(make([]byte, 1)); n != 0 || err != io.EOF {
						t.Errorf("read %s after a failed Start: %d, %v; want EOF", f.Name(), n, err)
					}
				}
			})
		})
	}
}

// TestCmdChildExitsEarly writes to a child that reads one byte and exits:
// the parent's writes then fail with EPIPE, which needs every read end
// closed, the parent's copy included.
func TestCmdChildExitsEarly(t *testing.T) {
	needProgram(t, "head")
	c := command(t, "head", "-c", "1")
	in, out := pipes(t, c)
	start(t, c)
	chunk := make([]byte, 64<<10)
	var err error
	for err == nil {
		_, err = in.Write(chunk)
	}
	if !errors.Is(err, syscall.EPIPE) {
		t.Errorf("writing to a child that exited: %v; want EPIPE", err)
	}
	if b, err := io.ReadAll(out); err != nil || len(b) != 1 {
		t.Errorf("head -c 1 wrote %q, %v", b, err)
	}
	if err := c.Wait(); err != nil {
		t.Error(err)
	}
}

// TestCmdDeadlineAndClose checks that the parent's end uses the runtime
// poller: a read deadline expires, and Close wakes a parked Read.
func TestCmdDeadlineAndClose(t *testing.T) {
	needProgram(t, "cat")
	c := command(t, "cat")
	in, out := pipes(t, c)
	start(t, c)
	out.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := out.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read from a silent child with a deadline: %v; want os.ErrDeadlineExceeded", err)
	}
	out.SetReadDeadline(time.Time{})
	checkCloseWakes(t, "os.(*File).Read(", func() error {
		_, err := out.Read(make([]byte, 1))
		return err
	}, out)
	in.Close()
	if err := c.Wait(); err != nil {
		t.Error(err)
	}
}

// TestCmdContextKills cancels the context of a command blocked in read: the
// parent's read of its output ends with end of file, not a hang.
func TestCmdContextKills(t *testing.T) {
	needProgram(t, "cat")
	ctx, cancel := context.WithCancel(t.Context())
	c := pipe.CommandContext(ctx, "cat")
	_, out := pipes(t, c)
	start(t, c)
	waitProcessBlocked(t, c.Process.Pid)
	cancel()
	if b, err := io.ReadAll(out); err != nil || len(b) != 0 {
		t.Errorf("reading a killed child's output: %q, %v; want end of file", b, err)
	}
	if err := c.Wait(); err == nil {
		t.Error("Wait after cancel: nil error; want the kill")
	}
}

// TestCmdExtraPipe hands a shell two extra pipes, one each way, on fds 3
// and 4.
func TestCmdExtraPipe(t *testing.T) {
	needProgram(t, "sh")
	c := command(t, "sh", "-c", "read x <&3; echo \"got $x\" >&4")
	toChild, fd3, err := c.ExtraPipe(false)
	if err != nil {
		t.Fatal(err)
	}
	defer toChild.Close()
	fromChild, fd4, err := c.ExtraPipe(true)
	if err != nil {
		t.Fatal(err)
	}
	defer fromChild.Close()
	fromChild.SetReadDeadline(time.Now().Add(bound))
	if fd3 != 3 || fd4 != 4 {
		t.Fatalf("ExtraPipe descriptors %d, %d; want 3, 4", fd3, fd4)
	}
	start(t, c)
	errc := writeAfterBlocked(t, c, toChild, []byte("hello\n"))
	b, err := io.ReadAll(fromChild)
	if err != nil || string(b) != "got hello\n" {
		t.Errorf("child wrote %q, %v; want \"got hello\\n\"", b, err)
	}
	if err := <-errc; err != nil {
		t.Error(err)
	}
	if err := c.Wait(); err != nil {
		t.Error(err)
	}
}

// chainData writes n pseudo-random bytes to w in 1 MiB pieces, closes w and
// returns their SHA-256 on the channel.
func chainData(w io.WriteCloser, n int, seed uint64) <-chan [32]byte {
	sum := make(chan [32]byte, 1)
	go func() {
		defer w.Close()
		h := sha256.New()
		rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)})
		buf := make([]byte, 1<<20)
		for n > 0 {
			b := buf[:min(n, len(buf))]
			rng.Read(b)
			h.Write(b)
			if _, err := w.Write(b); err != nil {
				break // the reader's checksum will differ
			}
			n -= len(b)
		}
		sum <- [32]byte(h.Sum(nil))
	}()
	return sum
}

// TestChainGzip sends 100 MiB (8 with -short) through gzip | gunzip,
// connected by Chain, and compares checksums.
func TestChainGzip(t *testing.T) {
	needProgram(t, "gzip", "gunzip")
	size := 100 << 20
	if testing.Short() {
		size = 8 << 20
	}
	gz, gunzip := command(t, "gzip", "-1"), command(t, "gunzip")
	in := end(t, gz.StdinPipe)
	if err := pipe.Chain(gz, gunzip); err != nil {
		t.Fatal(err)
	}
	out := end(t, gunzip.StdoutPipe)
	start(t, gz)
	start(t, gunzip)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	sent := chainData(in, size, seed)
	h := sha256.New()
	n, err := io.Copy(h, out)
	if err != nil {
		t.Fatal(err)
	}
	if err := gz.Wait(); err != nil {
		t.Errorf("gzip: %v", err)
	}
	if err := gunzip.Wait(); err != nil {
		t.Errorf("gunzip: %v", err)
	}
	if n != int64(size) || [32]byte(h.Sum(nil)) != <-sent {
		t.Errorf("gunzip gave %d bytes with a different checksum; want the %d sent", n, size)
	}
}

// TestChainSIGPIPE runs yes | head -n 1: once head exits, yes must die of
// SIGPIPE, as in a shell. It cannot if anyone else, the parent included,
// still holds the pipe's read end: yes would run until the test's context
// killed it.
func TestChainSIGPIPE(t *testing.T) {
	needProgram(t, "yes", "head")
	before := openFDs()
	yes, head := command(t, "yes"), command(t, "head", "-n", "1")
	if err := pipe.Chain(yes, head); err != nil {
		t.Fatal(err)
	}
	out := end(t, head.StdoutPipe)
	start(t, yes)
	start(t, head)
	if got, want := newPipeFDs(t, before), fdsOf(t, out); !slices.Equal(got, want) {
		t.Errorf("after both Starts the parent holds pipe fds %v; want only %v", got, want)
	}
	if b, err := io.ReadAll(out); err != nil || string(b) != "y\n" {
		t.Errorf("head wrote %q, %v", b, err)
	}
	if err := head.Wait(); err != nil {
		t.Errorf("head: %v", err)
	}
	err := yes.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGPIPE {
		t.Errorf("yes: %v; want killed by SIGPIPE", err)
	}
}

// TestChainThree runs cat | sort | wc -l and a chain whose middle command
// fails to start: as in a shell, the others then see EPIPE and end of file.
func TestChainThree(t *testing.T) {
	needProgram(t, "cat", "sort", "wc", "yes")
	t.Run("cat|sort|wc", func(t *testing.T) {
		cat, sort, wc := command(t, "cat"), command(t, "sort"), command(t, "wc", "-l")
		in := end(t, cat.StdinPipe)
		if err := pipe.Chain(cat, sort, wc); err != nil {
			t.Fatal(err)
		}
		out := end(t, wc.StdoutPipe)
		for _, c := range []*pipe.Cmd{wc, sort, cat} { // any order
			start(t, c)
		}
		go func() {
			w := bufio.NewWriter(in)
			for i := 0; i < 5000; i++ {
				fmt.Fprintf(w, "%d\n", 5000-i)
			}
			w.Flush()
			in.Close()
		}()
		b, err := io.ReadAll(out)
		if err != nil || strings.TrimSpace(string(b)) != "5000" {
			t.Errorf("wc -l wrote %q, %v; want 5000", b, err)
		}
		for _, c := range []*pipe.Cmd{cat, sort, wc} {
			if err := c.Wait(); err != nil {
				t.Errorf("%s: %v", c, err)
			}
		}
	})
	t.Run("middle fails", func(t *testing.T) {
		before := openFDs()
		yes, missing, wc := command(t, "yes"), command(t, "/nonexistent/pipe-test"), command(t, "wc", "-c")
		if err := pipe.Chain(yes, missing, wc); err != nil {
			t.Fatal(err)
		}
		out := end(t, wc.StdoutPipe)
		start(t, yes)
		if err := missing.Start(); err == nil {
			t.Fatal("Start of a missing program succeeded")
		}
		start(t, wc)
		if got, want := newPipeFDs(t, before), fdsOf(t, out); !slices.Equal(got, want) {
			t.Errorf("after the Starts the parent holds pipe fds %v; want only %v", got, want)
		}
		if b, err := io.ReadAll(out); err != nil || strings.TrimSpace(string(b)) != "0" {
			t.Errorf("wc -c wrote %q, %v; want 0", b, err)
		}
		var ee *exec.ExitError
		if err := yes.Wait(); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGPIPE {
			t.Errorf("yes: %v; want killed by SIGPIPE", err)
		}
		if err := wc.Wait(); err != nil {
			t.Error(err)
		}
	})
}

// TestCmdConcurrentStarts makes pipes for and starts many commands from
// several goroutines at once, each command with three pipes, and checks in
// every child that no pipe of another command is there.
func TestCmdConcurrentStarts(t *testing.T) {
	const goroutines, each = 6, 4
	type child struct {
		cmd    *pipe.Cmd
		ends   []*os.File     // the parent's ends, open to the end so that no pipe inode is reused
		report map[int]fdInfo // what the child holds
	}
	children := make([][each]child, goroutines)
	for g := range children {
		for i := range each {
			children[g][i].cmd = helperCommand(t, "cmd-fds")
		}
	}
	var wg sync.WaitGroup
	errc := make(chan error, goroutines*each)
	for g := range children {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				ch := &children[g][i]
				in, err1 := ch.cmd.StdinPipe()
				out, err2 := ch.cmd.StdoutPipe()
				extra, _, err3 := ch.cmd.ExtraPipe(true)
				for _, f := range []*os.File{in, out, extra} {
					if f != nil {
						ch.ends = append(ch.ends, f)
					}
				}
				if err := errors.Join(err1, err2, err3); err != nil {
					errc <- err
					return
				}
				if err := ch.cmd.Start(); err != nil {
					errc <- err
					return
				}
				b, err := io.ReadAll(out)
				if werr := ch.cmd.Wait(); err == nil {
					err = werr
				}
				if err == nil {
					ch.report, err = parseFDs(b)
				}
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, cs := range children {
			for _, ch := range cs {
				for _, f := range ch.ends {
					f.Close()
				}
			}
		}
	})
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	owner := map[string]*pipe.Cmd{}
	for _, cs := range children {
		for _, ch := range cs {
			for _, f := range ch.ends {
				owner[pipeID(t, f)] = ch.cmd
			}
		}
	}
	if len(owner) != 3*goroutines*each {
		t.Fatalf("%d distinct pipes; want %d", len(owner), 3*goroutines*each)
	}
	for _, cs := range children {
		for _, ch := range cs {
			seen := 0
			for fd, info := range ch.report {
				if c, ok := owner[info.pipe]; ok {
					if c != ch.cmd {
						t.Errorf("a child holds another command's pipe at fd %d", fd)
					}
					seen++
				}
			}
			if seen != 3 {
				t.Errorf("a child holds %d of our pipes; want its own 3", seen)
			}
		}
	}
}

// TestCmdStartingMethodsCloseChildEnds starts a command with a StdinPipe and
// an ExtraPipe through each method of Cmd that starts it, the ways a user
// has since the exec.Cmd inside cannot be reached: once the method has
// started the command (Start) or run it (the others), the parent holds only
// its own ends, so that its reader sees end of file and its writer EPIPE.
func TestCmdStartingMethodsCloseChildEnds(t *testing.T) {
	needProgram(t, "sh")
	methods := map[string]func(c *pipe.Cmd) error{
		"Start":          (*pipe.Cmd).Start,
		"Run":            (*pipe.Cmd).Run,
		"Output":         func(c *pipe.Cmd) error { _, err := c.Output(); return err },
		"CombinedOutput": func(c *pipe.Cmd) error { _, err := c.CombinedOutput(); return err },
	}
	// Every other method of exec.Cmd, which Cmd defines or promotes
	// (TestCmdDefinesExecMethods), starts nothing.
	startsNothing := map[string]bool{"Wait": true, "StdinPipe": true, "StdoutPipe": true, "StderrPipe": true, "Environ": true, "String": true}
	execType := reflect.TypeFor[*exec.Cmd]()
	for i := range execType.NumMethod() {
		if name := execType.Method(i).Name; !startsNothing[name] && methods[name] == nil {
			t.Errorf("(*exec.Cmd).%s may start the command: test it here", name)
		}
	}
	for name, method := range methods {
		t.Run(name, func(t *testing.T) {
			before := openFDs()
			c := command(t, "sh", "-c", "echo extra >&3")
			in := end(t, c.StdinPipe)
			extra, fd, err := c.ExtraPipe(true)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { extra.Close() })
			extra.SetDeadline(time.Now().Add(bound))
			if fd != 3 {
				t.Fatalf("ExtraPipe's descriptor in the child = %d; want 3", fd)
			}
			if err := method(c); err != nil {
				t.Fatal(err)
			}
			if got, want := newPipeFDs(t, before), fdsOf(t, in, extra); !slices.Equal(got, want) {
				t.Fatalf("after %s the parent holds pipe fds %v; want only its own ends %v", name, got, want)
			}
			if name == "Start" {
				if err := c.Wait(); err != nil {
					t.Fatal(err)
				}
			}
			if b, err := io.ReadAll(extra); err != nil || string(b) != "extra\n" {
				t.Errorf("read from the child's fd 3: %q, %v; want \"extra\\n\" and end of file", b, err)
			}
			if _, err := in.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
				t.Errorf("write to the exited child's stdin: %v; want EPIPE", err)
			}
		})
	}
}

// TestCmdWaitWithoutExecCmd: a nil or zero Cmd gives an error, not a panic.
func TestCmdWaitWithoutExecCmd(t *testing.T) {
	var nilCmd *pipe.Cmd
	for name, c := range map[string]*pipe.Cmd{"nil": nilCmd, "zero": {}} {
		if err := c.Wait(); !errors.Is(err, os.ErrInvalid) {
			t.Errorf("Wait of a %s Cmd: %v; want os.ErrInvalid", name, err)
		}
	}
}
