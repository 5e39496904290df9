//go:build unix

package pipe_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pipe2go/pipe"
)

// checkClean runs f, which must close every end it was given, and fails
// the test if afterwards a descriptor is open that was not before
// (checkNoLeak) or this process has a child it did not have, running or
// unreaped (childPIDs). Tests using it must not run in parallel.
func checkClean(t *testing.T, what string, f func()) {
	t.Helper()
	before, procOK := childPIDs(t)
	checkNoLeak(t, what, f)
	if !procOK {
		return
	}
	if after, _ := childPIDs(t); len(after) > 0 && !slices.Equal(after, before) {
		t.Errorf("%s: this process has children %v afterwards (before: %v)", what, after, before)
	}
}

// killedBy reports whether err is the exit of a process killed by sig.
func killedBy(err error, sig syscall.Signal) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

// TestPipelineGzip sends 100 MiB (8 with -short) through
// gzip -1 | gunzip | sha256sum and compares sha256sum's answer with the
// checksum of what was sent; afterwards no descriptor and no child is left.
func TestPipelineGzip(t *testing.T) {
	needProgram(t, "gzip", "gunzip", "sha256sum")
	size := 100 << 20
	if testing.Short() {
		size = 8 << 20
	}
	checkClean(t, "gzip | gunzip | sha256sum", func() {
		p := newPipeline(t, command(t, "gzip", "-1"), command(t, "gunzip"), command(t, "sha256sum"))
		in := end(t, p.StdinPipe)
		out := end(t, p.StdoutPipe)
		defer out.Close()
		if err := p.Start(); err != nil {
			in.Close()
			t.Fatal(err)
		}
		seed := uint64(time.Now().UnixNano())
		t.Logf("seed %d", seed)
		sent := chainData(in, size, seed) // closes in
		got, err := io.ReadAll(out)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
		sum := <-sent
		if want := hex.EncodeToString(sum[:]) + "  -\n"; string(got) != want {
			t.Errorf("sha256sum of %d bytes through gzip | gunzip: %q; want %q", size, got, want)
		}
	})
}

// TestPipelineSIGPIPE runs yes | head -n 1 and yes | cat | head -n 1: the
// writers die of SIGPIPE once head exits, and the pipeline succeeds, as in
// a shell.
func TestPipelineSIGPIPE(t *testing.T) {
	needProgram(t, "yes", "cat", "head")
	for _, middle := range []bool{false, true} {
		checkClean(t, "yes | head", func() {
			cmds := []*pipe.Cmd{command(t, "yes")}
			if middle {
				cmds = append(cmds, command(t, "cat"))
			}
			cmds = append(cmds, command(t, "head", "-n", "1"))
			p := newPipeline(t, cmds...)
			out, err := p.Output()
			if err != nil || string(out) != "y\n" {
				t.Errorf("%d commands: Output = %q, %v; want \"y\\n\" and no error", len(cmds), out, err)
			}
			// The rule was at work: the writers did die of SIGPIPE.
			for _, c := range cmds[:len(cmds)-1] {
				if ws := c.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGPIPE {
					t.Errorf("%s: %v; want killed by SIGPIPE", c, c.ProcessState)
				}
			}
		})
	}
}

// TestPipelineFailure checks which failure Wait reports: the first in
// pipeline order that is not a writer's SIGPIPE death, named by position
// and program, wrapping the command's *exec.ExitError.
func TestPipelineFailure(t *testing.T) {
	needProgram(t, "sh", "yes", "cat", "false")
	for _, tc := range []struct {
		name     string
		cmds     [][]string
		want     string // the start of the error
		exitCode int    // -1: killed by SIGPIPE
		stderr   string
	}{
		{"failing middle", [][]string{{"yes"}, {"sh", "-c", "head -c 100000 >/dev/null; echo oops >&2; exit 3"}, {"cat"}},
			"pipe: command 2 of 3 (sh): exit status 3", 3, "oops\n"},
		{"failing reader, writer dies of SIGPIPE", [][]string{{"yes"}, {"false"}},
			"pipe: command 2 of 2 (false): exit status 1", 1, ""},
		{"two failures, the first reported", [][]string{{"sh", "-c", "exit 4"}, {"sh", "-c", "cat >/dev/null; exit 5"}},
			"pipe: command 1 of 2 (sh): exit status 4", 4, ""},
		{"the last command's SIGPIPE is reported", [][]string{{"true"}, {"sh", "-c", "kill -PIPE $$"}},
			"pipe: command 2 of 2 (sh): signal: broken pipe", -1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkClean(t, tc.name, func() {
				var cmds []*pipe.Cmd
				for _, args := range tc.cmds {
					cmds = append(cmds, command(t, args[0], args[1:]...))
				}
				_, err := newPipeline(t, cmds...).Output()
				if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
					t.Fatalf("Output: %v; want an error starting %q", err, tc.want)
				}
				var ee *exec.ExitError
				if !errors.As(err, &ee) {
					t.Fatalf("Output: %v (%T) wraps no *exec.ExitError", err, err)
				}
				if ee.ExitCode() != tc.exitCode {
					t.Errorf("exit code %d; want %d", ee.ExitCode(), tc.exitCode)
				}
				if string(ee.Stderr) != tc.stderr {
					t.Errorf("ExitError.Stderr = %q; want %q", ee.Stderr, tc.stderr)
				}
				if errors.Is(err, context.Canceled) {
					t.Errorf("%v matches context.Canceled, with no context done", err)
				}
			})
		})
	}
}

// TestPipelineStartFailure makes Start fail at each position of
// cat | cat | cat, with a missing program and with a context done before
// Start: the error names the command, the commands started before it were
// killed (cat would wait for input for ever) and reaped, this process holds
// only its own two ends, which see EPIPE and end of file, and a later Wait
// returns the same error at once.
func TestPipelineStartFailure(t *testing.T) {
	needProgram(t, "cat")
	done, cancel := context.WithCancel(t.Context())
	cancel()
	for _, tc := range []struct {
		name   string
		cmd    func() *pipe.Cmd
		prog   string
		target error
	}{
		{"missing", missingCmd, "pipe-test-no-such-program", exec.ErrNotFound},
		{"context done", func() *pipe.Cmd { return pipe.CommandContext(done, "cat") }, "cat", context.Canceled},
	} {
		for pos := range 3 {
			t.Run(fmt.Sprintf("%s/%d", tc.name, pos+1), func(t *testing.T) {
				checkClean(t, tc.name, func() {
					before := openFDs()
					cmds := []*pipe.Cmd{command(t, "cat"), command(t, "cat"), command(t, "cat")}
					cmds[pos] = tc.cmd()
					p := newPipeline(t, cmds...)
					in := end(t, p.StdinPipe)
					out := end(t, p.StdoutPipe)
					defer in.Close()
					defer out.Close()
					started := time.Now()
					err := p.Start()
					if d := time.Since(started); d > 10*time.Second {
						// cat waits for input for ever: only a kill ends it
						t.Errorf("Start took %v: the commands started were not killed", d)
					}
					want := fmt.Sprintf("pipe: command %d of 3 (%s): ", pos+1, tc.prog)
					if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, tc.target) {
						t.Fatalf("Start: %v; want an error starting %q matching %v", err, want, tc.target)
					}
					for i, c := range cmds[:pos] {
						if c.ProcessState == nil {
							t.Errorf("command %d, started before the failure, was not reaped", i+1)
						} else if ws := c.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
							t.Errorf("command %d: %v; want killed", i+1, c.ProcessState)
						}
					}
					if got, want := newPipeFDs(t, before), fdsOf(t, in, out); !slices.Equal(got, want) {
						t.Errorf("after the failed Start this process holds pipe fds %v; want only its own ends %v", got, want)
					}
					if _, err := in.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
						t.Errorf("write to the pipeline's stdin: %v; want EPIPE", err)
					}
					if n, err := out.Read(make([]byte, 1)); n != 0 || err != io.EOF {
						t.Errorf("read of the pipeline's stdout: %d, %v; want end of file", n, err)
					}
					start := time.Now()
					if werr := p.Wait(); werr != err {
						t.Errorf("Wait after the failed Start: %v; want Start's %v", werr, err)
					}
					if d := time.Since(start); d > time.Second {
						t.Errorf("Wait after the failed Start took %v", d)
					}
				})
			})
		}
	}
}

// TestPipelineContextCancel cancels the context of sleep 10 | cat: Wait
// returns within 500 ms of the cancel, with an error that matches
// context.Canceled and wraps the kill's *exec.ExitError; a timeout gives
// context.DeadlineExceeded.
func TestPipelineContextCancel(t *testing.T) {
	needProgram(t, "sleep", "cat")
	t.Run("cancel", func(t *testing.T) {
		checkClean(t, "cancel", func() {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			sleep, cat := pipe.CommandContext(ctx, "sleep", "10"), pipe.CommandContext(ctx, "cat")
			p := newPipeline(t, sleep, cat)
			out := end(t, p.StdoutPipe)
			defer out.Close()
			if err := p.Start(); err != nil {
				t.Fatal(err)
			}
			waitProcessBlocked(t, sleep.Process.Pid)
			waitProcessBlocked(t, cat.Process.Pid)
			start := time.Now()
			cancel()
			err := p.Wait()
			d := time.Since(start)
			t.Logf("Wait returned %v after the cancel", d)
			if d > 500*time.Millisecond {
				t.Errorf("Wait returned %v after the cancel; want within 500ms", d)
			}
			if !errors.Is(err, context.Canceled) || !killedBy(err, syscall.SIGKILL) ||
				!strings.HasPrefix(err.Error(), "pipe: command 1 of 2 (sleep): signal: killed") {
				t.Errorf("Wait: %v; want sleep's kill, matching context.Canceled", err)
			}
			if b, err := io.ReadAll(out); err != nil || len(b) != 0 {
				t.Errorf("reading the output: %q, %v; want end of file", b, err)
			}
		})
	})
	t.Run("timeout", func(t *testing.T) {
		checkClean(t, "timeout", func() {
			const timeout = 300 * time.Millisecond
			ctx, cancel := context.WithTimeout(t.Context(), timeout)
			defer cancel()
			p := newPipeline(t, pipe.CommandContext(ctx, "sleep", "10"), pipe.CommandContext(ctx, "cat"))
			out, err := p.Output()
			<-ctx.Done()
			expired := time.Now()
			if !errors.Is(err, context.DeadlineExceeded) || len(out) != 0 {
				t.Errorf("Output: %q, %v; want no output and an error matching context.DeadlineExceeded", out, err)
			}
			if d := time.Since(expired); d > 500*time.Millisecond {
				t.Errorf("Output returned %v after the timeout; want within 500ms", d)
			}
		})
	})
}

// TestPipelineConcurrent runs 50 pipelines of three commands at once,
// seq N | sort -rn | head -n 1, each with its own N: every one must print
// its own N, and nothing may be left open or unreaped.
func TestPipelineConcurrent(t *testing.T) {
	needProgram(t, "seq", "sort", "head")
	const n = 50
	checkClean(t, "50 pipelines", func() {
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			p := newPipeline(t, command(t, "seq", strconv.Itoa(1000+i)), command(t, "sort", "-rn"), command(t, "head", "-n", "1"))
			wg.Go(func() {
				out, err := p.Output()
				if err == nil && string(out) != fmt.Sprintf("%d\n", 1000+i) {
					err = fmt.Errorf("output %q", out)
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("pipeline %d: %v", i, err)
			}
		}
	})
}

// TestPipelineWaitTwiceAtOnce calls Wait from two goroutines at once: one
// waits and succeeds, the other fails at once with a misuse error.
func TestPipelineWaitTwiceAtOnce(t *testing.T) {
	needProgram(t, "sleep", "cat")
	p := newPipeline(t, command(t, "sleep", "0.3"), command(t, "cat"))
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 2)
	for range 2 {
		go func() { errc <- p.Wait() }()
	}
	first := <-errc
	checkMisuse(t, "the Wait that returned first", first, "Wait was already called")
	if err := <-errc; err != nil {
		t.Errorf("the other Wait: %v", err)
	}
}

// TestPipelineOneCommand runs a pipeline of a single command.
func TestPipelineOneCommand(t *testing.T) {
	needProgram(t, "sh")
	out, err := newPipeline(t, command(t, "sh", "-c", "echo alone")).Output()
	if err != nil || string(out) != "alone\n" {
		t.Errorf("Output = %q, %v; want \"alone\\n\"", out, err)
	}
}

// grandchildScript writes a line to each of standard output, standard error
// and descriptor 3 and exits, leaving a grandchild (sleep 30) that holds all
// of them and standard input, as a program that starts a daemon does.
const grandchildScript = "exec 5<&0; sleep 30 <&5 & echo out; echo err >&2; echo extra >&3"

// grandchildCmd returns sh running grandchildScript in a process group of
// its own, with every pipe: stdin, stdout, stderr and an extra pipe on
// descriptor 3. The group, sleep included, is killed when the test ends.
func grandchildCmd(t *testing.T, ctx context.Context, waitDelay time.Duration) (c *pipe.Cmd, ends []*os.File) {
	t.Helper()
	c = pipe.CommandContext(ctx, "sh", "-c", grandchildScript)
	c.WaitDelay = waitDelay
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	in, out, stderr := end(t, c.StdinPipe), end(t, c.StdoutPipe), end(t, c.StderrPipe)
	extra, _, err := c.ExtraPipe(true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { extra.Close() })
	extra.SetDeadline(time.Now().Add(bound))
	return c, []*os.File{in, out, stderr, extra}
}

// startGrandchild starts c, reads the line it writes to each output and
// returns the four ends' calls, blocked: three reads and a write that fills
// the pipe nobody reads. Each sends its error on the channel.
func startGrandchild(t *testing.T, c *pipe.Cmd, ends []*os.File) <-chan error {
	t.Helper()
	start(t, c)
	pgid := c.Process.Pid
	t.Cleanup(func() { syscall.Kill(-pgid, syscall.SIGKILL) })
	for i, want := range []string{"", "out\n", "err\n", "extra\n"} {
		if i == 0 {
			continue
		}
		b := make([]byte, len(want))
		if _, err := io.ReadFull(ends[i], b); err != nil || string(b) != want {
			t.Fatalf("the script's line on %s: %q, %v; want %q", ends[i].Name(), b, err, want)
		}
	}
	errc := make(chan error, 4)
	readers := blockedCount("os.(*File).Read(")
	writers := blockedCount("os.(*File).Write(")
	go func() {
		buf := make([]byte, 64<<10)
		for {
			if _, err := ends[0].Write(buf); err != nil {
				errc <- err
				return
			}
		}
	}()
	for _, f := range ends[1:] {
		go func() {
			b, err := io.ReadAll(f)
			if err == nil && len(b) > 0 {
				err = fmt.Errorf("read %q more", b)
			}
			errc <- err
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); blockedCount("os.(*File).Read(") < readers+3 || blockedCount("os.(*File).Write(") < writers+1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the reads and the write did not block within 10s")
		}
	}
	return errc
}

// checkEndsExpire waits for the four calls of startGrandchild and checks
// that each returned os.ErrDeadlineExceeded, no sooner than delay after t0
// and within 5s more.
func checkEndsExpire(t *testing.T, errc <-chan error, t0 time.Time, delay time.Duration) {
	t.Helper()
	for range 4 {
		select {
		case err := <-errc:
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("a waiting call on an end returned %v; want os.ErrDeadlineExceeded", err)
			}
			if d := time.Since(t0); d < delay {
				t.Errorf("a waiting call on an end returned %v after the start of WaitDelay (%v); want no sooner", d, delay)
			}
		case <-time.After(delay + 5*time.Second):
			t.Fatalf("the calls on the ends still waited %v after the start of WaitDelay (%v)", delay+5*time.Second, delay)
		}
	}
}

// TestCmdWaitDelay runs a command that leaves a grandchild holding all its
// pipes: with a WaitDelay, the reads and the write waiting on the ends
// return os.ErrDeadlineExceeded WaitDelay after the context is done (the
// caller waiting on the ends before calling Wait) or after Wait has reaped
// the command (the caller waiting in other goroutines); with none they go
// on waiting. Nothing of the command runs after Wait.
func TestCmdWaitDelay(t *testing.T) {
	needProgram(t, "sh", "sleep")
	const delay = 200 * time.Millisecond
	t.Run("context", func(t *testing.T) {
		goroutines := runtime.NumGoroutine()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		c, ends := grandchildCmd(t, ctx, delay)
		errc := startGrandchild(t, c, ends)
		t0 := time.Now()
		cancel()
		checkEndsExpire(t, errc, t0, delay)
		c.Wait()
		for _, f := range ends {
			f.Close()
		}
		// The calls' goroutines have returned; exec's own and the
		// watch's must be gone too.
		for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > goroutines; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d goroutines after Wait; %d before Start", runtime.NumGoroutine(), goroutines)
			}
		}
	})
	t.Run("Wait", func(t *testing.T) {
		c, ends := grandchildCmd(t, t.Context(), delay)
		errc := startGrandchild(t, c, ends)
		t0 := time.Now() // Wait sets the deadlines after this
		if err := c.Wait(); err != nil {
			t.Fatal(err)
		}
		checkEndsExpire(t, errc, t0, delay)
	})
	t.Run("zero", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		c, ends := grandchildCmd(t, ctx, 0)
		errc := startGrandchild(t, c, ends)
		cancel()
		c.Wait()
		select {
		case err := <-errc:
			t.Fatalf("with no WaitDelay a call on an end returned %v while the grandchild holds the pipes", err)
		case <-time.After(3 * delay):
		}
		syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		for range 4 {
			if err := <-errc; err != nil && !errors.Is(err, syscall.EPIPE) {
				t.Errorf("once the grandchild is gone: %v; want end of file or EPIPE", err)
			}
		}
	})
	t.Run("no watch after Wait", func(t *testing.T) {
		// Wait sets the deadlines; once they are cleared, ending the
		// context must leave them clear, or the output waiting in the
		// pipe could not be read: the context is not watched after
		// Wait.
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		c, ends := grandchildCmd(t, ctx, time.Millisecond)
		start(t, c)
		t.Cleanup(func() { syscall.Kill(-c.Process.Pid, syscall.SIGKILL) })
		if err := c.Wait(); err != nil {
			t.Fatal(err)
		}
		out := ends[1]
		out.SetDeadline(time.Time{})
		cancel()
		time.Sleep(3 * delay)
		b := make([]byte, 16)
		n, err := out.Read(b)
		if err != nil || string(b[:n]) != "out\n" {
			t.Errorf("read after Wait and the cancel: %q, %v; want \"out\\n\"", b[:n], err)
		}
	})
}

// TestPipelineWaitDelay runs echo x | sh, sh leaving a grandchild holding
// its standard output: the caller reads the pipeline's output in one
// goroutine and waits in another, and the read ends WaitDelay after Wait.
func TestPipelineWaitDelay(t *testing.T) {
	needProgram(t, "sh", "sleep", "echo")
	const delay = 200 * time.Millisecond
	last := command(t, "sh", "-c", "cat >/dev/null; sleep 30 & echo out")
	last.WaitDelay = delay
	last.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := newPipeline(t, command(t, "echo", "x"), last)
	out := end(t, p.StdoutPipe)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := last.Process.Pid
	t.Cleanup(func() { syscall.Kill(-pgid, syscall.SIGKILL) })
	type result struct {
		b   []byte
		err error
		at  time.Time
	}
	rc := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(out)
		rc <- result{b, err, time.Now()}
	}()
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	waited := time.Now()
	select {
	case r := <-rc:
		if !errors.Is(r.err, os.ErrDeadlineExceeded) || string(r.b) != "out\n" {
			t.Errorf("reading the output: %q, %v; want \"out\\n\", then os.ErrDeadlineExceeded", r.b, r.err)
		}
		if d := r.at.Sub(waited); d > delay+5*time.Second {
			t.Errorf("the read returned %v after Wait; want about %v", d, delay)
		}
	case <-time.After(delay + 10*time.Second):
		t.Fatal("the read of the output still waits on the grandchild")
	}
}
