package pipe

// Tests from the seventh review (yieldSlow 1 ms; the chooser's window of
// 16 commits).

import (
	"testing"
	"time"
)

// TestReview7TrialOfASlowerWayEnds: a writer of 64 MiB buffers whose
// producer takes 40 ms to fill one (1.6 GB/s, a decompressor, a file) and
// whose commits take 6 ms mapped and 12 ms copied (10.8 and 5.3 GiB/s, the
// order of BENCHMARKS.md's 1 MiB pipe). Mapped, a commit comes every 46 ms
// and is timed; copied, every 52 ms, past wayIdle, so no copied commit is
// ever timed: the trial of copying that begins after warm-up and the first
// gap never fills a window, never ends, and the writer copies, the slower
// way, for good. wayIdle is meant for a producer that pauses or a reader
// that stops; here the interval is long because of the way on trial.
// (Before 72ecca7 as well: one timed commit of 64 MiB made a window, but
// none is timed.)
func TestReview7TrialOfASlowerWayEnds(t *testing.T) {
	const n = 64 << 20
	const fill, mapped, copied = 40 * time.Millisecond, 6 * time.Millisecond, 12 * time.Millisecond
	var c wayChooser
	now := int64(1)
	var copies, total int
	for i := range 4096 { // 256 GiB, 3.3 minutes
		copying := c.copyNext()
		now += int64(fill)
		if copying {
			now += int64(copied)
		} else {
			now += int64(mapped)
		}
		if i >= 1024 {
			total++
			if copying {
				copies++
			}
		}
		c.committed(n, now)
	}
	t.Logf("copied %d of the last %d commits; trying %v (trial window %d, %d bytes measured), copying %v",
		copies, total, c.trying, c.trial, c.bytes, c.copying)
	if copies > total/4 {
		t.Errorf("copying is 2x slower per commit (13%% on the whole), yet the writer copied %d of its last %d commits of 64 MiB: "+
			"each copied commit comes %v after the one before, past wayIdle (%v), so the trial of copying (trying=%v) measures nothing and never ends",
			copies, total, fill+copied, time.Duration(wayIdle), c.trying)
	}
}
