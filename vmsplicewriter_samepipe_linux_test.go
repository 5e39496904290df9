package pipe_test

import (
	"errors"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/pipe2go/pipe"
)

// TestVmspliceWriterReadFromOwnPipe: io.Copy(v, r) (which reaches
// v.ReadFrom via os.File.WriteTo's fallback) with r the read end of v's own
// pipe must fail at once with EINVAL, as pipe.Copy does for that pair,
// rather than copy the pipe into itself for ever at full CPU.
func TestVmspliceWriterReadFromOwnPipe(t *testing.T) {
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	mustWrite(t, w, make([]byte, 8192))
	v, err := pipe.NewVmspliceWriter(w, 4096)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := io.Copy(v, r); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, syscall.EINVAL) {
			t.Errorf("io.Copy(v, its own read end) = %v; want EINVAL (same pipe), as pipe.Copy gives", err)
		}
		v.Close()
		return
	case <-time.After(200 * time.Millisecond):
	}
	before := cpuTime(t)
	start := time.Now()
	time.Sleep(300 * time.Millisecond)
	used := cpuTime(t) - before
	r.Close() // ends the loop: the commit gets EPIPE
	<-done
	t.Errorf("io.Copy(v, its own read end) did not return; it used %v of CPU in %v (copying the pipe into itself)", used, time.Since(start))
}
