package pipe_test

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/pipe2go/pipe"
)

// TestVmspliceWriterEPIPEMidCopy: the reader goes away while a copied commit or a
// straight Write waits on a full pipe, on a fresh pipe (pwritev2) and one
// that had a mapped commit (write(2)).
func TestVmspliceWriterEPIPEMidCopy(t *testing.T) {
	for _, mapped := range []bool{false, true} {
		for _, way := range []string{"commit", "Write"} {
			t.Run(fmt.Sprintf("mapped=%v/%s", mapped, way), func(t *testing.T) {
				r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
				v, err := pipe.NewVmspliceWriter(w, 64<<10)
				if err != nil {
					t.Fatal(err)
				}
				defer v.Close()
				if mapped {
					if err := v.Commit(60 << 10); err != nil {
						t.Fatal(err)
					}
				} else {
					fill(t, w) // plain writes: pwritev2 RWF_NOWAIT stays allowed
				}
				done := make(chan error, 1)
				var n int
				go func() {
					if way == "Write" {
						n, err = v.Write(make([]byte, 200<<10))
						done <- err
						return
					}
					done <- v.Commit(12 << 10)
				}()
				if way == "Write" {
					waitBlocked(t, "VmspliceWriter).Write(")
				} else {
					waitBlocked(t, "VmspliceWriter).Commit(")
				}
				r.Close()
				select {
				case err := <-done:
					if !errors.Is(err, syscall.EPIPE) {
						t.Errorf("got %v; want EPIPE", err)
					}
					t.Logf("err %v, n %d", err, n)
				case <-time.After(3 * time.Second):
					t.Fatal("no return within 3 s after the reader closed")
				}
				if err := v.Flush(); !errors.Is(err, syscall.EPIPE) {
					t.Errorf("Flush after = %v; want sticky EPIPE", err)
				}
			})
		}
	}
}
