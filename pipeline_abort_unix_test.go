//go:build unix

package pipe

import (
	"errors"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestPipelineAbortKillsEach widens the gaps of a failed Start's abort to
// 100 ms each (abortPause: as abort begins, and after each kill) and checks
// that every command started dies of its kill, SIGKILL, which it does only
// while this process holds the pipes between them until every kill is sent:
//   - cat | cat | (a missing program): killed one at a time, the second
//     cat read end of file once the first was gone and exited 0 (the race
//     detector's slowness on a loaded machine made the gap wide enough
//     once in ten runs of TestPipelineStartFailure);
//   - cat | yes | (a missing program): once the failed command's ends were
//     closed, yes, writing to the last read end of its pipe, died of
//     SIGPIPE before its kill;
//   - yes | cat | (a missing program): killed downstream first (as one
//     version of the fix did, with the ends closed), yes died of SIGPIPE
//     once cat was gone.
func TestPipelineAbortKillsEach(t *testing.T) {
	for _, name := range []string{"cat", "yes"} {
		if _, err := exec.LookPath(name); err != nil {
			t.Skipf("no %s: %v", name, err)
		}
	}
	saved := abortPause
	abortPause = func() { time.Sleep(100 * time.Millisecond) }
	defer func() { abortPause = saved }()
	for _, tc := range [][2]string{{"cat", "cat"}, {"cat", "yes"}, {"yes", "cat"}} {
		t.Run(tc[0]+"|"+tc[1]+"|missing", func(t *testing.T) {
			cmds := []*Cmd{Command(tc[0]), Command(tc[1]), Command("pipe-test-no-such-program")}
			p, err := NewPipeline(cmds...)
			if err != nil {
				t.Fatal(err)
			}
			in, err := p.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			out, err := p.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			if err := p.Start(); !errors.Is(err, exec.ErrNotFound) {
				if err == nil {
					for _, c := range cmds {
						_ = c.Process.Kill()
					}
					_ = p.Wait()
				}
				t.Fatalf("Start: %v; want an error matching exec.ErrNotFound", err)
			}
			for i, c := range cmds[:2] {
				if c.ProcessState == nil {
					t.Errorf("command %d was not reaped", i+1)
					continue
				}
				if ws := c.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
					t.Errorf("command %d (%s): %v; want killed (SIGKILL)", i+1, cmds[i].Path, c.ProcessState)
				}
			}
		})
	}
}
