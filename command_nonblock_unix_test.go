//go:build unix

package pipe_test

// Which files Cmd.Start hands a child and which it refuses: only those that
// would reach the child non-blocking.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/pipe2go/pipe"
	"golang.org/x/sys/unix"
)

func init() {
	helpers["cmd-read-stdin"] = helperReadStdin
}

// helperReadStdin reads its standard input to end of file with read(2), as
// a C program does, and prints how many bytes it got. On a non-blocking
// descriptor the first read of an empty pipe fails with EAGAIN, which it
// reports, exiting 1.
func helperReadStdin() int {
	buf := make([]byte, 64<<10)
	total := 0
	for {
		n, err := unix.Read(0, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			fmt.Printf("read(0) after %d bytes: %v\n", total, err)
			return 1
		}
		if n == 0 {
			fmt.Println(total)
			return 0
		}
		total += n
	}
}

// checkChildReads starts c, whose Stdin is set to a pipe's read end that
// the parent writes to through w, and checks that the child reads data
// written only once it waits in read(2): a child given a non-blocking end
// would fail there with EAGAIN.
func checkChildReads(t *testing.T, c *pipe.Cmd, w *os.File) {
	t.Helper()
	out := end(t, c.StdoutPipe)
	start(t, c)
	data := bytes.Repeat([]byte("abcdefgh"), 32<<10)
	errc := writeAfterBlocked(t, c, w, data)
	got, err := io.ReadAll(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Errorf("writing: %v", err)
	}
	if err := c.Wait(); err != nil {
		t.Errorf("child: %v: %s", err, got)
	}
	if s := strings.TrimSpace(string(got)); s != strconv.Itoa(len(data)) {
		t.Errorf("the child read %s; want %d bytes", s, len(data))
	}
}

// TestCmdAcceptsOSPipe hands a child os.Pipe's read end, non-blocking in
// this process, as os/exec's documentation allows: exec's Fd makes it
// blocking before the child starts, so Start must not refuse it.
func TestCmdAcceptsOSPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	if fcntlGet(t, r, unix.F_GETFL)&unix.O_NONBLOCK == 0 {
		t.Log("os.Pipe's read end is blocking here; the test checks less")
	}
	c := helperCommand(t, "cmd-read-stdin")
	c.Stdin = r
	checkChildReads(t, c, w)
}

// TestCmdAcceptsReusedDescriptor closes a Pipe2(O_NONBLOCK) pipe and hands
// a child os.Pipe's read end, which most likely gets the same descriptor
// number: Start must tell the two files apart.
func TestCmdAcceptsReusedDescriptor(t *testing.T) {
	r1, w1, err := pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	old := fdOf(t, r1)
	r1.Close()
	w1.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	if fd := fdOf(t, r); fd != old {
		t.Logf("os.Pipe's read end got descriptor %d, not %d: the test checks less", fd, old)
	}
	c := helperCommand(t, "cmd-read-stdin")
	c.Stdin = r
	checkChildReads(t, c, w)
}

// TestCmdAcceptsListenerFile hands a child a TCP listener's File in
// ExtraFiles, as a server restarting gracefully does: net's File is
// non-blocking until exec's Fd makes it blocking, so Start must not refuse
// it, and the child gets descriptor 3 blocking.
func TestCmdAcceptsListenerFile(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := helperCommand(t, "cmd-fds")
	c.ExtraFiles = []*os.File{f}
	out, err := c.Output()
	if err != nil {
		t.Fatalf("Start with a listener's File in ExtraFiles: %v", err)
	}
	got, err := parseFDs(out)
	if err != nil {
		t.Fatal(err)
	}
	if info, ok := got[3]; !ok || info.nonblock {
		t.Errorf("the child's descriptor 3 is %+v (present %v); want a blocking socket", info, ok)
	}
}

// TestCmdRefusesNonblockingChildFile: this package's non-blocking ends keep
// O_NONBLOCK through exec's Fd, and programs handed one mishandle it (dash's
// read gets an empty line, python3 loses data, both exit 0), so Start
// refuses them: os/exec's idiom b.Stdin, _ = a.StdoutPipe() (whose end is
// the parent's) and a Pipe2(O_NONBLOCK) end, as a standard stream or an
// extra file. The same ends made blocking with SetNonblock are accepted.
func TestCmdRefusesNonblockingChildFile(t *testing.T) {
	needProgram(t, "true")
	a := pipe.CommandContext(t.Context(), "true")
	out, err := a.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	for _, tc := range []struct {
		name string
		set  func(c *pipe.Cmd)
	}{
		{"Stdin=StdoutPipe", func(c *pipe.Cmd) { c.Stdin = out }},
		{"Stdin=Pipe2", func(c *pipe.Cmd) { c.Stdin = r }},
		{"Stdout=Pipe2", func(c *pipe.Cmd) { c.Stdout = w }},
		{"ExtraFiles=Pipe2", func(c *pipe.Cmd) { c.ExtraFiles = []*os.File{nil, r} }},
	} {
		b := pipe.CommandContext(t.Context(), "true")
		tc.set(b)
		err := b.Start()
		if !errors.Is(err, os.ErrInvalid) || !strings.Contains(err.Error(), "non-blocking") ||
			!strings.Contains(err.Error(), "SetNonblock") {
			t.Errorf("%s: Start = %v; want os.ErrInvalid naming the cause and the cure", tc.name, err)
		}
		if b.Process != nil {
			t.Errorf("%s: the command started", tc.name)
		}
	}
	// The same ends made blocking are accepted.
	if err := pipe.SetNonblock(out, false); err != nil {
		t.Fatal(err)
	}
	c := pipe.CommandContext(t.Context(), "true")
	c.Stdin = out
	if err := c.Run(); err != nil {
		t.Errorf("Run with a blocking Stdin: %v", err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	if err := a.Wait(); err != nil {
		t.Error(err)
	}
}

// TestCmdAcceptsPipe2MadeBlocking hands a child a Pipe2(O_NONBLOCK) read end
// made blocking with SetNonblock, and checks that it reads what is written
// once it waits.
func TestCmdAcceptsPipe2MadeBlocking(t *testing.T) {
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	if err := pipe.SetNonblock(r, false); err != nil {
		t.Fatal(err)
	}
	c := helperCommand(t, "cmd-read-stdin")
	c.Stdin = r
	checkChildReads(t, c, w)
}
