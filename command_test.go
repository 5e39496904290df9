package pipe_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/pipe2go/pipe"
)

// checkMisuse fails the test unless err is a misuse error: it matches
// os.ErrInvalid and says what went wrong.
func checkMisuse(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s succeeded; want an error saying %q", what, want)
		return
	}
	if !errors.Is(err, os.ErrInvalid) || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: %v; want an error matching os.ErrInvalid saying %q", what, err, want)
	}
}

// pipesOrSkip skips the test where the platform has no pipes.
func pipesOrSkip(t *testing.T) {
	t.Helper()
	r, w, err := pipe.Pipe2(pipe.O_CLOEXEC)
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("no pipes: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	w.Close()
}

func TestCmdStreamAlreadySet(t *testing.T) {
	c := pipe.Command("cat")
	c.Stdin = strings.NewReader("taken")
	c.Stdout = os.Stdout
	c.Stderr = os.Stderr
	_, err := c.StdinPipe()
	checkMisuse(t, "StdinPipe with Stdin set", err, "Stdin already set")
	_, err = c.StdoutPipe()
	checkMisuse(t, "StdoutPipe with Stdout set", err, "Stdout already set")
	_, err = c.StderrPipe()
	checkMisuse(t, "StderrPipe with Stderr set", err, "Stderr already set")
	_, err = c.Output()
	checkMisuse(t, "Output with Stdout set", err, "Stdout already set")
	_, err = c.CombinedOutput()
	checkMisuse(t, "CombinedOutput with Stdout set", err, "Stdout already set")
	if c.Stdout != os.Stdout || c.Stderr != os.Stderr {
		t.Error("a refused call changed Stdout or Stderr")
	}
}

func TestCmdPipeTwice(t *testing.T) {
	pipesOrSkip(t)
	c := pipe.Command("cat")
	for _, p := range []struct {
		name string
		fn   func() (*os.File, error)
		want string
	}{
		{"StdinPipe", c.StdinPipe, "Stdin already set"},
		{"StdoutPipe", c.StdoutPipe, "Stdout already set"},
		{"StderrPipe", c.StderrPipe, "Stderr already set"},
	} {
		f, err := p.fn()
		if err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		t.Cleanup(func() { f.Close() })
		_, err = p.fn()
		checkMisuse(t, p.name+" twice", err, p.want)
	}
}

// TestCmdAfterStart checks that nothing can be added to a command once
// Start has been called, even a Start that failed, as exec.Cmd refuses a
// second Start then too.
func TestCmdAfterStart(t *testing.T) {
	c := pipe.Command("pipe-test-no-such-program")
	if err := c.Start(); !errors.Is(err, exec.ErrNotFound) {
		t.Fatalf("Start of a missing program: %v; want exec.ErrNotFound", err)
	}
	_, err := c.StdinPipe()
	checkMisuse(t, "StdinPipe after Start", err, "StdinPipe after process started")
	_, err = c.StdoutPipe()
	checkMisuse(t, "StdoutPipe after Start", err, "StdoutPipe after process started")
	_, err = c.StderrPipe()
	checkMisuse(t, "StderrPipe after Start", err, "StderrPipe after process started")
	_, _, err = c.ExtraPipe(true)
	checkMisuse(t, "ExtraPipe after Start", err, "ExtraPipe after process started")
	_, err = c.Output()
	checkMisuse(t, "Output after Start", err, "Output after process started")
	if err := c.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	err = pipe.Chain(c, pipe.Command("cat"))
	checkMisuse(t, "Chain of a started command", err, "command 0 already started")
}

// TestCmdWithoutExecCmd checks that a nil *Cmd or one with no exec.Cmd gives
// errors, not panics.
func TestCmdWithoutExecCmd(t *testing.T) {
	for _, c := range []*pipe.Cmd{nil, {}} {
		_, err := c.StdinPipe()
		checkMisuse(t, "StdinPipe", err, "no exec.Cmd")
		_, err = c.StdoutPipe()
		checkMisuse(t, "StdoutPipe", err, "no exec.Cmd")
		_, err = c.StderrPipe()
		checkMisuse(t, "StderrPipe", err, "no exec.Cmd")
		_, _, err = c.ExtraPipe(false)
		checkMisuse(t, "ExtraPipe", err, "no exec.Cmd")
		checkMisuse(t, "Start", c.Start(), "no exec.Cmd")
		checkMisuse(t, "Run", c.Run(), "no exec.Cmd")
		_, err = c.Output()
		checkMisuse(t, "Output", err, "no exec.Cmd")
		_, err = c.CombinedOutput()
		checkMisuse(t, "CombinedOutput", err, "no exec.Cmd")
		checkMisuse(t, "Chain", pipe.Chain(pipe.Command("cat"), c), "command 1 is nil")
	}
}

func TestCommandContextNil(t *testing.T) {
	var ctx context.Context // exec.CommandContext would panic
	c := pipe.CommandContext(ctx, "cat")
	checkMisuse(t, "Start", c.Start(), "nil Context")
}

func TestChainMisuse(t *testing.T) {
	a, b := pipe.Command("cat"), pipe.Command("cat")
	checkMisuse(t, "Chain()", pipe.Chain(), "Chain of 0 commands")
	checkMisuse(t, "Chain(a)", pipe.Chain(a), "Chain of 1 commands")
	checkMisuse(t, "Chain(a, a)", pipe.Chain(a, a), "command 1 is command 0 again")
	// The same exec.Cmd in two wrappers is the same command.
	checkMisuse(t, "Chain(a, copy of a)", pipe.Chain(a, &pipe.Cmd{Cmd: a.Cmd}), "command 1 is command 0 again")

	b.Stdin = strings.NewReader("taken")
	checkMisuse(t, "Chain with Stdin of the second set", pipe.Chain(a, b), "command 1: Stdin already set")
	b.Stdin = nil
	a.Stdout = os.Stdout
	checkMisuse(t, "Chain with Stdout of the first set", pipe.Chain(a, b), "command 0: Stdout already set")
	if a.Stdin != nil || b.Stdout != nil || b.Stdin != nil {
		t.Error("a refused Chain changed a command")
	}
}

// TestChainEnds checks that the first command's Stdin and the last one's
// Stdout stay free for the caller, and that Chain cannot link a command
// twice.
func TestChainEnds(t *testing.T) {
	pipesOrSkip(t)
	a, b, c := pipe.Command("cat"), pipe.Command("cat"), pipe.Command("cat")
	if err := pipe.Chain(a, b, c); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Never started: Start of each releases its ends, and fails.
		for _, x := range []*pipe.Cmd{a, b, c} {
			x.Path = "/nonexistent/pipe-test"
			x.Start()
		}
	})
	if a.Stdin != nil || c.Stdout != nil {
		t.Fatal("Chain set the first command's Stdin or the last one's Stdout")
	}
	for _, x := range []*pipe.Cmd{a, b} {
		if _, ok := x.Stdout.(*os.File); !ok {
			t.Errorf("Stdout = %T; want *os.File", x.Stdout)
		}
	}
	checkMisuse(t, "Chain again", pipe.Chain(a, b), "command 0: Stdout already set")
	checkMisuse(t, "Chain of the last and the middle", pipe.Chain(c, b), "command 1: Stdin already set")
	in, err := a.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	in.Close()
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	out.Close()
}

// TestCmdPipesUnsupported checks that where there are no pipes every way to
// get one says so with errors.ErrUnsupported.
func TestCmdPipesUnsupported(t *testing.T) {
	if _, _, err := pipe.Pipe2(pipe.O_CLOEXEC); !errors.Is(err, errors.ErrUnsupported) {
		t.Skip("this platform has pipes")
	}
	c := pipe.Command("cat")
	if _, err := c.StdinPipe(); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("StdinPipe: %v; want errors.ErrUnsupported", err)
	}
	if _, _, err := c.ExtraPipe(true); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("ExtraPipe: %v; want errors.ErrUnsupported", err)
	}
	if err := pipe.Chain(c, pipe.Command("cat")); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Chain: %v; want errors.ErrUnsupported", err)
	}
}
