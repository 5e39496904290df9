package pipe

import (
	"io"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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

// letsSchedulerIn makes the schedPoints of a loop due (due) before each of
// 20 steps and fails the test unless yields grows in each: every step of a
// loop of the package's calls must reach a schedPoint before anything in it
// can wait, so that a loop that never parks still passes through the
// scheduler (see schedPoint). When the points fall due by themselves is
// TestSchedPointLetsOthersRun's.
func letsSchedulerIn(t *testing.T, due func(), yields func() int64, step func() error) {
	t.Helper()
	for i := range 20 {
		due()
		from := yields()
		if err := step(); err != nil {
			t.Fatal(err)
		}
		if yields() == from {
			t.Fatalf("step %d made no Gosched with its schedPoint due", i)
		}
	}
}

// dueNow backdates p so that its next point calls Gosched.
func dueNow(p *schedPoint) { p.at.Store(nanotime() - 2*int64(schedEvery)) }

// freeYields and freeDue are yields and dueNow for every slot of goScheds,
// the points of the free calls.
func freeYields() (n int64) {
	for i := range goScheds {
		n += goScheds[i].yields.Load()
	}
	return n
}

func freeDue() {
	for i := range goScheds {
		dueNow(&goScheds[i])
	}
}

// openSides opens dst and src as Copy's splicer does.
func openSides(t *testing.T, dst, src *os.File) (d, s *fdConn) {
	t.Helper()
	d, err := open("splice", dst, learnAll)
	if err != nil {
		t.Fatal(err)
	}
	if s, err = open("splice", src, learnAll); err != nil {
		t.Fatal(err)
	}
	return d, s
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
// loops of Splice, Tee, Vmsplice and short Copy calls (goSched).
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
			letsSchedulerIn(t, func() { dueNow(&v.conn.sched) }, v.conn.sched.yields.Load, func() error {
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
		d, s := openSides(t, null(t), r)
		sp := newSplicer(d, s)
		if sp.t.side != s {
			t.Fatal("a splice from a pipe into /dev/null does not wait on the pipe")
		}
		letsSchedulerIn(t, func() { dueNow(&s.sched) }, s.sched.yields.Load, func() error {
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
		d, s := openSides(t, w2, r)
		sp := newSplicer(d, s)
		if sp.t.side != nil {
			t.Fatal("a splice from a pipe into a pipe waits on one side")
		}
		letsSchedulerIn(t, func() { dueNow(&s.sched); dueNow(&d.sched) }, func() int64 { return s.sched.yields.Load() + d.sched.yields.Load() }, func() error {
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
		letsSchedulerIn(t, freeDue, freeYields, func() error {
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
		letsSchedulerIn(t, freeDue, freeYields, func() error {
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
		letsSchedulerIn(t, freeDue, freeYields, func() error {
			_, err := Vmsplice(w, [][]byte{buf}, 0)
			return err
		})
	})

	t.Run("Copy/staged", func(t *testing.T) {
		// From a Unix socket held as an *os.File into /dev/null: through
		// Copy's buffer pipe (staged).
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		src, peer := os.NewFile(uintptr(fds[0]), "socket"), os.NewFile(uintptr(fds[1]), "peer")
		defer src.Close()
		var wg sync.WaitGroup
		defer wg.Wait()
		defer peer.Close()
		feed(&wg, peer)
		n := null(t)
		d, s := openSides(t, n, src)
		if route(d, s) != viaBufPipe {
			t.Fatal("a Copy from a Unix socket into /dev/null does not go through a buffer pipe")
		}
		letsSchedulerIn(t, freeDue, freeYields, func() error {
			_, err := Copy(n, io.LimitReader(src, 64<<10))
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
		letsSchedulerIn(t, freeDue, freeYields, func() error {
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

// TestGoSchedsAreGoroutines checks that loops of Splice, Tee or Vmsplice
// calls in two goroutines do not share one schedPoint: sysmon counts each
// P's turns, and a Gosched in one goroutine does nothing for the other, so
// each must make its own when its point falls due.
func TestGoSchedsAreGoroutines(t *testing.T) {
	const n = 8
	slots := make([]*schedPoint, n)
	step := make([]chan struct{}, n)
	yielded := make(chan bool, n)
	var ready sync.WaitGroup
	for i := range n {
		step[i] = make(chan struct{})
		ready.Add(1)
		go func() {
			for range 2 { // the same call path, twice: the same slot
				p := goSched()
				if slots[i] != nil && p != slots[i] {
					t.Errorf("goroutine %d got two slots from one call path", i)
				}
				slots[i] = p
			}
			ready.Done()
			if _, ok := <-step[i]; !ok {
				return
			}
			p := slots[i]
			from := p.yields.Load()
			p.point()
			yielded <- p.yields.Load() > from
		}()
	}
	ready.Wait()
	// With 256 slots, eight goroutines in fewer than 5 would be a hash that
	// tells little apart (for a good one, about 1 run in 100,000).
	distinct := map[*schedPoint]bool{}
	for _, p := range slots {
		distinct[p] = true
	}
	if len(distinct) < 5 {
		t.Errorf("%d goroutines' stacks gave %d slots of goScheds; want at least 5", n, len(distinct))
	}
	// Two goroutines with slots of their own.
	a, b := 0, -1
	for i := 1; i < n && b < 0; i++ {
		if slots[i] != slots[a] {
			b = i
		}
	}
	for i := range n {
		if i != a && i != b {
			close(step[i])
		}
	}
	if b < 0 {
		close(step[a])
		t.Fatalf("%d goroutines' stacks gave one slot of goScheds", n)
	}
	freeDue()
	for _, i := range []int{a, b} { // one after the other: the second must not find the point just made
		step[i] <- struct{}{}
		if !<-yielded {
			t.Errorf("goroutine %d made no Gosched with its point due", i)
		}
	}
}

// TestFreeCallsGoschedOncePerPeriod checks the other side of goScheds: a
// loop of Splice calls keeps its slots (one for each call path) and makes
// no more than one Gosched for each slot each schedEvery.
func TestFreeCallsGoschedOncePerPeriod(t *testing.T) {
	r, w, err := Pipe2(O_CLOEXEC | O_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer w.Close()
	feed(&wg, w)
	const paths = 3 // await on the source, on the destination, a try outside a wait
	from, start := freeYields(), time.Now()
	for time.Since(start) < 8*schedEvery {
		if _, err := Splice(null, r, 64<<10, 0); err != nil {
			t.Fatal(err)
		}
	}
	most := paths * (int64(time.Since(start)/schedEvery) + 1)
	if got := freeYields() - from; got > most {
		t.Errorf("%d Gosched calls in %v of Splice calls; want at most %d (one each %v for each of %d call paths)",
			got, time.Since(start), most, schedEvery, paths)
	}
}
