//go:build unix

package pipe

import (
	"errors"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestPipelineAbortKillsEach widens the gap between the kills of a failed
// Start to 100 ms (afterKill) in cat | cat | (a missing program). Killed
// one at a time, the second cat reads end of file once the first is gone
// and exits 0 inside the gap (the race detector's slowness and a loaded
// machine made the gap wide enough once in ten runs of
// TestPipelineStartFailure). Stopped first, each dies of its own kill.
func TestPipelineAbortKillsEach(t *testing.T) {
	if _, err := exec.LookPath("cat"); err != nil {
		t.Skip("no cat:", err)
	}
	afterKill = func() { time.Sleep(100 * time.Millisecond) }
	defer func() { afterKill = func() {} }()
	cmds := []*Cmd{Command("cat"), Command("cat"), Command("pipe-test-no-such-program")}
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
		t.Fatalf("Start: %v; want an error matching exec.ErrNotFound", err)
	}
	for i, c := range cmds[:2] {
		if c.ProcessState == nil {
			t.Errorf("command %d was not reaped", i+1)
			continue
		}
		if ws := c.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Errorf("command %d: %v; want killed (SIGKILL)", i+1, c.ProcessState)
		}
	}
}
