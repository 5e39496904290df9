package pipe

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// simulate feeds c commits of n bytes that take cost(copying) ns per byte
// until total bytes have gone, and returns how many of them were copied.
func simulate(c *wayChooser, now *int64, n int, total int64, cost func(copying bool) float64) (copied int64) {
	for sent := int64(0); sent < total; sent += int64(n) {
		copying := c.copyNext()
		*now += int64(float64(n) * cost(copying))
		if copying {
			copied += int64(n)
		}
		c.committed(n, *now)
	}
	return copied
}

// stallingMapping feeds a chooser total bytes of commits of n bytes, where
// copying takes 1 ns a byte and mapping 0.6, plus stall ns on one commit in
// every (at random, from seed), and returns the bytes mapped and all bytes
// after the first 1/64 of total (the writer settling).
func stallingMapping(n, every int, stall int64, seed uint64, total int64) (mapped, all int64) {
	var c wayChooser
	now := int64(1)
	rng := rand.New(rand.NewPCG(seed, 2))
	for sent := int64(0); sent < total; sent += int64(n) {
		settled := sent >= total/64
		if c.copyNext() {
			now += int64(n)
		} else {
			now += int64(n) * 6 / 10
			if rng.IntN(every) == 0 {
				now += stall
			}
			if settled {
				mapped += int64(n)
			}
		}
		if settled {
			all += int64(n)
		}
		c.committed(n, now)
	}
	return mapped, all
}

func TestWayChooser(t *testing.T) {
	const n = 64 << 10
	fixed := func(mapNS, copyNS float64) func(bool) float64 {
		return func(copying bool) float64 {
			if copying {
				return copyNS
			}
			return mapNS
		}
	}
	t.Run("copying faster", func(t *testing.T) {
		var c wayChooser
		now := int64(1)
		simulate(&c, &now, n, 64<<20, fixed(2, 1))
		if !c.copying {
			t.Fatal("after 64 MiB with copying twice as fast, the writer still maps")
		}
		// Settled, it maps only in trials, which grow rarer.
		mapped := 1<<30 - simulate(&c, &now, n, 1<<30, fixed(2, 1))
		if mapped > 1<<30/20 {
			t.Errorf("settled on copying, it mapped %d of 1 GiB; want at most 5%%", mapped)
		}
		if mapped == 0 {
			t.Error("settled on copying, it never tried mapping again")
		}
	})
	t.Run("mapping faster", func(t *testing.T) {
		var c wayChooser
		now := int64(1)
		copied := simulate(&c, &now, n, 4<<30, fixed(1, 2))
		if c.copying {
			t.Fatal("with mapping twice as fast, the writer copies")
		}
		if copied > 4<<30/20 {
			t.Errorf("it copied %d of 4 GiB in trials; want at most 5%%", copied)
		}
		if copied == 0 {
			t.Error("it never tried copying")
		}
	})
	t.Run("a cold start is not counted", func(t *testing.T) {
		// The first 8 MiB map ten times slower (cold pages), then twice
		// as fast as copying.
		var c wayChooser
		now := int64(1)
		sent := int64(0)
		cost := func(copying bool) float64 {
			sent += n
			switch {
			case copying:
				return 1.5
			case sent <= wayWarmup:
				return 10
			}
			return 1
		}
		for range 1 << 30 / n {
			simulate(&c, &now, n, n, cost)
			if c.copying {
				t.Fatalf("after %d MiB: a slow start made the writer switch to copying", sent>>20)
			}
		}
	})
	t.Run("the switch is not counted", func(t *testing.T) {
		// Copying, the writer tries mapping, whose first 4 MiB after
		// copies cost three times as much (refills), the rest less than
		// copying: it must switch to mapping.
		c := wayChooser{copying: true, warm: wayWarmup}
		now := int64(1)
		runMapped := int64(0)
		cost := func(copying bool) float64 {
			if copying {
				runMapped = 0
				return 1.3
			}
			runMapped += n
			if runMapped <= wayWindow {
				return 3
			}
			return 1
		}
		simulate(&c, &now, n, 256<<20, cost)
		if c.copying {
			t.Error("mapping is faster once running, but its first window kept the writer copying")
		}
	})
	t.Run("a way that stalls now and then", func(t *testing.T) {
		// Mapping runs at 0.6 ns a byte between stalls of 3 ms, one
		// commit in 64 on average (a run's refill, a wake-up through the
		// poller): 1.3 ns a byte on the whole, where copying takes 1.0
		// steadily. A window without a stall is faster than copying, so a
		// way judged by its fastest windows kept mapping.
		mapped, all := stallingMapping(n, 64, 3_000_000, 1, 1<<30)
		if mapped > all/4 {
			t.Errorf("mapping is 30%% slower on the whole, but the writer mapped %d MiB of the last %d MiB; want at most a quarter", mapped>>20, all>>20)
		}
	})
	t.Run("windows of large commits", func(t *testing.T) {
		// 1 MiB commits: mapping runs at 0.6 ns a byte, but one commit in
		// 8 on average stalls 6 ms more: 1.3 ns a byte on the whole,
		// against copying's steady 1.0. A window of 4 MiB would be 4
		// commits, none of them stalled in a third of windows, and trials
		// that lucky would keep taking mapping up (15-22% mapped, 5 seeds;
		// 3-6% with windows of 16 commits).
		mapped, all := stallingMapping(1<<20, 8, 6_000_000, 3, 64<<30)
		if mapped > all/8 {
			t.Errorf("mapping is 30%% slower on the whole, but the writer mapped %d of the last %d GiB; want at most an eighth", mapped>>30, all>>30)
		}
	})
	t.Run("a trial far slower ends early", func(t *testing.T) {
		// Copying takes four times as long as mapping (fresh commits on
		// a fast machine): each trial must end after a quarter of a
		// window, not after wayTrial windows.
		for _, size := range []int{64 << 10, 1 << 20} {
			var c wayChooser
			now := int64(1)
			var trials, copied, most, inTrial int64
			for sent := int64(0); sent < 8<<30; sent += int64(size) {
				trying := c.trying
				if c.copyNext() {
					now += 4 * int64(size)
					copied += int64(size)
					inTrial += int64(size)
				} else {
					now += int64(size)
				}
				c.committed(size, now)
				if trying && !c.trying {
					trials++
					most = max(most, inTrial)
					inTrial = 0
				}
			}
			if c.copying {
				t.Fatalf("%d-byte commits: copying four times slower was taken up", size)
			}
			// The first commit of a trial is not timed; then at least
			// wayCommits/4 commits and wayWindow/4 bytes are.
			limit := int64(max(wayWindow/4, wayCommits/4*size) + size)
			if trials < 3 || most > limit {
				t.Errorf("%d-byte commits: %d trials, the longest copied %d bytes; want at least 3 trials of at most %d bytes", size, trials, most, limit)
			}
			if copied > 8<<30/100 {
				t.Errorf("%d-byte commits: trials copied %d bytes of 8 GiB; want at most 1%%", size, copied)
			}
		}
	})
	t.Run("one stall does not end a faster trial", func(t *testing.T) {
		// Copying takes 0.6 of mapping's time, but the second timed
		// commit of each trial stalls 5 ms (a wake-up, another program):
		// the trial must run its course and win.
		for _, size := range []int{64 << 10, 1 << 20} {
			var c wayChooser
			now := int64(1)
			for sent := int64(0); sent < 1<<30 && !c.copying; sent += int64(size) {
				if c.copyNext() {
					now += int64(size) * 6 / 10
					if c.trial == 0 && c.commits == 1 {
						now += 5_000_000
					}
				} else {
					now += int64(size)
				}
				c.committed(size, now)
			}
			if !c.copying {
				t.Errorf("%d-byte commits: copying is faster but for one stall a trial, and the writer still maps after 1 GiB", size)
			}
		}
	})
	t.Run("one stall on a small commit among large ones", func(t *testing.T) {
		// Commits of 20, 20, 20 KiB and 1 MiB in turn; mapping takes
		// 0.25 ns a byte and 3 µs a commit, copying 0.7 of that; the
		// first timed 20 KiB commit of the trial stalls 150 µs. Leaving
		// out the longest commit (a 1 MiB one) would keep the stall in and
		// end the trial; the stall is what must be left out.
		sizes := []int{20 << 10, 20 << 10, 20 << 10, 1 << 20}
		var c wayChooser
		now := int64(1)
		trialCommits, stalled := 0, false
		for i := 0; i < 1<<16 && !c.copying; i++ {
			size := sizes[i%len(sizes)]
			cost := int64(size)/4 + 3000
			if c.copyNext() {
				cost = cost * 7 / 10
				if trialCommits++; trialCommits > 1 && size < 1<<20 && !stalled {
					cost, stalled = cost+150_000, true
				}
			} else {
				trialCommits, stalled = 0, false
			}
			now += cost
			c.committed(size, now)
		}
		if !c.copying {
			t.Error("copying is 0.7 of mapping's time, but one stall on a small commit kept the writer mapping")
		}
	})
	t.Run("commits of 32 MiB", func(t *testing.T) {
		// Two commits make a window (wayWindowMax): a trial four times
		// slower must still end before its course.
		const size = 32 << 20
		var c wayChooser
		now := int64(1)
		var trials, inTrial, most int
		for range 4096 {
			trying := c.trying
			if c.copyNext() {
				now += size // 33 ms: within wayIdle
				inTrial++
			} else {
				now += size / 4
			}
			c.committed(size, now)
			if trying && !c.trying {
				trials++
				most = max(most, inTrial)
				inTrial = 0
			}
		}
		// The untimed first commit, then the two of its first window.
		if trials < 3 || most > 3 {
			t.Errorf("%d trials, the longest %d commits of 32 MiB; want at least 3 trials of at most 3", trials, most)
		}
	})
	t.Run("a trial less than twice as slow runs its course", func(t *testing.T) {
		var c wayChooser
		now := int64(1)
		var copied int64
		for tried := false; !tried || c.trying; {
			tried = tried || c.trying
			if c.copyNext() {
				now += n * 18 / 10
				copied += n
			} else {
				now += n
			}
			c.committed(n, now)
		}
		if copied < (wayTrial-1)*wayWindow {
			t.Errorf("a trial of copying at 1.8 times mapping's time ended after %d bytes; want its %d windows", copied, wayTrial)
		}
	})
	t.Run("within noise", func(t *testing.T) {
		var c wayChooser
		now := int64(1)
		simulate(&c, &now, n, 1<<30, fixed(1, 0.95))
		if c.copying {
			t.Error("a way 5% faster, within wayBetter, made the writer switch")
		}
	})
	t.Run("the machine changes", func(t *testing.T) {
		var c wayChooser
		now := int64(1)
		simulate(&c, &now, n, 256<<20, fixed(2, 1))
		if !c.copying {
			t.Fatal("copying faster: still mapping after 256 MiB")
		}
		// Mapping becomes faster: within the longest gap and a trial the
		// writer is back.
		simulate(&c, &now, n, wayGapMax+4*wayWindow, fixed(1, 2))
		if c.copying {
			t.Error("mapping became faster, but the writer still copies")
		}
	})
	t.Run("a copy that had to map", func(t *testing.T) {
		// Copying, the writer finds the end blocking (writeCopy maps):
		// it maps from then on and tries copying only after wayGapMax.
		c := wayChooser{copying: true, warm: wayWarmup, last: 5}
		c.cannotCopy()
		if c.copyNext() {
			t.Fatal("after cannotCopy the next commit is still to be copied")
		}
		now := int64(1)
		c.committed(n, now) // the commit that mapped: not timed
		if c.bytes != 0 {
			t.Fatalf("the commit that had to map was timed (%d bytes measured)", c.bytes)
		}
		copied := simulate(&c, &now, n, wayGapMax-wayWindow, fixed(1, 1))
		if copied != 0 {
			t.Errorf("it tried copying again after %d bytes; want not before wayGapMax", copied)
		}
	})
	t.Run("other writes are left out", func(t *testing.T) {
		var c wayChooser
		c.committed(n, 100)
		c.untimed(int64(time.Millisecond)) // a straight Write or a small commit
		c.committed(n, 100+int64(time.Millisecond)+10_000)
		if c.bytes != n || c.ns != 10_000 {
			t.Errorf("a commit 10 µs after an untimed write of 1 ms was timed as %d bytes in %d ns; want %d in 10000", c.bytes, c.ns, n)
		}
	})
	t.Run("pauses are not timed", func(t *testing.T) {
		var c wayChooser
		now := int64(1)
		// Copying is slower, but every copied commit follows a pause
		// longer than wayIdle, as if the producer waited for input, or as
		// if copying were that slow: untimed, it cannot make copying look
		// faster, and a trial that can time nothing ends, lost.
		var copied, trials int
		for sent := int64(0); sent < 256<<20; sent += n {
			trying := c.trying
			if c.copyNext() {
				now += 2 * wayIdle
				copied++
			} else {
				now += n
			}
			c.committed(n, now)
			if c.bytes != 0 && c.trying {
				t.Fatalf("a trial of commits that each followed a pause measured %d bytes; want none", c.bytes)
			}
			if trying && !c.trying {
				trials++
			}
		}
		if c.copying {
			t.Error("copying, never timed, was taken up")
		}
		if trials < 2 || copied > trials*(wayCommits+1) { // the first commit of a trial is never timed
			t.Errorf("%d trials ended, with %d commits copied; want trials that end after %d untimed commits each", trials, copied, wayCommits)
		}
	})
}

// TestVmspliceWriterChosenCopy checks a commit of more than smallCommit that
// the chooser sends copied: the bytes arrive, the pipe holds none of the
// buffer's pages, so the same buffer is filled again, and the reader sees
// what was committed, not what was written into the buffer later.
func TestVmspliceWriterChosenCopy(t *testing.T) {
	const size = 64 << 10
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
	// A mapped commit first: a pipe that ever had pages vmspliced into it
	// refuses pwritev2 with RWF_NOWAIT, which copies must not depend on.
	first := v.Buffer()
	fillWith(first, 'm')
	want := bytes.Clone(first)
	if err := v.Commit(len(first)); err != nil {
		t.Fatal(err)
	}
	v.way.copying = true
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(r)
		got <- b
	}()
	first = v.Buffer()
	for i := range 8 {
		b := v.Buffer()
		if &b[0] != &first[0] {
			t.Fatalf("commit %d: a copied commit moved on to another buffer", i)
		}
		fillWith(b, byte('a'+i))
		want = append(want, b...)
		if err := v.Commit(len(b)); err != nil {
			t.Fatal(err)
		}
	}
	fillWith(first, 'z') // after the last commit: must not reach the reader
	closeAndCompare(t, v, w, got, want)
}

// closeAndCompare closes v and then w, and fails t unless the reader, which
// sends all it read on got at EOF, got want.
func closeAndCompare(t *testing.T, v *VmspliceWriter, w *os.File, got <-chan []byte, want []byte) {
	t.Helper()
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	select {
	case b := <-got:
		if !bytes.Equal(b, want) {
			t.Fatalf("the reader got %d bytes that differ from the %d committed", len(b), len(want))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the reader did not finish")
	}
}

func fillWith(b []byte, c byte) {
	for i := range b {
		b[i] = c
	}
}

// TestWayChooserTimingCoversUntimed checks what lets send and Write skip
// the clock: a chooser told of untimed writes only while timing reports
// true decides exactly as one told of every untimed write, through random
// mixes of chosen commits, untimed writes, pauses and cannotCopy.
func TestWayChooserTimingCoversUntimed(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		var all, gated wayChooser
		now := int64(1)
		for i := range 200_000 {
			switch r := rng.IntN(100); {
			case r < 70: // a chosen commit, the way both say
				if all.copyNext() != gated.copyNext() {
					t.Fatalf("seed %d, step %d: the choosers disagree on the way", seed, i)
				}
				n := 16<<10 + rng.IntN(1<<20)
				cost := 1.0
				if all.copyNext() {
					cost = 0.5 + float64(seed%3)*0.4
				}
				now += int64(float64(n) * cost)
				if rng.IntN(500) == 0 {
					now += 2 * wayIdle // a pause
				}
				all.committed(n, now)
				gated.committed(n, now)
			case r < 98: // an untimed write
				d := int64(rng.IntN(200_000))
				now += d
				all.untimed(d)
				if gated.timing() {
					gated.untimed(d)
				}
			default:
				if rng.IntN(50) == 0 {
					all.cannotCopy()
					gated.cannotCopy()
				}
			}
			if all.timing() && all.skip != gated.skip {
				t.Fatalf("seed %d, step %d: an open interval has %d ns of untimed writes; told only while timing: %d", seed, i, all.skip, gated.skip)
			}
			a, g := all, gated
			a.skip, g.skip = 0, 0 // with no interval open, skip is never read
			if a != g {
				t.Fatalf("seed %d, step %d: the choosers' states differ:\n all   %+v\n gated %+v", seed, i, all, gated)
			}
		}
	}
}

// TestVmspliceWriterFresh16KiBChosen checks that a writer of only fresh
// 16 KiB commits copies its first smallMix (while it has not shown whether
// it makes smaller ones too, see small) and lets the way chooser decide
// the rest, which it maps at first (the zero chooser maps); in a pipe that
// refuses pwritev2 with RWF_NOWAIT, only the first is copied. In a pipe in
// packet mode from the start every commit is mapped without asking the
// chooser, so that a reader taking less than a commit at a time loses
// nothing (a copy there would be a packet, and a short read drops the rest
// of a packet). Either way the reader gets every byte.
func TestVmspliceWriterFresh16KiBChosen(t *testing.T) {
	if smallMix != 64 {
		t.Fatalf("smallMix is %d; Commit's doc and the README say 64", smallMix)
	}
	for _, flags := range []int{O_CLOEXEC | O_NONBLOCK, O_CLOEXEC | O_NONBLOCK | O_DIRECT} {
		packets := flags&O_DIRECT != 0
		t.Run(fmt.Sprintf("packets=%v", packets), func(t *testing.T) {
			r, w, err := Pipe2(flags)
			if err != nil && packets {
				t.Skip(err) // packet mode needs Linux 3.4
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			defer w.Close()
			v, err := NewVmspliceWriter(w, 16<<10)
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			got := make(chan []byte, 1)
			go func() {
				var all []byte
				buf := make([]byte, 1000)
				for {
					n, err := r.Read(buf)
					all = append(all, buf[:n]...)
					if err != nil {
						got <- all
						return
					}
				}
			}()
			var want []byte
			const commits = smallMix + 32
			copies := smallMix // commits copied before the chooser is asked
			if packets {
				copies = 0
			}
			for i := range commits {
				b := v.Buffer()
				for j := range b {
					b[j] = byte(i*31 + j)
				}
				want = append(want, b...)
				if err := v.Commit(len(b)); err != nil {
					t.Fatal(err)
				}
				if i == 0 && !packets && v.conn.cw != nil && v.conn.cw.plain {
					copies = 1 // the pipe refuses pwritev2 (a kernel before 6.4?)
				}
				if mapped := &v.Buffer()[0] != &b[0]; mapped != (i >= copies) {
					t.Fatalf("commit %d in a pipe with packet mode %v: mapped %v; want %v", i, packets, mapped, i >= copies)
				}
			}
			if chosen := v.way != (wayChooser{}); chosen == packets {
				t.Errorf("after %d fresh commits of 16 KiB in a pipe with packet mode %v the way chooser is %+v; want it asked %v", commits, packets, v.way, !packets)
			}
			closeAndCompare(t, v, w, got, want)
		})
	}
}

// TestVmspliceWriterFresh16KiBKeepsNowait checks when fresh 16 KiB commits
// are copied without asking the way chooser (small): while the pipe takes
// pwritev2 with RWF_NOWAIT and the writer has copied a smaller commit, or
// made a straight Write, within its last smallMix commits, or made fewer
// than smallMix so far; and that otherwise they are mapped (the chooser
// starts by mapping) at once: after smallMix commits without such a copy,
// right after a mapped commit, and in a pipe that refused pwritev2 from the
// start (something was vmspliced into it before the writer was made). The
// reader gets every byte each time.
func TestVmspliceWriterFresh16KiBKeepsNowait(t *testing.T) {
	const k4, k16, k20 = 4 << 10, 16 << 10, 20 << 10
	type step struct {
		n      int  // commit n bytes; 0: a straight Write of 64 KiB
		mapped bool // want the commit mapped
	}
	repeat := func(k int, s ...step) []step {
		var all []step
		for range k {
			all = append(all, s...)
		}
		return all
	}
	join := func(s ...[]step) []step {
		var all []step
		for _, x := range s {
			all = append(all, x...)
		}
		return all
	}
	for _, c := range []struct {
		name   string
		before bool // vmsplice a byte into the pipe before the writer is made
		steps  []step
		asked  bool // the way chooser is asked by the end
	}{
		{"mostly 4 KiB, 16 KiB last of 16", false,
			repeat(20, join(repeat(15, step{k4, false}), []step{{k16, false}})...), false},
		{"mostly 4 KiB, 16 KiB first of 16", false,
			repeat(20, join([]step{{k16, false}}, repeat(15, step{k4, false}))...), false},
		{"only 16 KiB", false,
			join(repeat(smallMix, step{k16, false}), repeat(8, step{k16, true})), true},
		{"one 4 KiB, then 16 KiB", false,
			join([]step{{k4, false}}, repeat(smallMix, step{k16, false}), repeat(8, step{k16, true}),
				[]step{{k4, false}, {k16, true}}), true},
		{"straight Writes between", false,
			repeat(3*smallMix, step{0, false}, step{k16, false}), false},
		{"after a mapped commit", false,
			[]step{{k4, false}, {k16, false}, {k20, true}, {k16, true}, {k4, false}, {k16, true}}, true},
		{"pipe vmspliced into before", true,
			[]step{{k4, false}, {k16, true}, {k16, true}}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, w, err := Pipe2(O_CLOEXEC | O_NONBLOCK)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			defer w.Close()
			if c.before {
				if _, err := Vmsplice(w, [][]byte{[]byte("x")}, 0); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(r, make([]byte, 1)); err != nil {
					t.Fatal(err)
				}
			}
			v, err := NewVmspliceWriter(w, 64<<10)
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			got := make(chan []byte, 1)
			go func() {
				all, _ := io.ReadAll(r)
				got <- all
			}()
			var want []byte
			for i, s := range c.steps {
				mapped := false
				if s.n == 0 {
					p := make([]byte, 64<<10)
					for j := range p {
						p[j] = byte(len(want) + j)
					}
					want = append(want, p...)
					if _, err := v.Write(p); err != nil {
						t.Fatal(err)
					}
				} else {
					b := v.Buffer()[:s.n]
					for j := range b {
						b[j] = byte(len(want) + j)
					}
					want = append(want, b...)
					if err := v.Commit(s.n); err != nil {
						t.Fatal(err)
					}
					mapped = &v.Buffer()[0] != &b[0]
				}
				if i == 0 && !c.before && v.conn.cw != nil && v.conn.cw.plain {
					t.Skip("this pipe refuses pwritev2 with RWF_NOWAIT (a kernel before 6.4?): no copy keeps it")
				}
				if s.n != 0 && mapped != s.mapped {
					t.Fatalf("step %d, a commit of %d bytes: mapped %v; want %v", i, s.n, mapped, s.mapped)
				}
			}
			if asked := v.way != (wayChooser{}); asked != c.asked {
				t.Errorf("way chooser asked %v (%+v); want %v", asked, v.way, c.asked)
			}
			closeAndCompare(t, v, w, got, want)
		})
	}
}
