package pipe

import (
	"testing"
	"time"
)

// TestSpinnerLedger: a reader's spinner lets its spins run to spinLong
// only after a window of waiting in which the calls moved at least
// spinPays bytes per µs, and takes the budget back to spinMax at once
// after a window in which they did not; a writer's never does.
func TestSpinnerLedger(t *testing.T) {
	var w spinner
	w.add(int(spinWindow/time.Microsecond)*spinPays*4 + 1)
	w.wait(spinWindow)
	if most, _ := w.limits(); most != spinMax || w.long {
		t.Errorf("a writer's spinner after a window that paid may spin %v (long %v), want spinMax %v", most, w.long, spinMax)
	}

	sp := spinner{reader: true}
	if most, _ := sp.limits(); most != spinMax {
		t.Fatalf("a new spinner may spin %v, want spinMax %v", most, spinMax)
	}
	// A window of waiting that moved 2 bytes per ns and a bit more.
	sp.add(int(spinWindow/time.Microsecond)*spinPays + 1)
	sp.wait(spinWindow)
	if most, short := sp.limits(); most != spinLong || short != spinLongShortPark {
		t.Fatalf("after a window that paid: limits %v, %v; want spinLong %v, %v", most, short, spinLong, spinLongShortPark)
	}
	sp.budget = spinLong
	// Half a window moves nothing: no verdict yet.
	sp.wait(spinWindow / 2)
	if most, _ := sp.limits(); most != spinLong {
		t.Fatalf("half a window in: limit %v, want spinLong still", most)
	}
	// The rest of the window moves a page: it did not pay.
	sp.add(4096)
	sp.add(-1) // an error's n moves nothing
	sp.wait(spinWindow / 2)
	if most, _ := sp.limits(); most != spinMax {
		t.Fatalf("after a window that moved a page: limit %v, want spinMax", most)
	}
	if sp.budget != spinMax {
		t.Errorf("after a window that moved a page: budget %v, want it cut to spinMax %v", sp.budget, spinMax)
	}
	if sp.waited != 0 || sp.moved != 0 {
		t.Errorf("a verdict left waited %v, moved %d in the ledger; want both 0", sp.waited, sp.moved)
	}
}

// TestSpinnerParkCountsAsWaiting: a park counts in the ledger, for at
// most spinLong. A window that a park completes and in which nothing
// moved turns long spins off at the call after the park; a window in which
// much moved keeps them however long its park. (From an empty window, it
// takes ten parks: a stalled reader spins spinLong at most once before each
// of them, with its budget halved at each.)
func TestSpinnerParkCountsAsWaiting(t *testing.T) {
	sp := spinner{reader: true, primed: true, budget: spinLong, long: true}
	sp.parkedAt = time.Now().Add(-time.Second)
	sp.wait(spinWindow - spinLong) // all but the park's share of the window
	sp.attempt(func() bool { return false })
	if sp.long {
		t.Errorf("a park of a second that moved nothing left long spins on")
	}
	if sp.budget > spinMax {
		t.Errorf("after a window that moved nothing: budget %v, want at most spinMax", sp.budget)
	}

	sp = spinner{reader: true, primed: true, budget: spinLong, long: true}
	sp.add(int(spinWindow/time.Microsecond)*spinPays + 1)
	sp.wait(spinWindow - spinLong)
	sp.parkedAt = time.Now().Add(-time.Second)
	sp.attempt(func() bool { return false })
	if !sp.long {
		t.Errorf("a window that moved 2 bytes a ns with one long park in it turned long spins off")
	}
}

// TestSpinnerLongOnlyForPipeReaders: only the side that reads a pipe into
// a steady destination keeps the ledger; a pipe's writer and a socket's
// reader keep spinMax.
func TestSpinnerLongOnlyForPipeReaders(t *testing.T) {
	splice := func(dfd, sfd int) (int, error) { return 0, nil }
	for _, c := range []struct {
		name     string
		dst, src kind
		reader   bool
	}{
		{"pipe to file", kindFile, kindPipe, true},
		{"TCP to file", kindFile, kindTCP, false},
		{"Unix socket to file", kindFile, kindUnix, false},
		{"file to pipe", kindPipe, kindFile, false},
	} {
		dst, src := &fdConn{kind: c.dst}, &fdConn{kind: c.src}
		tr := newTransferer("splice", dst, src, 0, splice)
		if tr.side == nil {
			t.Fatalf("%s: no side waits", c.name)
		}
		if got := tr.side.spin.reader; got != c.reader {
			t.Errorf("%s: the waiting side keeps a ledger: %v, want %v", c.name, got, c.reader)
		}
	}
}
