package pipe_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/pipe2go/pipe"
	"golang.org/x/sys/unix"
)

// TestVmspliceWriterMadeBlockingWhileParked: a copy that parked in the
// poller (the pipe full, and refusing RWF_NOWAIT since a mapped commit, so
// that write(2) is in use) wakes after the descriptor was made blocking by
// someone sharing it (here a dup, as another process or Fd() would). The
// copy must look at F_GETFL again after the park and map the rest: a
// write(2) then would sleep in the kernel inside RawConn.Write, and neither
// the deadline nor Close of w would end the wait (Close itself would hang
// until the reader drained).
func TestVmspliceWriterMadeBlockingWhileParked(t *testing.T) {
	for _, toggle := range []bool{false, true} {
		for _, way := range []string{"small commit", "Write"} {
			for _, end := range []string{"Close", "deadline"} {
				t.Run(fmt.Sprintf("toggle=%v/%s/%s", toggle, way, end), func(t *testing.T) {
					r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
					v, err := pipe.NewVmspliceWriter(w, 64<<10)
					if err != nil {
						t.Fatal(err)
					}
					defer v.Close()
					// One mapped commit of 64 KiB: the pipe (64 KiB) is full and
					// refuses RWF_NOWAIT from now on.
					if err := v.Commit(len(v.Buffer())); err != nil {
						t.Fatal(err)
					}
					done := make(chan error, 1)
					go func() {
						if way == "Write" {
							_, err := v.Write(make([]byte, 128<<10)) // straight path
							done <- err
							return
						}
						done <- v.Commit(8 << 10) // copied
					}()
					frame := "VmspliceWriter).Commit("
					if way == "Write" {
						frame = "VmspliceWriter).Write("
					}
					waitBlocked(t, frame)
					// Someone sharing the open file description makes it blocking.
					dup, err := unix.Dup(fdOf(t, w))
					if err != nil {
						t.Fatal(err)
					}
					defer unix.Close(dup)
					if toggle {
						if err := unix.SetNonblock(dup, false); err != nil {
							t.Fatal(err)
						}
					}
					// The reader takes one page: the writer wakes and retries.
					if _, err := io.ReadFull(r, make([]byte, 4096)); err != nil {
						t.Fatal(err)
					}
					time.Sleep(100 * time.Millisecond) // let it retry (and sleep in write(2))
					closed := make(chan error, 1)
					want := os.ErrDeadlineExceeded
					if end == "Close" {
						want = os.ErrClosed
						go func() { closed <- w.Close() }()
					} else if err := w.SetWriteDeadline(time.Now()); err != nil {
						t.Fatal(err)
					}
					select {
					case err := <-done:
						if !errors.Is(err, want) {
							t.Errorf("the wait ended with %v; want %v", err, want)
						}
					case <-time.After(3 * time.Second):
						go io.Copy(io.Discard, r)
						<-done
						t.Fatalf("%s did not end the wait within 3 s: the copy sleeps in a blocking write(2) holding w's RawConn", end)
					}
					if end == "Close" {
						select {
						case <-closed:
						case <-time.After(3 * time.Second):
							go io.Copy(io.Discard, r)
							t.Fatal("w.Close did not return within 3 s")
						}
					}
				})
			}
		}
	}
}

// TestVmspliceWriterFdByExecWhileParked is the same with no explicit
// fcntl: the write end comes from os.Pipe, and while a copied commit is
// parked, another goroutine starts a child with the write end in
// ExtraFiles (exec calls Fd, which makes an os.Pipe end blocking). Close
// must still end the Commit.
func TestVmspliceWriterFdByExecWhileParked(t *testing.T) {
	needProgram(t, "true")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	v, err := pipe.NewVmspliceWriter(w, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if err := v.Commit(len(v.Buffer())); err != nil { // mapped: the pipe is full
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- v.Commit(8 << 10) }()
	waitBlocked(t, "VmspliceWriter).Commit(")
	cmd := exec.Command("true")
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	w.Close()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("Commit ended with %v; want os.ErrClosed", err)
		}
	case <-time.After(3 * time.Second):
		go io.Copy(io.Discard, r)
		<-done
		t.Fatal("Close did not end the Commit within 3 s: the parked copy went on with a blocking write(2)")
	}
}
