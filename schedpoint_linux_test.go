package pipe

import (
	"io"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestSchedPointLetsOthersRun checks schedPoint itself: once schedEvery has
// passed, point lets a goroutine waiting for the only P run before it
// returns; and it does so at most once every schedEvery.
func TestSchedPointLetsOthersRun(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const trials = 20
	var p schedPoint
	ran := 0
	for range trials {
		p.at.Store(nanotime() - 2*int64(schedEvery))
		done := make(chan struct{})
		go func() { close(done) }()
		p.point()
		select {
		case <-done:
			ran++
		default:
		}
		<-done
	}
	// The scheduler takes the global queue first on one turn in 61, where
	// Gosched put this goroutine: so not every trial.
	if ran < trials*3/4 {
		t.Errorf("a goroutine waiting for the only P ran during %d of %d points due to let it", ran, trials)
	}
	if got := p.yields.Load(); got != trials {
		t.Errorf("%d Gosched calls in %d points due one; want %d", got, trials, trials)
	}

	var q schedPoint
	start := time.Now()
	for range 200_000 {
		q.point()
	}
	if got, most := q.yields.Load(), int64(time.Since(start)/schedEvery)+1; got > most {
		t.Errorf("%d Gosched calls in %v of points; want at most one each %v (%d)", got, time.Since(start), schedEvery, most)
	}
}

// letsSchedulerIn runs step until yields reports at least 5 Gosched calls
// more than when it started, and fails the test if that takes 10 seconds:
// a loop of the package's calls that never parks must still pass through
// the scheduler (see schedPoint).
func letsSchedulerIn(t *testing.T, yields func() int64, step func() error) {
	t.Helper()
	from := yields()
	deadline := time.Now().Add(10 * time.Second)
	calls := 0
	for yields()-from < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("%d Gosched calls in %d calls over 10 s; want one every %v", yields()-from, calls, schedEvery)
		}
		if err := step(); err != nil {
			t.Fatal(err)
		}
		calls++
	}
}

// feed writes into w until the write fails (w closed), and drain reads r
// until it fails; each in a goroutine that wg waits for.
func feed(wg *sync.WaitGroup, w *os.File) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 64<<10)
		for {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}()
}

func drain(wg *sync.WaitGroup, r *os.File) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(io.Discard, r)
	}()
}

// TestTransferLoopsLetSchedulerIn checks that each of the package's loops
// of calls reaches a schedPoint: a VmspliceWriter's commits (its own), the
// splices of a long Copy (its sides', with a steady side and without), and
// loops of Splice, Tee, Vmsplice and short Copy calls (freeSched).
func TestTransferLoopsLetSchedulerIn(t *testing.T) {
	pipe := func(t *testing.T) (r, w *os.File) {
		r, w, err := Pipe2(O_CLOEXEC | O_NONBLOCK)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close(); w.Close() })
		return r, w
	}
	null := func(t *testing.T) *os.File {
		f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	free := freeSched.yields.Load

	for _, reuse := range []bool{false, true} {
		name := "Commit/fresh"
		if reuse {
			name = "Commit/reuse"
		}
		t.Run(name, func(t *testing.T) {
			r, w := pipe(t)
			var wg sync.WaitGroup
			defer wg.Wait()
			defer w.Close()
			drain(&wg, r)
			v, err := NewVmspliceWriter(w, 64<<10)
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			v.SetReuse(reuse)
			letsSchedulerIn(t, func() int64 { return v.conn.sched.yields.Load() }, func() error {
				b := v.Buffer()
				b[0]++
				return v.Commit(len(b))
			})
		})
	}

	t.Run("Copy/pipe to devnull", func(t *testing.T) {
		r, w := pipe(t)
		var wg sync.WaitGroup
		defer wg.Wait()
		defer w.Close()
		feed(&wg, w)
		d, err := open("splice", null(t), learnAll)
		if err != nil {
			t.Fatal(err)
		}
		s, err := open("splice", r, learnAll)
		if err != nil {
			t.Fatal(err)
		}
		sp := newSplicer(d, s)
		if sp.t.side != s {
			t.Fatal("a splice from a pipe into /dev/null does not wait on the pipe")
		}
		letsSchedulerIn(t, func() int64 { return s.sched.yields.Load() }, func() error {
			_, err := sp.splice(64 << 10)
			return err
		})
	})

	t.Run("Copy/pipe to pipe", func(t *testing.T) {
		r, w := pipe(t)
		r2, w2 := pipe(t)
		var wg sync.WaitGroup
		defer wg.Wait()
		defer w2.Close()
		defer w.Close()
		feed(&wg, w)
		drain(&wg, r2)
		d, err := open("splice", w2, learnAll)
		if err != nil {
			t.Fatal(err)
		}
		s, err := open("splice", r, learnAll)
		if err != nil {
			t.Fatal(err)
		}
		sp := newSplicer(d, s)
		if sp.t.side != nil {
			t.Fatal("a splice from a pipe into a pipe waits on one side")
		}
		letsSchedulerIn(t, func() int64 { return s.sched.yields.Load() + d.sched.yields.Load() }, func() error {
			_, err := sp.splice(64 << 10)
			return err
		})
	})

	t.Run("Splice", func(t *testing.T) {
		r, w := pipe(t)
		var wg sync.WaitGroup
		defer wg.Wait()
		defer w.Close()
		feed(&wg, w)
		n := null(t)
		letsSchedulerIn(t, free, func() error {
			_, err := Splice(n, r, 64<<10, 0)
			return err
		})
	})

	t.Run("Tee", func(t *testing.T) {
		r, w := pipe(t)
		r2, w2 := pipe(t)
		var wg sync.WaitGroup
		defer wg.Wait()
		defer w2.Close()
		drain(&wg, r2)
		if _, err := w.Write(make([]byte, 4096)); err != nil {
			t.Fatal(err)
		}
		letsSchedulerIn(t, free, func() error {
			_, err := Tee(w2, r, 4096, 0) // r keeps its bytes
			return err
		})
	})

	t.Run("Vmsplice", func(t *testing.T) {
		r, w := pipe(t)
		var wg sync.WaitGroup
		defer wg.Wait()
		defer w.Close()
		drain(&wg, r)
		buf := make([]byte, 64<<10)
		letsSchedulerIn(t, free, func() error {
			_, err := Vmsplice(w, [][]byte{buf}, 0)
			return err
		})
	})

	t.Run("Copy/short", func(t *testing.T) {
		r, w := pipe(t)
		var wg sync.WaitGroup
		defer wg.Wait()
		defer w.Close()
		feed(&wg, w)
		n := null(t)
		letsSchedulerIn(t, free, func() error {
			_, err := Copy(n, io.LimitReader(r, 64<<10))
			return err
		})
	})
}

// TestParkedCommitsDoNotGosched checks that a call that parked owes no
// Gosched: commits that each wait for a reader taking a buffer every
// 2*schedEvery have been through the scheduler, and a Gosched after each
// would only wake a thread for the idle P.
func TestParkedCommitsDoNotGosched(t *testing.T) {
	const size, rounds = 64 << 10, 20
	r, w, err := Pipe2(O_CLOEXEC | O_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if _, err := SetCapacity(w, size); err != nil {
		t.Skip(err)
	}
	v, err := NewVmspliceWriter(w, size)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if _, err := w.Write(make([]byte, size)); err != nil { // full
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, size)
		for range rounds + 1 {
			time.Sleep(2 * schedEvery)
			if _, err := io.ReadFull(r, buf); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range rounds {
		b := v.Buffer()
		b[0]++
		if err := v.Commit(len(b)); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A commit delayed by more than schedEvery between its park and the
	// next may still make one.
	if got := v.conn.sched.yields.Load(); got > rounds/10 {
		t.Errorf("%d Gosched calls in %d commits that each waited for the reader; want at most %d", got, rounds, rounds/10)
	}
}
