package pipe

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
	"weak"

	"golang.org/x/sys/unix"
)

// TestReview6ChooserSwitchBackCounted: the same cost model as the existing
// subtest "the switch is not counted" (mapping's first 4 MiB after copies
// cost 3 ns/B, refills; then 1 ns/B), but with mapping in use and copying
// steadily slower (copyNS). A lost copy trial puts mapping back, and its
// refill window counted in `used` (every window since the trial), so after
// a gap of 4 windows mapping looked 1.5 ns/B and a copying way up to 35%
// slower won, against wayBetter's rule that a way must be 10% faster (the
// writer then copied 3931 of 4096 MiB). That window is now left out.
func TestReview6ChooserSwitchBackCounted(t *testing.T) {
	const n = 64 << 10
	for _, pen := range []int64{2, 3} {
		for _, copyNS := range []float64{1.05, 1.1, 1.2, 1.3} {
			t.Run(fmt.Sprint(pen, "x/", copyNS), func(t *testing.T) {
				var c wayChooser
				now := int64(1)
				runMapped := int64(0)
				var copied, total, spent int64
				for sent := int64(0); sent < 4<<30; sent += n {
					copying := c.copyNext()
					var d int64
					if copying {
						runMapped = 0
						d = int64(n * copyNS)
						copied += n
					} else {
						runMapped += n
						if runMapped <= wayWindow && sent > wayWarmup {
							d = pen * n
						} else {
							d = n
						}
					}
					now += d
					total += n
					spent += d
					c.committed(n, now)
				}
				// Always mapping costs 1 ns/B (its refills come only after copies).
				t.Logf("copy %.2f ns/B: copied %d of %d MiB, %.3f ns/B overall (always mapping: 1.000); ends copying=%v",
					copyNS, copied>>20, total>>20, float64(spent)/float64(total), c.copying)
				if c.copying || copied > total/10 {
					t.Errorf("copying is %.0f%% slower steadily, yet the writer copied %d of %d MiB and ends copying=%v",
						(copyNS-1)*100, copied>>20, total>>20, c.copying)
				}
			})
		}
	}
}

// TestReview6ChooserLongRun: years of commits, checked for overflow, NaN,
// and trials that stop.
func TestReview6ChooserLongRun(t *testing.T) {
	const n = 1 << 20
	c := wayChooser{}
	now := int64(1)
	trials := 0
	wasTrying := false
	for i := int64(0); i < 20_000_000; i++ { // ~19 PiB
		if c.copyNext() {
			now += 2 * n
		} else {
			now += n
		}
		c.committed(n, now)
		if c.trying && !wasTrying {
			trials++
		}
		wasTrying = c.trying
		if c.used.bytes < 0 || c.used.ns < 0 || c.since < 0 || c.gap < 0 || c.tried.ns < 0 {
			t.Fatalf("commit %d: overflow: %+v", i, c)
		}
	}
	// A trial at least every wayGapMax/wayWindow windows, each of
	// wayCommits commits here.
	if want := int(20_000_000 / (wayGapMax / wayWindow * wayCommits) / 2); trials < want {
		t.Errorf("%d trials; want at least %d", trials, want)
	}
	t.Logf("%d trials, used %+v, gap %d", trials, c.used, c.gap)
}

// --- Vmsplice's pooled state ---

func review6Pipe(t *testing.T, flags int) (r, w *os.File) {
	t.Helper()
	r, w, err := Pipe2(flags)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

func review6Fill(t *testing.T, w *os.File) {
	t.Helper()
	b := make([]byte, 64<<10)
	for {
		_, err := unix.Write(int(w.Fd()), b)
		if err == unix.EAGAIN {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestReview6VmsplicePoolKeepsNothingAlive: after a call, neither the file
// nor the user's buffer is reachable from the pool.
func TestReview6VmsplicePoolKeepsNothingAlive(t *testing.T) {
	r, w := review6Pipe(t, O_CLOEXEC|O_NONBLOCK)
	_ = r
	var wf weak.Pointer[os.File]
	var wb weak.Pointer[[4096]byte]
	func() {
		// A file of its own for the same descriptor, dropped after the call.
		fd, err := unix.Dup(int(w.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		f := os.NewFile(uintptr(fd), "dup")
		buf := new([4096]byte)
		if n, err := Vmsplice(f, [][]byte{buf[:], buf[:100]}, 0); n != 4196 || err != nil {
			t.Fatalf("Vmsplice = %d, %v", n, err)
		}
		wf, wb = weak.Make(f), weak.Make(buf)
	}()
	// Drain, so the kernel lets go too (not that Go's GC would know).
	b := make([]byte, 8192)
	unix.Read(int(r.Fd()), b)
	// One GC only: a pooled object survives it (in the victim cache), so
	// what it references would too.
	runtime.GC()
	if wf.Value() != nil {
		t.Error("the *os.File of a finished Vmsplice is still reachable")
	}
	if wb.Value() != nil {
		t.Error("the buffer of a finished Vmsplice is still reachable")
	}
}

// TestReview6VmspliceMisuse: every misuse, on a pooled state used just
// before by a call of another kind, gives its error at once.
func TestReview6VmspliceMisuse(t *testing.T) {
	r, w := review6Pipe(t, O_CLOEXEC|O_NONBLOCK)
	_, full := review6Pipe(t, O_CLOEXEC|O_NONBLOCK)
	review6Fill(t, full)
	closedR, closedW := review6Pipe(t, O_CLOEXEC|O_NONBLOCK)
	closedR.Close()
	closedW.Close()
	reg, err := os.CreateTemp(t.TempDir(), "reg")
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	// A blocking write end outside the poller.
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	br, bw := os.NewFile(uintptr(p[0]), "br"), os.NewFile(uintptr(p[1]), "bw")
	defer br.Close()
	defer bw.Close()
	review6FillBlocking(t, p[1])

	type c struct {
		name  string
		f     *os.File
		flags int
		want  error
	}
	cases := []c{
		{"nil", nil, 0, os.ErrInvalid},
		{"closed", closedW, 0, os.ErrClosed},
		{"read end", r, 0, syscall.EBADF},
		{"regular file", reg, 0, syscall.EBADF},
		{"full nonblock", full, SPLICE_F_NONBLOCK, syscall.EAGAIN},
		{"blocking full nonblock", bw, SPLICE_F_NONBLOCK, syscall.EAGAIN},
		{"good", w, 0, nil},
	}
	for round := range 50 {
		for i := range cases {
			k := cases[(i+round)%len(cases)]
			start := time.Now()
			n, err := Vmsplice(k.f, [][]byte{{1, 2, 3}}, k.flags)
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Errorf("%s: took %v", k.name, d)
			}
			if k.want == nil {
				if n != 3 || err != nil {
					t.Errorf("%s: %d, %v", k.name, n, err)
				}
				unix.Read(int(r.Fd()), make([]byte, 3))
			} else if n != 0 || !errors.Is(err, k.want) {
				t.Errorf("%s: %d, %v; want %v", k.name, n, err, k.want)
			}
			if round == 0 && i == 0 {
				for _, k := range cases {
					_, err := Vmsplice(k.f, [][]byte{{1, 2, 3}}, k.flags)
					t.Logf("%-24s %v", k.name+":", err)
					if k.want == nil {
						unix.Read(int(r.Fd()), make([]byte, 3))
					}
				}
			}
		}
	}
	// A deadline, after all of those: it must wait for it.
	full.SetWriteDeadline(time.Now().Add(30 * time.Millisecond))
	start := time.Now()
	if _, err := Vmsplice(full, [][]byte{{1}}, 0); !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) < 25*time.Millisecond {
		t.Errorf("deadline: %v after %v", err, time.Since(start))
	}
	// A past deadline: at once.
	start = time.Now()
	if _, err := Vmsplice(full, [][]byte{{1}}, 0); !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > 200*time.Millisecond {
		t.Errorf("past deadline: %v after %v", err, time.Since(start))
	}
	full.SetWriteDeadline(time.Time{})
}

func review6FillBlocking(t *testing.T, fd int) {
	t.Helper()
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 64<<10)
	for {
		if _, err := unix.Write(fd, b); err != nil {
			break
		}
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		t.Fatal(err)
	}
}

// TestReview6VmspliceCloseDuringWait: Close from another goroutine of a
// file a Vmsplice waits on (in the poller, and blocking outside it) ends
// the call promptly, and the next calls on other pipes, reusing the pooled
// state, work; meanwhile other goroutines keep calling.
func TestReview6VmspliceCloseDuringWait(t *testing.T) {
	stop := make(chan struct{})
	var bg sync.WaitGroup
	for g := range 3 {
		bg.Add(1)
		go func() {
			defer bg.Done()
			r, w := review6Pipe(t, O_CLOEXEC|O_NONBLOCK)
			buf := make([]byte, 64)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := []byte(fmt.Sprintf("g%d-%d", g, i))
				if n, err := Vmsplice(w, [][]byte{p}, 0); n != len(p) || err != nil {
					t.Errorf("background: %d, %v", n, err)
					return
				}
				m, _ := unix.Read(int(r.Fd()), buf)
				if string(buf[:m]) != string(p) {
					t.Errorf("background got %q want %q", buf[:m], p)
					return
				}
			}
		}()
	}
	for round := range 20 {
		for _, blocking := range []bool{false, true} {
			var w *os.File
			if blocking {
				var p [2]int
				if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
					t.Fatal(err)
				}
				defer unix.Close(p[0])
				w = os.NewFile(uintptr(p[1]), "bw")
				review6FillBlocking(t, p[1])
			} else {
				_, w = review6Pipe(t, O_CLOEXEC|O_NONBLOCK)
				review6Fill(t, w)
			}
			done := make(chan error, 1)
			go func() {
				_, err := Vmsplice(w, [][]byte{{1}}, 0)
				done <- err
			}()
			time.Sleep(5 * time.Millisecond)
			start := time.Now()
			closed := make(chan struct{})
			go func() { w.Close(); close(closed) }()
			select {
			case err := <-done:
				if !errors.Is(err, os.ErrClosed) {
					t.Errorf("round %d blocking=%v: %v; want os.ErrClosed", round, blocking, err)
				}
				limit := time.Second // the poller: at once; a slow machine under -race takes its time
				if blocking {
					limit = 2 * time.Second // poll(2) on a duplicate checks for Close every closedCheck
				}
				if d := time.Since(start); d > limit {
					t.Errorf("round %d blocking=%v: returned %v after Close", round, blocking, d)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("round %d blocking=%v: Vmsplice still waits 5 s after Close", round, blocking)
			}
			select {
			case <-closed:
			case <-time.After(2 * time.Second):
				t.Fatalf("round %d blocking=%v: Close hangs", round, blocking)
			}
		}
	}
	close(stop)
	bg.Wait()
}
