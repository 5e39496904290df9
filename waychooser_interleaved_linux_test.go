package pipe

// The way chooser with other writes between its commits: it must go on
// measuring.

import (
	"io"
	"testing"
)

// TestWayChooserTrialEndsDespiteUntimedWrites: a trial of the other way
// must end after a few windows (Commit's doc: "now and then tries the other
// way for a few dozen commits"), whatever else the writer does between its large
// commits, such as an untimed write (a small commit, a straight Write)
// between every two chosen commits.
func TestWayChooserTrialEndsDespiteUntimedWrites(t *testing.T) {
	const n = 64 << 10
	// A trial of copying has just begun (mapping is the way in use).
	c := wayChooser{warm: wayWarmup, trying: true, gap: wayFirstTrial, used: window{2 * wayWindow, 2 * wayWindow}}
	now := int64(1)
	for sent := int64(0); sent < 1<<30; sent += n {
		now += 50_000 // 50 µs per 64 KiB commit, well under wayIdle
		c.committed(n, now)
		now += 1_000
		c.untimed(1_000) // a 100-byte commit, or a header Flush'ed on its own
	}
	if c.trying {
		t.Errorf("after 1 GiB of chosen commits, each followed by a small one, the trial of %s has not ended (%d of %d windows, %d bytes measured)",
			map[bool]string{true: "mapping", false: "copying"}[c.copying], c.trial, wayTrial, c.bytes)
	}
}

// TestWayChooserMeasuresInterleavedCommits is the same through a real
// writer: 64 KiB commits, each followed by a 100-byte one (a record and its
// trailer, say). The chooser must measure something in 48 MiB, or it would
// never try copying (and, had a trial begun, never end it).
func TestWayChooserMeasuresInterleavedCommits(t *testing.T) {
	r, w, err := Pipe2(O_CLOEXEC | O_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	v, err := NewVmspliceWriter(w, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		_, _ = io.CopyBuffer(struct{ io.Writer }{io.Discard}, r, make([]byte, 256<<10))
	}()
	for range 48 << 20 / (64 << 10) {
		if err := v.Commit(len(v.Buffer())); err != nil {
			t.Fatal(err)
		}
		if err := v.Commit(100); err != nil {
			t.Fatal(err)
		}
	}
	if v.way.warm == 0 && v.way.bytes == 0 {
		t.Errorf("after 48 MiB of 64 KiB commits interleaved with 100-byte ones the chooser has timed nothing (warm %d, bytes %d): it is frozen", v.way.warm, v.way.bytes)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	<-drained
}
