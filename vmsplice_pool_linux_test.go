package pipe_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pipe2go/pipe"
)

// TestVmspliceCallsShareNoState: Vmsplice keeps the state of a finished
// call for the next one (vmspliceConns). Calls from many goroutines at
// once, on their own pipes, each mixed with calls that fail (a read end),
// that must not wait (SPLICE_F_NONBLOCK into a full pipe) and that must
// (a full pipe with a deadline), must each behave as if alone: every
// stream arrives whole and in order, and no call takes another's file,
// flags or answer. Run it with -race.
func TestVmspliceCallsShareNoState(t *testing.T) {
	const (
		workers = 8
		calls   = 300
	)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- vmspliceWorker(t, g, calls)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func vmspliceWorker(t *testing.T, g, calls int) error {
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	full := stalled(t)
	var want bytes.Buffer
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(r)
		got <- b
	}()
	for i := range calls {
		// A buffer of its own per call, never written again: nothing to
		// keep apart from the reader.
		p := []byte(fmt.Sprintf("worker %d call %d|", g, i))
		want.Write(p)
		if n, err := pipe.Vmsplice(w, [][]byte{p}, 0); n != len(p) || err != nil {
			return fmt.Errorf("worker %d call %d: Vmsplice = %d, %v; want %d, nil", g, i, n, err, len(p))
		}
		switch i % 10 {
		case 3:
			if n, err := pipe.Vmsplice(r, [][]byte{{1}}, 0); n != 0 || !errors.Is(err, syscall.EBADF) {
				return fmt.Errorf("worker %d: Vmsplice on a read end = %d, %v; want EBADF", g, n, err)
			}
		case 6:
			if n, err := pipe.Vmsplice(full, [][]byte{{1}}, pipe.SPLICE_F_NONBLOCK); n != 0 || !errors.Is(err, syscall.EAGAIN) {
				return fmt.Errorf("worker %d: Vmsplice(SPLICE_F_NONBLOCK) into a full pipe = %d, %v; want EAGAIN", g, n, err)
			}
		case 9:
			if i%100 != 99 {
				break
			}
			// The flags of the call before must not carry over: this
			// one waits until its deadline.
			if err := full.SetWriteDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
				return err
			}
			start := time.Now()
			if n, err := pipe.Vmsplice(full, [][]byte{{1}}, 0); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
				return fmt.Errorf("worker %d: Vmsplice into a full pipe with a deadline = %d, %v after %v; want os.ErrDeadlineExceeded", g, n, err, time.Since(start))
			}
			if d := time.Since(start); d < 15*time.Millisecond {
				return fmt.Errorf("worker %d: Vmsplice into a full pipe returned after %v, before its 20 ms deadline", g, d)
			}
			if err := full.SetWriteDeadline(time.Time{}); err != nil {
				return err
			}
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	if b := <-got; !bytes.Equal(b, want.Bytes()) {
		return fmt.Errorf("worker %d: the reader got %d bytes, not the %d written in order", g, len(b), want.Len())
	}
	return nil
}
