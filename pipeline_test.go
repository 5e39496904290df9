package pipe_test

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/pipe2go/pipe"
)

// newPipeline calls NewPipeline and fails the test on error. When the test
// ends, any command started and not waited for is killed and reaped.
func newPipeline(t *testing.T, cmds ...*pipe.Cmd) *pipe.Pipeline {
	t.Helper()
	p, err := pipe.NewPipeline(cmds...)
	if err != nil {
		t.Fatalf("NewPipeline: %v", err)
	}
	t.Cleanup(func() {
		for _, c := range cmds {
			if c.Process != nil && c.ProcessState == nil {
				c.Process.Kill()
				c.Wait()
			}
		}
	})
	return p
}

// missingCmd returns a command whose program does not exist: its Start
// fails with exec.ErrNotFound.
func missingCmd() *pipe.Cmd { return pipe.Command("pipe-test-no-such-program") }

// TestNewPipelineMisuse checks NewPipeline's refusals, each an error
// matching os.ErrInvalid that changes nothing.
func TestNewPipelineMisuse(t *testing.T) {
	pipesOrSkip(t)
	_, err := pipe.NewPipeline()
	checkMisuse(t, "NewPipeline()", err, "NewPipeline of no commands")
	a, b, c := pipe.Command("cat"), pipe.Command("cat"), pipe.Command("cat")
	_, err = pipe.NewPipeline(a, nil)
	checkMisuse(t, "NewPipeline(a, nil)", err, "NewPipeline: command 1 is nil")
	_, err = pipe.NewPipeline(a, &pipe.Cmd{})
	checkMisuse(t, "NewPipeline(a, zero Cmd)", err, "NewPipeline: command 1 is nil")
	_, err = pipe.NewPipeline(a, b, a)
	checkMisuse(t, "NewPipeline(a, b, a)", err, "NewPipeline: command 2 is command 0 again")
	a.Stdout = os.Stdout
	_, err = pipe.NewPipeline(a, b)
	checkMisuse(t, "NewPipeline with the first's Stdout set", err, "NewPipeline: command 0: Stdout already set")
	a.Stdout = nil
	b.Stdin = strings.NewReader("taken")
	_, err = pipe.NewPipeline(a, b)
	checkMisuse(t, "NewPipeline with the second's Stdin set", err, "NewPipeline: command 1: Stdin already set")
	b.Stdin = nil
	if a.Stdin != nil || a.Stdout != nil || b.Stdin != nil || b.Stdout != nil {
		t.Fatal("a refused NewPipeline changed a command")
	}

	started := missingCmd()
	started.Start()
	_, err = pipe.NewPipeline(a, started)
	checkMisuse(t, "NewPipeline of a started command", err, "NewPipeline: command 1 already started")

	// A command in a Pipeline belongs to it.
	p := newPipeline(t, a, b)
	_, err = pipe.NewPipeline(b, c)
	checkMisuse(t, "NewPipeline of a command in another", err, "NewPipeline: command 0 is in a Pipeline already")
	_, err = pipe.NewPipeline(c, a)
	checkMisuse(t, "NewPipeline of a command in another", err, "NewPipeline: command 1 is in a Pipeline already")
	checkMisuse(t, "Chain of a Pipeline's command", pipe.Chain(b, c), "Chain: command 0 is in a Pipeline already")
	if c.Stdin != nil || b.Stdout != nil {
		t.Error("a refused NewPipeline or Chain changed a command")
	}

	// A command connected by Chain is refused, whichever end is free.
	x, y := pipe.Command("cat"), pipe.Command("cat")
	if err := pipe.Chain(x, y); err != nil {
		t.Fatal(err)
	}
	_, err = pipe.NewPipeline(y, pipe.Command("cat"))
	checkMisuse(t, "NewPipeline of a chained command", err, "NewPipeline: command 0 is connected by Chain already")
	_, err = pipe.NewPipeline(x)
	checkMisuse(t, "NewPipeline of a chained command", err, "NewPipeline: command 0 is connected by Chain already")

	// Release the pipes: every Start fails, closing them.
	for _, cmd := range []*pipe.Cmd{x, y} {
		cmd.Path = "/nonexistent/pipe-test"
		cmd.Start()
	}
	for _, cmd := range p.Cmds() {
		cmd.Path = "/nonexistent/pipe-test"
	}
	if err := p.Run(); err == nil {
		t.Error("Run of missing programs succeeded")
	}
}

// TestPipelineMisuse checks the refusals of a Pipeline's methods: nil and
// zero Pipelines, Wait before Start, Start and Wait twice, pipe methods and
// Output after Start, Output with the last Stdout taken.
func TestPipelineMisuse(t *testing.T) {
	pipesOrSkip(t)
	for name, p := range map[string]*pipe.Pipeline{"nil": nil, "zero": {}} {
		checkMisuse(t, name+" Start", p.Start(), "not made by NewPipeline")
		checkMisuse(t, name+" Wait", p.Wait(), "not made by NewPipeline")
		checkMisuse(t, name+" Run", p.Run(), "not made by NewPipeline")
		_, err := p.Output()
		checkMisuse(t, name+" Output", err, "not made by NewPipeline")
		_, err = p.StdinPipe()
		checkMisuse(t, name+" StdinPipe", err, "not made by NewPipeline")
		_, err = p.StdoutPipe()
		checkMisuse(t, name+" StdoutPipe", err, "not made by NewPipeline")
		if p.Cmds() != nil {
			t.Errorf("%s Cmds() = %v; want nil", name, p.Cmds())
		}
	}

	p := newPipeline(t, pipe.Command("cat"), missingCmd())
	checkMisuse(t, "Wait before Start", p.Wait(), "Wait before Start")
	out, err := p.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	_, err = p.Output()
	checkMisuse(t, "Output after StdoutPipe", err, "Stdout of the last command already set")
	_, err = p.StdoutPipe()
	checkMisuse(t, "StdoutPipe twice", err, "Stdout already set")

	startErr := p.Start()
	if !errors.Is(startErr, exec.ErrNotFound) {
		t.Fatalf("Start with a missing program: %v; want exec.ErrNotFound", startErr)
	}
	checkMisuse(t, "Start twice", p.Start(), "Pipeline.Start: already started")
	checkMisuse(t, "Run after Start", p.Run(), "Pipeline.Start: already started")
	_, err = p.StdinPipe()
	checkMisuse(t, "StdinPipe after Start", err, "Pipeline.StdinPipe after Start")
	_, err = p.Output()
	checkMisuse(t, "Output after Start", err, "Pipeline.Output after Start")
	if err := p.Wait(); err != startErr {
		t.Errorf("Wait after a failed Start: %v; want Start's error %v", err, startErr)
	}
	checkMisuse(t, "Wait twice", p.Wait(), "Wait was already called")
	// A command the failed Start never reached cannot be started on its own.
	checkMisuse(t, "Start of a command after the Pipeline's failed Start", p.Cmds()[1].Start(), "already started")
}

// TestPipelineCmds checks that Cmds returns the commands in order, in a
// slice of its own.
func TestPipelineCmds(t *testing.T) {
	pipesOrSkip(t)
	a, b := pipe.Command("cat"), missingCmd()
	p := newPipeline(t, a, b)
	got := p.Cmds()
	if len(got) != 2 || got[0] != a || got[1] != b {
		t.Fatalf("Cmds() = %v; want [a b]", got)
	}
	got[0] = nil
	if p.Cmds()[0] != a {
		t.Error("changing the slice Cmds returned changed the Pipeline")
	}
	p.Run() // releases the pipes: b is missing
}

// TestPipelineUnsupported checks that where there are no pipes NewPipeline
// says so with errors.ErrUnsupported, for one command as for several.
func TestPipelineUnsupported(t *testing.T) {
	if _, _, err := pipe.Pipe2(pipe.O_CLOEXEC); !errors.Is(err, errors.ErrUnsupported) {
		t.Skip("this platform has pipes")
	}
	for _, cmds := range [][]*pipe.Cmd{{pipe.Command("cat")}, {pipe.Command("cat"), pipe.Command("cat")}} {
		if _, err := pipe.NewPipeline(cmds...); !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("NewPipeline of %d commands: %v; want errors.ErrUnsupported", len(cmds), err)
		}
	}
}
