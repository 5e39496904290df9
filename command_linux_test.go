package pipe_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pipe2go/pipe"
)

func init() {
	helpers["cmd-capacity"] = helperCmdCapacity
}

// helperCmdCapacity prints the capacity of the pipe on its standard input.
func helperCmdCapacity() int {
	n, err := pipe.Capacity(os.Stdin)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println(n)
	return 0
}

// TestCmdSetCapacity resizes a StdinPipe through the parent's end and asks
// the child what its end reports.
func TestCmdSetCapacity(t *testing.T) {
	c := helperCommand(t, "cmd-capacity")
	in, out := pipes(t, c)
	const want = 1 << 20
	got, err := pipe.SetCapacity(in, want)
	if err != nil {
		t.Fatalf("SetCapacity(%d): %v", want, err)
	}
	if got != want {
		t.Fatalf("SetCapacity(%d) = %d", want, got)
	}
	start(t, c)
	b, err := io.ReadAll(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(); err != nil {
		t.Fatalf("helper: %v: %s", err, b)
	}
	if s := strings.TrimSpace(string(b)); s != strconv.Itoa(want) {
		t.Errorf("the child's end reports capacity %s; want %d", s, want)
	}
}

// TestCmdCopyFileSplices copies a 16 MiB file into wc -c through a
// StdinPipe with pipe.Copy: the data goes in by splice(2), so this process
// makes no read(2) of it, where io.Copy makes hundreds.
func TestCmdCopyFileSplices(t *testing.T) {
	needProgram(t, "wc")
	const size = 16 << 20
	f, err := os.CreateTemp(t.TempDir(), "copy")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(testData(t, size)); err != nil {
		t.Fatal(err)
	}
	measure := func(copyFn func(io.Writer, io.Reader) (int64, error)) int {
		t.Helper()
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		c := command(t, "wc", "-c")
		in, out := pipes(t, c)
		start(t, c)
		var n int64
		var err error
		reads := readSyscalls(t, func() { n, err = copyFn(in, f) })
		if err != nil || n != size {
			t.Fatalf("copy = %d, %v; want %d", n, err, size)
		}
		in.Close()
		b, err := io.ReadAll(out)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Wait(); err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(b)); got != strconv.Itoa(size) {
			t.Fatalf("wc -c counted %s; want %d", got, size)
		}
		return reads
	}
	reads := measure(io.Copy)
	t.Logf("io.Copy: %d read calls", reads)
	if reads < 100 {
		t.Skipf("io.Copy of %d bytes counted only %d read calls: syscr does not tell the paths apart here", size, reads)
	}
	reads = measure(pipe.Copy)
	t.Logf("pipe.Copy: %d read calls", reads)
	if reads > 10 {
		t.Errorf("pipe.Copy from a file into a child's stdin made %d read calls; want none (splice)", reads)
	}
}

// TestCmdRefusesOpenFIFO: OpenFIFO's file is non-blocking and keeps the
// flag through exec's Fd, so Start refuses it until SetNonblock(f, false).
// (O_RDWR opens at once; it is Linux only.)
func TestCmdRefusesOpenFIFO(t *testing.T) {
	needProgram(t, "true")
	path := filepath.Join(t.TempDir(), "fifo")
	if err := pipe.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := pipe.OpenFIFO(t.Context(), path, os.O_RDWR)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := pipe.CommandContext(t.Context(), "true")
	c.Stdin = f
	if err := c.Start(); !errors.Is(err, os.ErrInvalid) || !strings.Contains(err.Error(), "non-blocking") {
		t.Errorf("Start with OpenFIFO's file as Stdin: %v; want os.ErrInvalid naming the cause", err)
	}
	if err := pipe.SetNonblock(f, false); err != nil {
		t.Fatal(err)
	}
	c = pipe.CommandContext(t.Context(), "true")
	c.Stdin = f
	if err := c.Run(); err != nil {
		t.Errorf("Run with the FIFO made blocking: %v", err)
	}
}
