package pipe

import "time"

// A wayChooser picks how a VmspliceWriter with fresh pages hands over a
// commit of 16 KiB or more that small does not settle: mapped
// (vmsplice(2)) or copied (pwritev2(2) or write(2)). Mapping copies
// nothing but costs fresh pages (the kernel zeroes each one, with a fault
// per run) and a page reference per page, taken and dropped; copying
// costs the kernel's copy into the pipe's own pages. Which is cheaper
// depends on the machine, the pipe's size and the reader: on one 2-core
// VM a 64 KiB pipe moved 16 KiB and 64 KiB commits faster copied (2.7 and
// 3.5 GiB/s against 1.8 and 2.8 mapped) while a 1 MiB pipe moved 64 KiB
// to 1 MiB commits faster mapped (7.8-11.0 against 6.5-8.0), and the same
// VM has favoured mapping in a 64 KiB pipe at other hours. So the writer
// measures: it times each commit from the end of the one before, which
// takes in filling the buffer and its page faults, keeps to the faster
// way, and now and then tries the other.
//
// Each way is judged by its time per byte over windows (at least 4 MiB and
// 16 commits, or 64 MiB), total time over total bytes (what throughput is):
// the way in use over every window since the last trial, at least two, and
// the trial over all its windows but the first; the first window of the way
// in use after a trial that lost is left out as well (mapping again refills
// buffers that copying kept). Judged by their fastest windows, the way whose
// windows vary most won: mapping stalls now and then by nature (a fresh
// run's refill, a wake-up through the poller), and with 64 KiB buffers in a
// 64 KiB pipe (one 2-core VM) its fastest window ran at 6 GB/s while the
// writer moved 2.5 on the whole, below w.Write's 2.7-2.9, and it kept
// mapping. A trial that can time none of 16 commits in a row (each came more
// than wayIdle after the one before) is lost, and so is one whose window,
// at a quarter of its measure, took more than wayLoser times the way in
// use's time per byte, its worst commit left out (see losing): with fresh
// 64 KiB to 1 MiB commits on a 2-core KVM machine, copying took about four
// times as long as mapping, and 1 MiB commits moved 29% more once such
// trials ended early (BENCHMARKS.md). The first windows of a writer (cold
// pages) and the first window of a trial (the switch: mapping again
// refills buffers that copying kept) say nothing of the steady state and
// are left out of the verdicts on which way wins (losing judges a trial of
// copying in its first window: copying refills nothing).
//
// The zero value maps, and tries copying after the windows that wayWarmup
// and wayFirstTrial count.
type wayChooser struct {
	copying bool    // the way in use: copy, else map
	trying  bool    // the commits now are a trial of the other way
	last    int64   // nanotime at the end of the last commit; 0: the next is not timed
	bytes   int64   // the window being measured: bytes committed
	ns      int64   // and the time they took
	commits int     // and how many commits
	worst   window  // and, in a trial, its commit furthest behind the way in use
	over    float64 // and how far behind (ns)
	idle    int     // commits of the trial in a row that came after more than wayIdle
	warm    int64   // bytes measured and left out at the start
	used    window  // the way in use's windows since the last trial (or switch)
	trial   int     // windows of the trial so far
	tried   window  // the trial's counted windows, summed
	back    bool    // the next window is the first of the way in use after a trial lost
	since   int64   // bytes measured in the way in use since the last trial
	gap     int64   // bytes to measure in the way in use before the next trial; 0: wayFirstTrial
	skip    int64   // ns since last spent in untimed writes
}

// A window is bytes committed one way and the time they took.
type window struct{ bytes, ns int64 }

// add returns the sum of w and o.
func (w window) add(o window) window { return window{w.bytes + o.bytes, w.ns + o.ns} }

// rate is w's time per byte; 0 for an empty window.
func (w window) rate() float64 {
	if w.bytes == 0 {
		return 0
	}
	return float64(w.ns) / float64(w.bytes)
}

const (
	// wayWindow is the bytes of commits each measurement takes, at least:
	// two runs of fresh pages, so that a window of mapped commits pays its
	// share of refills. A window also takes wayCommits commits, unless they
	// come to wayWindowMax bytes first: four commits of 1 MiB made a window
	// that one stall decided. Warm-up and gaps count windows, each as
	// wayWindow bytes.
	wayWindow    = 4 << 20
	wayCommits   = 16
	wayWindowMax = 64 << 20

	// wayWarmup is what a new writer commits before it measures anything:
	// its first pages fault in cold.
	wayWarmup = 2 * wayWindow

	// wayTrial is the windows a trial of the other way lasts; the first is
	// not counted.
	wayTrial = 3

	// The way in use is measured for a gap before the other is tried. A
	// trial that loses doubles the gap, up to wayGapMax, so that a loser
	// costs at most wayTrial windows in wayGapMax/wayWindow once settled.
	wayFirstTrial = 2 * wayWindow
	wayGapMin     = 4 * wayWindow
	wayGapMax     = 128 * wayWindow

	// wayIdle is the longest interval between commits that is timed: a
	// longer one is the producer pausing, or a reader that stopped, and
	// says nothing about either way.
	wayIdle = int64(50 * time.Millisecond)

	// wayBetter is how much less time per byte a trial must take to win:
	// less than this would be the noise of a shared machine.
	wayBetter = 0.9

	// wayLoser is the factor of the way in use's time per byte past which
	// a trial ends early, lost (see losing).
	wayLoser = 2.0
)

// copyNext reports whether the next commit is to be copied.
func (c *wayChooser) copyNext() bool { return c.copying != c.trying }

// committed records a commit of n bytes, made the way copyNext said, that
// ended at now (nanotime).
func (c *wayChooser) committed(n int, now int64) {
	last, skip := c.last, c.skip
	c.last, c.skip = now, 0
	d := max(now-last-skip, 0)
	if last == 0 || n <= 0 {
		return
	}
	if d > wayIdle {
		// A pause, or the way on trial is that slow: a trial that can time
		// none of wayCommits such commits in a row is lost, or a way slower
		// than the producer's pace would be tried for ever.
		if c.trying {
			if c.idle++; c.idle >= wayCommits {
				c.endTrial(false)
			}
		}
		return
	}
	c.idle = 0
	c.bytes += int64(n)
	c.ns += d
	c.commits++
	if c.trying {
		// The commit that took longest beyond the way in use's pace: a
		// stall, whatever the commit's size.
		if over := float64(d) - c.used.rate()*float64(n); c.worst.bytes == 0 || over > c.over {
			c.worst, c.over = window{int64(n), d}, over
		}
		if c.losing(n) {
			c.endTrial(false)
			return
		}
	}
	if c.bytes < wayWindow || c.commits < wayCommits && c.bytes < wayWindowMax {
		return
	}
	measured := window{c.bytes, c.ns}
	c.newWindow()
	if c.warm < wayWarmup {
		c.warm += wayWindow
		return
	}
	if c.gap == 0 {
		c.gap = wayFirstTrial
	}
	if !c.trying {
		if c.back {
			c.back = false // the switch back from a trial: left out as a trial's first window is
			return
		}
		c.used = c.used.add(measured)
		if c.since += wayWindow; c.since >= c.gap {
			c.trying, c.trial, c.tried, c.idle = true, 0, window{}, 0
			c.last = 0 // the first trial commit's interval is the other way's
		}
		return
	}
	if c.trial++; c.trial > 1 {
		c.tried = c.tried.add(measured)
	}
	if c.trial < wayTrial {
		return
	}
	base := c.used.rate()
	c.endTrial(base > 0 && c.tried.rate() < base*wayBetter)
}

// losing reports, at the commit of n bytes that brings the window to a
// quarter of its measure (wayCommits/4 commits and wayWindow/4 bytes, or
// wayWindowMax/4 bytes, and two commits at least), whether the trial took
// more than wayLoser times the way in use's time per byte over them,
// leaving out the commit furthest behind that pace: a way that slow is
// most unlikely to win, and running the trial's course would cost
// wayTrial windows at that rate; one stall (a refill, a wake-up, another
// program) does not end it. It is asked once a window, and not in a window
// of one commit (commits of wayWindowMax or more). A trial of mapping is
// not judged in its first window, which refills the buffers that copying
// kept; a trial of copying is (it refills nothing), though that window
// does not count in the verdict at the trial's end.
func (c *wayChooser) losing(n int) bool {
	quarter := func(commits int, bytes int64) bool {
		return commits >= 2 && (commits >= wayCommits/4 && bytes >= wayWindow/4 || bytes >= wayWindowMax/4)
	}
	if !quarter(c.commits, c.bytes) || quarter(c.commits-1, c.bytes-int64(n)) || c.trial == 0 && c.copying {
		return false
	}
	base := c.used.rate()
	rest := window{c.bytes - c.worst.bytes, c.ns - c.worst.ns}
	return base > 0 && rest.bytes > 0 && float64(rest.ns) > wayLoser*base*float64(rest.bytes)
}

// newWindow starts a window of measurement.
func (c *wayChooser) newWindow() { c.bytes, c.ns, c.commits, c.worst, c.over = 0, 0, 0, window{}, 0 }

// endTrial ends the trial: the other way is taken if it won, else the way
// in use goes on and the next trial waits twice as long.
func (c *wayChooser) endTrial(won bool) {
	c.trying, c.since, c.idle = false, 0, 0
	c.newWindow()
	c.last = 0 // the next interval is the trial's
	c.used = window{}
	if won {
		c.copying, c.gap = !c.copying, wayGapMin
	} else {
		c.gap = min(2*c.gap, wayGapMax)
		c.back = true
	}
}

// untimed records that something other than a chosen commit (a small
// commit, a straight Write) went into the pipe, taking ns: that time is
// left out of the interval to the next chosen commit, which still counts
// the filling of its buffer.
func (c *wayChooser) untimed(ns int64) { c.skip += max(ns, 0) }

// timing reports whether the next chosen commit is to be timed from the
// last one, so that untimed writes in between count: otherwise untimed
// has nothing to do, and its caller need not read the clock.
func (c *wayChooser) timing() bool { return c.last != 0 }

// cannotCopy records that a commit to be copied was mapped instead (the
// write end is blocking or in packet mode, see writeCopy): copying is not to
// be tried again for a long while, and the commit is not timed.
func (c *wayChooser) cannotCopy() {
	c.copying, c.trying, c.since, c.used, c.back = false, false, 0, window{}, false
	c.gap = wayGapMax
	c.newWindow()
	c.last = 0 // so committed times the interval after this commit, not this one
}
