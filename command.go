package pipe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
)

// Cmd is an [exec.Cmd] whose pipes come from this package: the child's end of
// each pipe is blocking, as programs expect, and the parent's end is an
// *os.File that uses the runtime poller (deadlines work, Close wakes a Read or
// Write that waits), stays open until the caller closes it, and can be resized
// with [SetCapacity] on Linux.
//
// [Cmd.Start] starts the command with exec.Cmd.Start and then closes, in the
// parent, the child's end of every pipe made by [Cmd.StdinPipe],
// [Cmd.StdoutPipe], [Cmd.StderrPipe], [Cmd.ExtraPipe] and [Chain], whether
// the start succeeded or not: the parent then reads end of file once the
// child (and any process it handed the descriptor on to) has exited, and
// writing after the child has gone fails with EPIPE. Wait is exec.Cmd's and
// never closes the parent's ends, so reading standard output to end of file
// after Wait is allowed.
//
// Every other field and method is exec.Cmd's. Calling the embedded
// exec.Cmd's own Start, Run, Output or CombinedOutput (c.Cmd.Start()) skips
// the closing: the parent then keeps the child's ends open, so its reads do
// not see end of file nor its writes EPIPE (a later c.Start closes them and
// returns exec's "already started"). exec.Cmd's WaitDelay does not close the
// parent's ends either; use their deadlines. Like an exec.Cmd, a Cmd is not
// safe for concurrent use and cannot be reused after Start.
//
// On Windows and Plan 9 the pipes are os.Pipe's: blocking at both ends, so
// the parent's ends take no deadlines. js and wasip1 have no pipes: the pipe
// methods and Chain give an error matching [errors.ErrUnsupported].
type Cmd struct {
	*exec.Cmd

	// childEnds are the pipe ends handed to the child through Stdin,
	// Stdout, Stderr and ExtraFiles; Start closes them in the parent.
	childEnds []*os.File
	// started is set by Start, even when it fails, as exec.Cmd refuses a
	// second Start even after a failed one.
	started bool
}

// Command returns a [Cmd] to run the named program with the given arguments,
// made by [exec.Command].
func Command(name string, arg ...string) *Cmd {
	return &Cmd{Cmd: exec.Command(name, arg...)}
}

// CommandContext is like [Command] but uses [exec.CommandContext]: the
// process is killed when ctx is done before it exits on its own. A nil ctx
// gives a Cmd whose Start fails with an error matching [os.ErrInvalid],
// where exec.CommandContext would panic.
func CommandContext(ctx context.Context, name string, arg ...string) *Cmd {
	if ctx == nil {
		c := exec.Command(name, arg...)
		c.Err = misuse("CommandContext with a nil Context")
		return &Cmd{Cmd: c}
	}
	return &Cmd{Cmd: exec.CommandContext(ctx, name, arg...)}
}

// StdinPipe returns the write end of a pipe whose read end becomes the
// command's standard input when it starts. The caller closes it, and the
// command sees end of file once it is closed.
//
// Misuse gives an error matching [os.ErrInvalid]: Stdin already set, or the
// command already started.
func (c *Cmd) StdinPipe() (*os.File, error) {
	if err := c.unstarted("StdinPipe"); err != nil {
		return nil, err
	}
	return c.streamPipe("Stdin", c.Stdin != nil, true, func(child *os.File) { c.Stdin = child })
}

// StdoutPipe returns the read end of a pipe whose write end becomes the
// command's standard output when it starts. The caller closes it; it reads
// end of file once the command has exited, and stays readable after Wait.
//
// Misuse gives an error matching [os.ErrInvalid]: Stdout already set, or the
// command already started.
func (c *Cmd) StdoutPipe() (*os.File, error) {
	if err := c.unstarted("StdoutPipe"); err != nil {
		return nil, err
	}
	return c.streamPipe("Stdout", c.Stdout != nil, false, func(child *os.File) { c.Stdout = child })
}

// StderrPipe is like [Cmd.StdoutPipe] for the command's standard error.
func (c *Cmd) StderrPipe() (*os.File, error) {
	if err := c.unstarted("StderrPipe"); err != nil {
		return nil, err
	}
	return c.streamPipe("Stderr", c.Stderr != nil, false, func(child *os.File) { c.Stderr = child })
}

// streamPipe makes the pipe for one standard stream, unless it is set
// already, gives the child's end to set and records it for Start to close.
func (c *Cmd) streamPipe(stream string, isSet, childReads bool, set func(child *os.File)) (*os.File, error) {
	if isSet {
		return nil, misuse("%s already set", stream)
	}
	parent, child, err := childPipe(childReads)
	if err != nil {
		return nil, err
	}
	set(child)
	c.childEnds = append(c.childEnds, child)
	return parent, nil
}

// ExtraPipe appends the child's end of a new pipe to c.ExtraFiles and
// returns the parent's end f and the descriptor number the child will see
// it as: 3 for the first entry of ExtraFiles, 4 for the next, and so on
// (entries added to ExtraFiles later do not move it; entries inserted before
// it do). With childWrites the child writes and f is the read end; otherwise
// f is the write end. The caller closes f.
//
// Misuse gives an error matching [os.ErrInvalid] (the command already
// started). Windows has no ExtraFiles: the error matches
// [errors.ErrUnsupported].
func (c *Cmd) ExtraPipe(childWrites bool) (f *os.File, childFD int, err error) {
	if err := c.unstarted("ExtraPipe"); err != nil {
		return nil, 0, err
	}
	if err := extraFiles(); err != nil {
		return nil, 0, err
	}
	parent, child, err := childPipe(!childWrites)
	if err != nil {
		return nil, 0, err
	}
	c.ExtraFiles = append(c.ExtraFiles, child)
	c.childEnds = append(c.childEnds, child)
	return parent, 3 + len(c.ExtraFiles) - 1, nil
}

// Start starts the command with exec.Cmd.Start and then, whatever the
// outcome, closes in the parent the child's ends of the pipes made by this
// package for c. The parent's ends stay open.
//
// Start refuses, with an error matching [os.ErrInvalid], a standard stream or
// extra file that would reach the child non-blocking, on which programs fail
// with EAGAIN or lose data silently: a file this package made non-blocking
// ([Pipe2] with [O_NONBLOCK], the parent's end of a Cmd's pipe, [OpenFIFO])
// that still is when Start runs, since exec.Cmd's Fd leaves such a file's
// O_NONBLOCK alone. (Other files that keep O_NONBLOCK through Fd, such as
// one from os.NewFile of a non-blocking descriptor or one made non-blocking
// with SetNonblock, cannot be told from those os handles and are passed as
// they are.) Files that os made non-blocking itself, such as
// [os.Pipe]'s ends or a listener's File from package net, are accepted: Fd
// makes them blocking before the child starts. The usual way to meet the
// refusal is os/exec's idiom b.Stdin, _ = a.StdoutPipe(), whose end here is
// the parent's: connect commands with [Chain] instead, or call
// [SetNonblock](f, false) on a file meant for the child.
func (c *Cmd) Start() error {
	if c == nil || c.Cmd == nil {
		return misuse("Start of a Cmd with no exec.Cmd")
	}
	c.started = true
	err := c.checkChildFiles()
	if err == nil {
		err = c.Cmd.Start()
	}
	for _, f := range c.childEnds {
		// The child has its own copy now, or never will: ours only keeps
		// the pipe open. Close cannot fail on a pipe that nothing else
		// in this program uses.
		_ = f.Close()
	}
	c.childEnds = nil
	return err
}

// checkChildFiles refuses an *os.File among the child's standard streams
// and extra files that would reach the child non-blocking (see
// checkBlocking).
func (c *Cmd) checkChildFiles() error {
	streams := []struct {
		name string
		v    any
	}{{"Stdin", c.Stdin}, {"Stdout", c.Stdout}, {"Stderr", c.Stderr}}
	for i, f := range c.ExtraFiles {
		streams = append(streams, struct {
			name string
			v    any
		}{fmt.Sprintf("ExtraFiles[%d]", i), f})
	}
	for _, s := range streams {
		if f, ok := s.v.(*os.File); ok && f != nil {
			if err := checkBlocking(s.name, f); err != nil {
				return err
			}
		}
	}
	return nil
}

// Wait is exec.Cmd's Wait, with a clear error instead of a panic for a Cmd
// with no exec.Cmd.
func (c *Cmd) Wait() error {
	if c == nil || c.Cmd == nil {
		return misuse("Wait of a Cmd with no exec.Cmd")
	}
	return c.Cmd.Wait()
}

// Run starts the command with [Cmd.Start] and waits for it with Wait. The
// parent's pipe ends stay open: a StdoutPipe can be read after Run returns,
// up to the pipe's capacity (64 KiB by default on Linux) of output, beyond
// which the command blocks until someone reads, so read in another goroutine
// or use Start and Wait for more.
func (c *Cmd) Run() error {
	if err := c.Start(); err != nil {
		return err
	}
	return c.Wait()
}

// Output runs the command with [Cmd.Run] and returns its standard output, as
// exec.Cmd.Output does: Stdout must be unset, and when Stderr is unset the
// first 32 KiB of standard error go into the [*exec.ExitError] it returns.
func (c *Cmd) Output() ([]byte, error) {
	if err := c.unstarted("Output"); err != nil {
		return nil, err
	}
	if c.Stdout != nil {
		return nil, misuse("Stdout already set")
	}
	var stdout bytes.Buffer
	c.Stdout = &stdout
	var stderr *headBuffer
	if c.Stderr == nil {
		stderr = &headBuffer{n: 32 << 10}
		c.Stderr = stderr
	}
	err := c.Run()
	var ee *exec.ExitError
	if stderr != nil && errors.As(err, &ee) {
		ee.Stderr = stderr.b
	}
	return stdout.Bytes(), err
}

// CombinedOutput runs the command with [Cmd.Run] and returns its standard
// output and standard error together, as exec.Cmd.CombinedOutput does:
// Stdout and Stderr must be unset.
func (c *Cmd) CombinedOutput() ([]byte, error) {
	if err := c.unstarted("CombinedOutput"); err != nil {
		return nil, err
	}
	if c.Stdout != nil {
		return nil, misuse("Stdout already set")
	}
	if c.Stderr != nil {
		return nil, misuse("Stderr already set")
	}
	var b bytes.Buffer
	c.Stdout = &b
	c.Stderr = &b
	err := c.Run()
	return b.Bytes(), err
}

// Chain connects each command's standard output to the next one's standard
// input, kernel to kernel, like a shell's a | b | c. No byte passes through
// the Go program.
//
// Chain does not start the commands: start each with [Cmd.Start] (or Run in
// its own goroutine), in any order, and Wait for each. The pipes between the
// commands are blocking at both ends, as programs expect; each Start closes
// the parent's copies of its own command's ends, so once every command has
// been started the parent holds none, and a command that exits early gives
// the one writing to it SIGPIPE or EPIPE, as in a shell. As in a shell, start
// every command even after one fails to start: its neighbours then see end
// of file or EPIPE, and the pipes are released.
//
// The first command's Stdin and the last one's Stdout are left alone, so
// they may come from [Cmd.StdinPipe] and [Cmd.StdoutPipe], before or after
// Chain. Fewer than two commands, a nil one, one listed twice, one already
// started, a Stdout already set on any but the last or a Stdin on any but
// the first give an error matching [os.ErrInvalid], and change nothing.
//
// On Windows and Plan 9 the pipes are os.Pipe's. js and wasip1 have no
// pipes: the error matches [errors.ErrUnsupported].
func Chain(cmds ...*Cmd) error {
	if len(cmds) < 2 {
		return misuse("Chain of %d commands (it needs two or more)", len(cmds))
	}
	seen := make(map[*exec.Cmd]int, len(cmds))
	for i, c := range cmds {
		if c == nil || c.Cmd == nil {
			return misuse("Chain: command %d is nil", i)
		}
		if j, ok := seen[c.Cmd]; ok {
			return misuse("Chain: command %d is command %d again", i, j)
		}
		seen[c.Cmd] = i
		if c.started || c.Process != nil {
			return misuse("Chain: command %d already started", i)
		}
		if i > 0 && c.Stdin != nil {
			return misuse("Chain: command %d: Stdin already set", i)
		}
		if i < len(cmds)-1 && c.Stdout != nil {
			return misuse("Chain: command %d: Stdout already set", i)
		}
	}
	// Make every pipe before touching any command, so that a failure
	// leaves them all as they were.
	ends := make([]*os.File, 0, 2*(len(cmds)-1))
	for range len(cmds) - 1 {
		// Blocking at both ends: only the commands use them.
		r, w, err := pipe2(O_CLOEXEC)
		if err != nil {
			for _, f := range ends {
				_ = f.Close() // unused fresh pipes: the pipe2 error is the one to report
			}
			return err
		}
		ends = append(ends, r, w)
	}
	for i := range len(cmds) - 1 {
		r, w := ends[2*i], ends[2*i+1]
		cmds[i].Stdout = w
		cmds[i].childEnds = append(cmds[i].childEnds, w)
		cmds[i+1].Stdin = r
		cmds[i+1].childEnds = append(cmds[i+1].childEnds, r)
	}
	return nil
}

// unstarted checks that c can still be given pipes: it has an exec.Cmd and
// has not been started.
func (c *Cmd) unstarted(what string) error {
	if c == nil || c.Cmd == nil {
		return misuse("%s of a Cmd with no exec.Cmd", what)
	}
	if c.started || c.Process != nil {
		return misuse("%s after process started", what)
	}
	return nil
}

// misuse returns the error for a Cmd used wrongly, in the words os/exec
// uses; it matches os.ErrInvalid.
func misuse(format string, args ...any) error {
	return fmt.Errorf("pipe: %s: %w", fmt.Sprintf(format, args...), os.ErrInvalid)
}

// headBuffer keeps the first n bytes written to it and discards the rest,
// accepting everything so that the child never sees a write error.
type headBuffer struct {
	b []byte
	n int
}

func (h *headBuffer) Write(p []byte) (int, error) {
	if room := h.n - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}
