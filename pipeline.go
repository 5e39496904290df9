package pipe

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
)

// Pipeline is commands connected stdout to stdin, as a shell's a | b | c.
// The pipes between the commands come from [Chain]: the bytes go from one
// program to the next through the kernel and never through the Go program.
// A Pipeline starts, waits for and reports on its commands as a shell does,
// and leaves nothing behind: after Wait no pipe of it is open in this
// process but the ends [Pipeline.StdinPipe] and [Pipeline.StdoutPipe] gave
// the caller, and no command is left unreaped, whatever failed.
//
// Its commands are [Cmd] values: set their Dir, Env, Stderr, WaitDelay and
// the rest before Start, through the Cmds slice given to [NewPipeline] or
// [Pipeline.Cmds], and make them with [CommandContext] to kill them all when
// a context ends. The first command's Stdin and the last one's Stdout are
// the caller's: a file, a reader or writer, or the pipes
// [Pipeline.StdinPipe] and [Pipeline.StdoutPipe] give.
//
// Misuse gives an error matching [os.ErrInvalid] at once: Start twice, Wait
// before Start or twice (a second Wait fails at once even while the first is
// waiting), a pipe method or Output after Start. Like a Cmd, a Pipeline
// cannot be reused after Start, and is set up from one goroutine.
//
// On Windows and Plan 9 the pipes are os.Pipe's, as for [Chain]. js and
// wasip1 have no pipes: NewPipeline gives an error matching
// [errors.ErrUnsupported].
type Pipeline struct {
	cmds []*Cmd

	mu       sync.Mutex
	state    pipelineState
	startErr error // the error of a failed Start, which Wait returns
}

// pipelineState is where a Pipeline is in its life.
type pipelineState int

const (
	made        pipelineState = iota // by NewPipeline
	started                          // every command started
	startFailed                      // Start failed and cleaned up
	waited                           // Wait has been called
)

// NewPipeline connects the commands in order, each one's standard output to
// the next one's standard input, with [Chain]'s pipes and rules, and returns
// the Pipeline that runs them. A single command is a Pipeline too, with
// nothing to connect.
//
// No command, a nil one, one listed twice, one already started, one in
// another Pipeline or connected by Chain, a Stdout already set on any but
// the last or a Stdin on any but the first give an error matching
// [os.ErrInvalid] and change nothing. A command belongs to the Pipeline from
// then on: Chain and NewPipeline refuse it.
func NewPipeline(cmds ...*Cmd) (*Pipeline, error) {
	if len(cmds) == 0 {
		return nil, misuse("NewPipeline of no commands")
	}
	if !pipesSupported {
		return nil, unsupported("Pipeline (no pipes)")
	}
	if err := checkLinks("NewPipeline", cmds); err != nil {
		return nil, err
	}
	for i, c := range cmds {
		if c.chained {
			return nil, misuse("NewPipeline: command %d is connected by Chain already (give NewPipeline every command instead)", i)
		}
	}
	if len(cmds) > 1 {
		if err := link(cmds); err != nil {
			return nil, err
		}
	}
	p := &Pipeline{cmds: slices.Clone(cmds)}
	for _, c := range cmds {
		c.pipeline = p
	}
	return p, nil
}

// Cmds returns the commands of the Pipeline, in order, in a new slice.
func (p *Pipeline) Cmds() []*Cmd {
	if p == nil {
		return nil
	}
	return slices.Clone(p.cmds)
}

// StdinPipe returns the write end of a pipe whose read end becomes the first
// command's standard input, as [Cmd.StdinPipe] does: the caller writes and
// closes it, and it uses the runtime poller.
func (p *Pipeline) StdinPipe() (*os.File, error) {
	if err := p.usable("StdinPipe"); err != nil {
		return nil, err
	}
	return p.cmds[0].StdinPipe()
}

// StdoutPipe returns the read end of a pipe whose write end becomes the last
// command's standard output, as [Cmd.StdoutPipe] does: the caller reads and
// closes it, and it stays readable after Wait.
func (p *Pipeline) StdoutPipe() (*os.File, error) {
	if err := p.usable("StdoutPipe"); err != nil {
		return nil, err
	}
	return p.cmds[len(p.cmds)-1].StdoutPipe()
}

// usable checks that p was made by NewPipeline and is not started yet, for
// the method named what.
func (p *Pipeline) usable(what string) error {
	if p == nil || len(p.cmds) == 0 {
		return misuse("%s of a Pipeline not made by NewPipeline", what)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state != made {
		return misuse("Pipeline.%s after Start", what)
	}
	return nil
}

// Start starts every command in order, with [Cmd.Start], keeping this
// process's copies of the commands' pipe ends open until every command has
// started. If one cannot start, Start kills (SIGKILL; TerminateProcess on
// Windows; the note "kill" on Plan 9) the ones it has started, and only
// then closes those copies, so that none sees end of file or a broken pipe
// from a neighbour killed before it. On Linux each then dies of its kill
// unless it was exiting already; elsewhere a multi-threaded command, or on
// Plan 9 one that catches the note, may exit otherwise. Start reaps them,
// closes this process's copies of every pipe end the commands not started
// would have had, and returns an error naming the command by position and
// program and wrapping its error:
//
//	pipe: command 2 of 3 (gunzipp): exec: "gunzipp": executable file not found in $PATH
//
// (errors.Is(err, exec.ErrNotFound) holds). The ends the caller holds stay
// open, with no command at their other side: reads see end of file and
// writes fail with EPIPE. A later Wait returns the same error at once. A
// command whose kill is refused is reaped when it ends, and Start returns
// only then; processes the commands started are not killed, and reaping
// waits for one that holds a pipe that os/exec copies from (WaitDelay
// bounds that).
func (p *Pipeline) Start() error {
	if p == nil || len(p.cmds) == 0 {
		return misuse("Start of a Pipeline not made by NewPipeline")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state != made {
		return misuse("Pipeline.Start: already started")
	}
	for i, c := range p.cmds {
		if err := c.start(true); err != nil {
			p.abort(i)
			p.startErr = p.cmdError(i, err)
			p.state = startFailed
			return p.startErr
		}
	}
	for _, c := range p.cmds {
		c.closeChildEnds()
	}
	p.state = started
	return nil
}

// abortPause runs as abort begins and after each kill: a test widens the
// gaps with it.
var abortPause = func() {}

// abort undoes a Start that failed at command i: the commands before it are
// killed, the child ends that Start kept open (start with keep) are closed,
// the commands killed are reaped, and those after i, never to be started,
// lose their ends.
func (p *Pipeline) abort(i int) {
	// Each is to die of its kill, not of what a neighbour's death does to
	// its pipes: killed in turn while the pipes between them were only
	// theirs, a command whose upstream neighbour had died could read end of
	// file and exit 0 before its own kill came (a cat did, under the race
	// detector on a loaded machine), and one whose reader had gone could
	// die of SIGPIPE. So this process holds both ends of every pipe between
	// them until every kill is sent. On Linux, once the kill (kill(2) or
	// pidfd_send_signal) returns, the process exits with SIGKILL whatever
	// its threads do, unless it was exiting already (exit_group, another
	// fatal signal): the kernel marks the whole thread group for exit with
	// that code at once. Elsewhere a kill may take one thread first.
	abortPause()
	started := p.cmds[:i]
	for _, c := range started {
		// An error (the process has exited, or may not be killed) is
		// for Wait to meet.
		_ = c.Process.Kill()
		abortPause()
	}
	for _, c := range p.cmds[:i+1] {
		c.closeChildEnds()
	}
	for _, c := range started {
		_ = c.Wait() // the kill's error
	}
	for _, c := range p.cmds[i+1:] {
		c.closeChildEnds()
		c.ends = nil
		c.started = true // its pipes are gone: a Start could only fail
	}
}

// Wait waits for every command to exit and returns nil if every command
// exited 0, as a shell does, or if the only failures are commands killed by
// SIGPIPE with another command after them in the pipeline: a command dies so
// when the one it writes to has exited without reading everything, as head
// does, which is how yes | head -n 1 succeeds. Otherwise it returns the
// first failure in pipeline order that is not such a SIGPIPE death: the
// cause, not the writers that died of it (in yes | false, false's exit
// status 1). The error names the command by position and program and wraps
// the command's error (from [Cmd.Wait]), so errors.As(err, &exitErr) with
// an [*exec.ExitError] works:
//
//	pipe: command 2 of 3 (grep): exit status 2
//
// If the failing command's context (see [CommandContext]) is done, the
// error matches the context's error too: errors.Is(err, context.Canceled).
// The last command's SIGPIPE death is reported: it means the reader of its
// output, this process or another, went away.
//
// After a failed Start, Wait returns Start's error at once. Wait before
// Start or a second Wait gives an error matching [os.ErrInvalid]. Wait
// closes no end the caller holds.
func (p *Pipeline) Wait() error {
	if p == nil || len(p.cmds) == 0 {
		return misuse("Wait of a Pipeline not made by NewPipeline")
	}
	p.mu.Lock()
	state := p.state
	if state == started || state == startFailed {
		p.state = waited
	}
	p.mu.Unlock()
	switch state {
	case made:
		return misuse("Pipeline.Wait before Start")
	case waited:
		return misuse("Pipeline.Wait: Wait was already called")
	case startFailed:
		return p.startErr
	}
	errs := make([]error, len(p.cmds))
	for i, c := range p.cmds {
		errs[i] = c.Wait()
	}
	last := len(p.cmds) - 1
	for i, err := range errs {
		if err != nil && (i == last || !diedOfSIGPIPE(err)) {
			return p.cmdError(i, err)
		}
	}
	return nil
}

// Run starts the pipeline with [Pipeline.Start] and waits for it with
// [Pipeline.Wait].
func (p *Pipeline) Run() error {
	if err := p.Start(); err != nil {
		return err
	}
	return p.Wait()
}

// Output runs the pipeline with [Pipeline.Run] and returns the last
// command's standard output, which must be unset. As with exec.Cmd.Output,
// the start of the standard error of each command whose Stderr is unset is
// kept, and the [*exec.ExitError] in the error of the command
// that failed carries its own.
func (p *Pipeline) Output() ([]byte, error) {
	if err := p.usable("Output"); err != nil {
		return nil, err
	}
	last := p.cmds[len(p.cmds)-1]
	if last.Stdout != nil {
		return nil, misuse("Pipeline.Output: Stdout of the last command already set")
	}
	var stdout bytes.Buffer
	last.Stdout = &stdout
	stderrs := make([]*headBuffer, len(p.cmds))
	for i, c := range p.cmds {
		if c.Stderr == nil {
			stderrs[i] = &headBuffer{n: stderrKept}
			c.Stderr = stderrs[i]
		}
	}
	err := p.Run()
	var ce *cmdError
	var ee *exec.ExitError
	if errors.As(err, &ce) && stderrs[ce.i] != nil && errors.As(ce.err, &ee) {
		ee.Stderr = stderrs[ce.i].b
	}
	return stdout.Bytes(), err
}

// cmdError returns the error for command i's err, naming the command.
func (p *Pipeline) cmdError(i int, err error) error {
	c := p.cmds[i]
	name := c.Path
	if len(c.Args) > 0 {
		name = c.Args[0]
	}
	e := &cmdError{i: i, n: len(p.cmds), name: name, err: err}
	if c.ctx != nil {
		if ctxErr := c.ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			e.ctxErr = ctxErr
		}
	}
	return e
}

// cmdError is the error of a command in a Pipeline. It wraps the command's
// error and, if the command's context was done, the context's.
type cmdError struct {
	i, n   int    // the command's index, and how many there are
	name   string // the program
	err    error
	ctxErr error
}

func (e *cmdError) Error() string {
	// The command's own misuse errors start with "pipe: " too.
	s := fmt.Sprintf("pipe: command %d of %d (%s): %s", e.i+1, e.n, e.name, strings.TrimPrefix(e.err.Error(), "pipe: "))
	if e.ctxErr != nil {
		s += " (" + e.ctxErr.Error() + ")"
	}
	return s
}

func (e *cmdError) Unwrap() []error {
	if e.ctxErr != nil {
		return []error{e.err, e.ctxErr}
	}
	return []error{e.err}
}

// pipesSupported says whether the platform has pipes: Pipe2 honours no flag
// at all only where there are none (js, wasip1).
const pipesSupported = supportedFlags != 0
