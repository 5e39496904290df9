package pipe

import (
	"io"
	"testing"
	"time"
)

// TestVmspliceWriterTellsChooserOfUntimed checks the callers of the way
// chooser's untimed: a small commit, and a straight Write, that wait for
// the reader while the chooser has an interval open must add that wait to
// what the next chosen commit's interval leaves out. (From a review: the
// chooser's own tests pass with the calls deleted.)
func TestVmspliceWriterTellsChooserOfUntimed(t *testing.T) {
	const size, wait = 4 << 10, 40 * time.Millisecond
	for _, way := range []string{"small commit", "Write"} {
		t.Run(way, func(t *testing.T) {
			r, w, err := Pipe2(O_CLOEXEC | O_NONBLOCK)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			defer w.Close()
			v, err := NewVmspliceWriter(w, size)
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			c, err := capacity(w)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(make([]byte, c)); err != nil { // full
				t.Fatal(err)
			}
			v.way.last = nanotime() // an interval is open
			done := make(chan error, 1)
			go func() {
				time.Sleep(wait)
				_, err := io.ReadFull(r, make([]byte, c+size))
				done <- err
			}()
			if way == "Write" {
				if _, err := v.Write(make([]byte, size)); err != nil {
					t.Fatal(err)
				}
			} else if err := v.Commit(len(v.Buffer())); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := time.Duration(v.way.skip); got < wait/2 {
				t.Errorf("the chooser was told of %v of untimed writes after a %s that waited about %v with an interval open", got, way, wait)
			}
			// With no interval open, nothing needs telling.
			v.way.last, v.way.skip = 0, 0
			if err := v.Commit(len(v.Buffer())); err != nil {
				t.Fatal(err)
			}
			if n, err := io.ReadFull(r, make([]byte, size)); err != nil {
				t.Fatal(n, err)
			}
			if v.way.skip != 0 {
				t.Errorf("a small commit with no interval open told the chooser of %v of untimed writes; want none (the clock not read)", time.Duration(v.way.skip))
			}
		})
	}
}
