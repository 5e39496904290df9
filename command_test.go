package pipe_test

import (
	"context"
	"errors"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"reflect"
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
	// A copy of a Cmd holds the same exec.Cmd: it is the same command.
	acopy := *a
	checkMisuse(t, "Chain(a, copy of a)", pipe.Chain(a, &acopy), "command 1 is command 0 again")

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

// TestCmdHidesExecCmd checks that a user cannot reach the exec.Cmd inside a
// Cmd, whose own Start would skip closing the child's ends (c.Cmd.Start()
// does not compile), and that every exported field of exec.Cmd can still be
// set on the Cmd.
func TestCmdHidesExecCmd(t *testing.T) {
	cmdType, execType := reflect.TypeFor[pipe.Cmd](), reflect.TypeFor[exec.Cmd]()
	if f, ok := cmdType.FieldByName("Cmd"); ok {
		t.Errorf("pipe.Cmd has a field Cmd of type %v", f.Type)
	}
	for _, f := range reflect.VisibleFields(cmdType) {
		if f.IsExported() && (f.Type == execType || f.Type == reflect.PointerTo(execType)) {
			t.Errorf("pipe.Cmd's exported field %s is a %v: c.%[1]s.Start() would skip closing the child's ends", f.Name, f.Type)
		}
	}
	for _, f := range reflect.VisibleFields(execType) {
		if !f.IsExported() {
			continue
		}
		if got, ok := cmdType.FieldByName(f.Name); !ok || got.Type != f.Type {
			t.Errorf("exec.Cmd's field %s (%v) is not promoted to pipe.Cmd", f.Name, f.Type)
		}
	}
}

// TestCmdDefinesExecMethods checks that every method of *exec.Cmd is either
// defined by pipe.Cmd or one of the few promoted ones that cannot start the
// process. A method os/exec adds later fails the test, rather than being
// promoted unnoticed with a way to start the command that skips closing the
// child's ends: define it on Cmd (and add it to
// TestCmdStartingMethodsCloseChildEnds if it starts the command), or add it
// to promoted if it cannot start anything.
func TestCmdDefinesExecMethods(t *testing.T) {
	// promoted are exec.Cmd's methods that only read the command.
	promoted := map[string]bool{"Environ": true, "String": true}
	defined := cmdMethodsDeclared(t)
	execType, cmdType := reflect.TypeFor[*exec.Cmd](), reflect.TypeFor[*pipe.Cmd]()
	for i := range execType.NumMethod() {
		name := execType.Method(i).Name
		if _, ok := cmdType.MethodByName(name); !ok {
			t.Errorf("*pipe.Cmd has no method %s", name)
		}
		switch {
		case !defined[name] && !promoted[name]:
			t.Errorf("(*exec.Cmd).%s is promoted to *pipe.Cmd and may start the command without closing the child's ends: define it on Cmd, or list it as promoted if it cannot start anything", name)
		case defined[name] && promoted[name]:
			t.Errorf("%s is listed as promoted, but pipe.Cmd defines it", name)
		}
	}
	for name := range promoted {
		if _, ok := execType.MethodByName(name); !ok {
			t.Errorf("%s is listed as promoted, but exec.Cmd has no such method", name)
		}
	}
}

// cmdMethodsDeclared returns the names of the methods declared with
// receiver Cmd or *Cmd in the package's source files built here: the
// methods pipe.Cmd defines, as opposed to those promoted from exec.Cmd,
// which reflect cannot tell apart.
func cmdMethodsDeclared(t *testing.T) map[string]bool {
	t.Helper()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	names := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		if ok, err := build.Default.MatchFile(".", name); err != nil {
			t.Fatal(err)
		} else if !ok {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv == nil || len(fd.Recv.List) != 1 {
				continue
			}
			recv := fd.Recv.List[0].Type
			if star, ok := recv.(*ast.StarExpr); ok {
				recv = star.X
			}
			if id, ok := recv.(*ast.Ident); ok && id.Name == "Cmd" {
				names[fd.Name.Name] = true
			}
		}
	}
	return names
}
