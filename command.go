package pipe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"
)

// execCmd names exec.Cmd for embedding in Cmd under an unexported name.
type execCmd = exec.Cmd

// Cmd runs a program as an [exec.Cmd] does, with pipes from this package: the
// child's end of each pipe is blocking, as programs expect, and the parent's
// end is an *os.File that uses the runtime poller (deadlines work, Close wakes
// a Read or Write that waits), stays open until the caller closes it, and can
// be resized with [SetCapacity] on Linux.
//
// A Cmd holds an exec.Cmd, made by [Command] or [CommandContext], whose
// fields are promoted: set Path, Args, Env, Dir, Stdin, Stdout, Stderr,
// ExtraFiles, SysProcAttr, Cancel and WaitDelay on the Cmd before Start, as
// on an exec.Cmd, and read Process, ProcessState and Err. Its methods Environ
// and String are promoted too. Every other method of exec.Cmd (Start, Run,
// Output, CombinedOutput, Wait and the pipe methods) is the Cmd's own, and
// the exec.Cmd itself cannot be reached, so no way of starting the command
// skips what [Cmd.Start] does. For the same reason a Cmd cannot wrap an
// exec.Cmd built elsewhere, which its holder could still start: make the Cmd
// with Command, or CommandContext with the same context, and set the same
// fields. The zero Cmd holds no exec.Cmd: its methods return errors matching
// [os.ErrInvalid], and setting a field panics, as on a nil *exec.Cmd.
//
// [Cmd.Start] starts the command with exec.Cmd.Start and then closes, in the
// parent, the child's end of every pipe made by [Cmd.StdinPipe],
// [Cmd.StdoutPipe], [Cmd.StderrPipe], [Cmd.ExtraPipe] and [Chain], whether
// the start succeeded or not: the parent then reads end of file once the
// child (and any process it handed the descriptor on to) has exited, and
// writing after the child has gone fails with EPIPE. [Cmd.Wait] never closes
// the parent's ends, so reading standard output to end of file after Wait is
// allowed.
//
// exec.Cmd's WaitDelay bounds how long the parent's ends made by this
// package can keep waiting once the command is over, as it bounds exec's own
// pipes (golang/go#23019, #50436): when the context of a Cmd made by
// [CommandContext] is done, or when Wait has reaped the command, whichever
// comes first, the deadline of each of those ends is set to WaitDelay later
// (with SetDeadline, replacing one you set), so that a Read or Write still
// waiting then, on a grandchild that inherited the pipe and lives on, returns
// [os.ErrDeadlineExceeded], and so does any later one. Read what you need
// within WaitDelay of Wait, or leave WaitDelay zero: then nothing touches
// the ends. The context is watched only from a successful Start until Wait
// returns, by [context.AfterFunc]; after Wait nothing of the command runs.
// (exec also uses WaitDelay as it documents: to kill the process if it
// outlives its context by that long, and to close the pipes exec makes
// itself for a Stdin, Stdout or Stderr that is not an *os.File.)
//
// Like an exec.Cmd, a Cmd is not safe for concurrent use and cannot be
// reused after Start.
//
// On Windows and Plan 9 the pipes are os.Pipe's: blocking at both ends, so
// the parent's ends take no deadlines, and WaitDelay leaves them alone. js
// and wasip1 have no pipes: the pipe methods, Chain and [NewPipeline] give an
// error matching [errors.ErrUnsupported].
type Cmd struct {
	// execCmd is embedded under an unexported name, so that its fields and
	// its Environ and String are promoted but users cannot reach its own
	// Start, Run, Output and CombinedOutput, which would skip closing the
	// child's ends. Every other method of exec.Cmd is defined on Cmd
	// (TestCmdDefinesExecMethods fails when os/exec adds one).
	*execCmd

	// childEnds are the pipe ends handed to the child through Stdin,
	// Stdout, Stderr and ExtraFiles; Start closes them in the parent.
	childEnds []*os.File
	// ends are the parent's ends handed to the caller by StdinPipe,
	// StdoutPipe, StderrPipe and ExtraPipe, which WaitDelay applies to.
	ends []*os.File
	// ctx is CommandContext's context: the one exec.Cmd watches, which
	// it does not show.
	ctx context.Context
	// watch applies WaitDelay to ends from a successful Start to Wait.
	watch *endsWatch
	// started is set by Start, even when it fails, as exec.Cmd refuses a
	// second Start even after a failed one, and by a Pipeline whose Start
	// failed before this command's turn.
	started bool
	// chained is set by Chain, pipeline by NewPipeline. A command in a
	// Pipeline belongs to it: Chain and another NewPipeline refuse it.
	chained  bool
	pipeline *Pipeline
}

// Command returns a [Cmd] to run the named program with the given arguments,
// made by [exec.Command].
func Command(name string, arg ...string) *Cmd {
	return &Cmd{execCmd: exec.Command(name, arg...)}
}

// CommandContext is like [Command] but uses [exec.CommandContext]: the
// process is killed when ctx is done before it exits on its own, and the
// Cmd's WaitDelay applies to its pipe ends from then on (see [Cmd]). A nil ctx
// gives a Cmd whose Start fails with an error matching [os.ErrInvalid],
// where exec.CommandContext would panic.
func CommandContext(ctx context.Context, name string, arg ...string) *Cmd {
	if ctx == nil {
		c := exec.Command(name, arg...)
		c.Err = misuse("CommandContext with a nil Context")
		return &Cmd{execCmd: c}
	}
	return &Cmd{execCmd: exec.CommandContext(ctx, name, arg...), ctx: ctx}
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
	c.ends = append(c.ends, parent)
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
	c.ends = append(c.ends, parent)
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
//
// A second Start gives an error matching [os.ErrInvalid].
func (c *Cmd) Start() error { return c.start(false) }

// start is Start. With keep, it leaves the parent's copies of the child's
// ends open, whether or not the child started, for the caller to close
// (Pipeline.Start, once every command has started or been killed).
func (c *Cmd) start(keep bool) error {
	if c == nil || c.execCmd == nil {
		return misuse("Start of a Cmd with no exec.Cmd")
	}
	if c.started {
		return misuse("Start: already started")
	}
	c.started = true
	err := c.checkChildFiles()
	if err == nil {
		err = c.execCmd.Start()
	}
	if !keep {
		c.closeChildEnds()
	}
	if err == nil {
		c.watch = watchEnds(c.ctx, c.ends, c.WaitDelay)
	}
	c.ends = nil
	return err
}

// closeChildEnds closes the parent's copies of the child's ends.
func (c *Cmd) closeChildEnds() {
	for _, f := range c.childEnds {
		// The child has its own copy now, or never will: ours only keeps
		// the pipe open. Close cannot fail on a pipe that nothing else
		// in this program uses.
		_ = f.Close()
	}
	c.childEnds = nil
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
// with no exec.Cmd. Once it has reaped the command it stops watching the
// context and, with a WaitDelay, sets the deadlines of the parent's ends
// (see [Cmd]); it closes none of them.
func (c *Cmd) Wait() error {
	if c == nil || c.execCmd == nil {
		return misuse("Wait of a Cmd with no exec.Cmd")
	}
	err := c.execCmd.Wait()
	if w := c.watch; w != nil && c.ProcessState != nil {
		c.watch = nil
		w.reaped()
	}
	return err
}

// endsWatch applies a started command's WaitDelay to the parent's ends: it
// sets their deadlines delay after the context is done or the command has
// been reaped, whichever comes first.
type endsWatch struct {
	ends  []*os.File
	delay time.Duration
	// stop is context.AfterFunc's, nil without a context; done is closed
	// once expire, which AfterFunc runs, has set the deadlines.
	stop func() bool
	done chan struct{}
}

// watchEnds returns the watch for a command just started with ctx (nil for
// none) and the parent's ends, or nil when there is nothing to do: no
// WaitDelay, no ends, or ends that take no deadlines on this platform.
func watchEnds(ctx context.Context, ends []*os.File, delay time.Duration) *endsWatch {
	if delay <= 0 || len(ends) == 0 || !endsTakeDeadlines {
		return nil
	}
	w := &endsWatch{ends: ends, delay: delay}
	if ctx != nil {
		w.done = make(chan struct{})
		w.stop = context.AfterFunc(ctx, w.expire)
	}
	return w
}

// expire runs once the context is done: the ends stop waiting delay later.
func (w *endsWatch) expire() {
	setDeadlines(w.ends, time.Now().Add(w.delay))
	close(w.done)
}

// reaped ends the watch once Wait has reaped the command: it stops the
// context's AfterFunc, or waits until expire has run, so that nothing of
// the watch runs afterwards; and it sets the deadlines unless expire has
// set earlier ones.
func (w *endsWatch) reaped() {
	if w.stop != nil && !w.stop() {
		<-w.done // expire has started: the context ended first
		return
	}
	setDeadlines(w.ends, time.Now().Add(w.delay))
}

// setDeadlines sets the read and write deadlines of every file to t. A file
// the caller has closed already refuses (os.ErrClosed), which is fine: no
// call can wait on it.
func setDeadlines(files []*os.File, t time.Time) {
	for _, f := range files {
		_ = f.SetDeadline(t)
	}
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
// start of standard error, as much as exec.Cmd.Output keeps, goes into the
// [*exec.ExitError] it returns.
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
		stderr = &headBuffer{n: stderrKept}
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
// its own goroutine), in any order, and Wait for each; or let a [Pipeline]
// do all of it. The pipes between the
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
// started, one in a Pipeline, a Stdout already set on any but the last or a
// Stdin on any but the first give an error matching [os.ErrInvalid], and
// change nothing.
//
// On Windows and Plan 9 the pipes are os.Pipe's. js and wasip1 have no
// pipes: the error matches [errors.ErrUnsupported].
func Chain(cmds ...*Cmd) error {
	if len(cmds) < 2 {
		return misuse("Chain of %d commands (it needs two or more)", len(cmds))
	}
	if err := checkLinks("Chain", cmds); err != nil {
		return err
	}
	if err := link(cmds); err != nil {
		return err
	}
	for _, c := range cmds {
		c.chained = true
	}
	return nil
}

// checkLinks checks that cmds can be connected in this order (see Chain),
// for the function named what.
func checkLinks(what string, cmds []*Cmd) error {
	seen := make(map[*exec.Cmd]int, len(cmds))
	for i, c := range cmds {
		if c == nil || c.execCmd == nil {
			return misuse("%s: command %d is nil", what, i)
		}
		if j, ok := seen[c.execCmd]; ok {
			return misuse("%s: command %d is command %d again", what, i, j)
		}
		seen[c.execCmd] = i
		if c.started || c.Process != nil {
			return misuse("%s: command %d already started", what, i)
		}
		if c.pipeline != nil {
			return misuse("%s: command %d is in a Pipeline already", what, i)
		}
		if i > 0 && c.Stdin != nil {
			return misuse("%s: command %d: Stdin already set", what, i)
		}
		if i < len(cmds)-1 && c.Stdout != nil {
			return misuse("%s: command %d: Stdout already set", what, i)
		}
	}
	return nil
}

// link connects each command's Stdout to the next one's Stdin, for Chain
// and NewPipeline, which have checked them.
func link(cmds []*Cmd) error {
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
	if c == nil || c.execCmd == nil {
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

// stderrKept is how much of a command's standard error Output keeps for the
// *exec.ExitError when Stderr is unset: what exec.Cmd.Output keeps.
const stderrKept = 32 << 10

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
