package pipe

import (
	"errors"
	"os"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// This file is how a transfer (splice, tee, vmsplice) waits. Two rules keep
// Close and the CPU honest:
//
//  1. No RawConn reference is held across a system call that can sleep.
//     Close of a file in the poller waits until every reference is
//     released, so a call sleeping inside Control would hold Close up.
//     Calls that hold a side's reference (both, await's try) are
//     non-blocking: pipes get SPLICE_F_NONBLOCK, and a side that could
//     still sleep (see fdConn.mayBlock) is held through a duplicate
//     descriptor instead.
//  2. Every EAGAIN parks: in the runtime poller on the side that is not
//     ready, or, for a side outside the poller, in poll(2) on a duplicate of
//     its descriptor. When the kernel answers EAGAIN although both sides
//     poll ready, a stallGuard sleeps between tries; only urgent data,
//     which SIOCATMARK proves, ends the call (errRefused).

// errRefused reports a pair the kernel will not splice any further although
// both sides are ready: a stream socket at urgent data. Splice wraps it;
// Copy finishes with read and write instead.
var errRefused = errors.New("the kernel will not splice past TCP urgent data (read(2) skips it)")

// await calls try with s's descriptor until try reports it is done,
// parking in between until s is ready for events (POLLIN: s is a source;
// POLLOUT: a destination), and reports whether it parked. try runs inside
// s's RawConn.Read or Write, so s's deadline and Close end the wait; try
// must not sleep. The poller is edge-triggered and watches from the start
// of that call, so an EAGAIN that try sees is followed by a wake-up once
// s becomes ready.
//
// A descriptor the poller does not watch (a blocking one, opened outside
// it) makes the RawConn refuse to wait: poll(2) then waits on a duplicate
// of it, holding no reference (rule 1), and holds the thread as its own
// Read or Write would; its Close does not wake that wait.
func (s *fdConn) await(op string, events int16, try func(fd int) (done bool)) (parked bool, err error) {
	s.schedPoint().point()
	a := &s.aw
	if a.fn == nil {
		a.fn = func(fd uintptr) bool {
			a.calls++
			return a.try(int(fd))
		}
	}
	a.try, a.calls = try, 0
	if events == unix.POLLIN {
		err = s.rc.Read(a.fn)
	} else {
		err = s.rc.Write(a.fn)
	}
	calls := a.calls
	a.try = nil
	if calls > 1 && !s.free {
		s.sched.parked() // tried, waited in the poller, tried again
	}
	switch {
	case err == nil:
		return calls > 1, nil
	case calls == 0 || errors.Is(err, os.ErrDeadlineExceeded):
		return false, s.closedOr(op, err) // closed, or the deadline struck
	}
	// Closed while parked, or not in the poller.
	var stall stallGuard
	for {
		if err := s.pollAlone(op, events); err != nil {
			return false, err
		}
		done := false
		if err := s.rc.Control(func(fd uintptr) { done = try(int(fd)) }); err != nil {
			return false, s.closedOr(op, err)
		}
		if done {
			return true, nil
		}
		// poll(2) answered, and try still says no: another reader took
		// the data first, or poll(2) answers at once for as long as a
		// state lasts (an error only, a UDP socket shut for reading):
		// pace the tries rather than spin.
		stall.pause()
	}
}

// An awaiter is what await hands the RawConn, made once per side so that
// a wait allocates nothing. A side waits in one call at a time.
type awaiter struct {
	try   func(fd int) bool
	calls int
	fn    func(fd uintptr) bool
}

// readiness is await's try for a wait on readiness alone, where an error
// or a hang-up counts (ready).
func readiness(events int16) func(fd int) bool {
	return func(fd int) bool { return ready(fd, events) }
}

// readinessFor is await's try for a wait until a call that answered EAGAIN
// would go through (readyFor).
func readinessFor(events int16) func(fd int) bool {
	return func(fd int) bool { return readyFor(fd, events) }
}

// pollAlone waits in poll(2) until s is ready for events, on a duplicate of
// its descriptor, so that no reference of s is held while it sleeps. A
// pending error alone, which poll(2)
// reports at once for as long as it lasts (a socket's error queue), is
// waited past in an epoll(7) instance of its own, edge-triggered, until
// something changes. Close of s wakes neither, so the wait checks every
// closedCheck whether s was closed, and then returns the error for that,
// letting the duplicate go.
func (s *fdConn) pollAlone(op string, events int16) error {
	dup, err := s.dup(op)
	if err != nil {
		return err
	}
	defer func() { _ = unix.Close(dup) }() // our own duplicate; nothing to report
	fds := []unix.PollFd{{Fd: int32(dup), Events: events}}
	ep := -1
	defer func() {
		if ep >= 0 {
			_ = unix.Close(ep)
		}
	}()
	evs := make([]unix.EpollEvent, 1)
	for timeout := int(closedCheck / time.Millisecond); ; {
		if ep < 0 {
			fds[0].Revents = 0
			n, err := unix.Poll(fds, timeout)
			switch {
			case err == unix.EINTR:
				// Not restarted, and not retried at once: with a signal
				// every few ms, the check for Close below would never run.
			case err != nil:
				return nil // counts as ready: the call will say what is wrong
			case n > 0 && fds[0].Revents&wants(events) != 0:
				return nil
			case n > 0:
				// An error only. Watched edge-triggered, the state at
				// EPOLL_CTL_ADD is reported once (taken here, at once)
				// and then only changes.
				if ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
					return nil // the caller paces its tries
				}
				ev := unix.EpollEvent{Events: uint32(events) | unix.EPOLLET, Fd: int32(dup)}
				if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, dup, &ev); err != nil {
					return nil
				}
				n, _ := ignoringEINTR(func() (int, error) { return unix.EpollWait(ep, evs, 0) })
				if n > 0 && int16(evs[0].Events)&wants(events) != 0 {
					return nil // it became ready meanwhile
				}
				continue
			}
		} else {
			n, err := unix.EpollWait(ep, evs, timeout)
			switch {
			case err == unix.EINTR: // as for poll(2) above
			case err != nil:
				return nil
			case n > 0:
				return nil
			}
		}
		if err := s.rc.Control(func(uintptr) {}); err != nil {
			return s.closedOr(op, err)
		}
	}
}

// closedCheck is how often a wait in poll(2) on a duplicate descriptor
// checks whether the original was closed: the most a Close of a side
// outside the poller waits to end Copy or Splice, and keeps its connection
// open.
const closedCheck = 100 * time.Millisecond

// dup returns a close-on-exec duplicate of s's descriptor, which the caller
// closes.
func (s *fdConn) dup(op string) (int, error) {
	dup := -1
	var errno error
	if err := s.rc.Control(func(fd uintptr) {
		dup, errno = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, s.closedOr(op, err)
	}
	return dup, os.NewSyscallError("fcntl", errno) // EMFILE, say
}

// both runs call with the descriptors of dst and src, retrying it on EINTR,
// and returns its result: err reports a closed side, errno is the call's
// own. Each side is held by its RawConn's Control for the call, which must
// not sleep; when a side may sleep anyway (mayBlock), both are held by
// duplicates instead (rule 1).
func both(op string, dst, src *fdConn, call func(dfd, sfd int) (int, error)) (n int, errno, err error) {
	return newPairCall(op, dst, src, call).run()
}

// A pairCall is both for a call made again and again, as a transfer's tries
// are: its closures are made once, so that a try allocates nothing.
type pairCall struct {
	op           string
	dst, src     *fdConn
	call         func(dfd, sfd int) (int, error)
	sfd          uintptr // src's descriptor, while outer runs
	n            int
	errno        error
	dstErr       error
	outer, inner func(fd uintptr) // Control's callbacks for src and dst
}

func newPairCall(op string, dst, src *fdConn, call func(dfd, sfd int) (int, error)) *pairCall {
	p := &pairCall{op: op, dst: dst, src: src, call: call}
	p.inner = func(d uintptr) {
		p.n, p.errno = ignoringEINTR(func() (int, error) { return p.call(int(d), int(p.sfd)) })
	}
	p.outer = func(s uintptr) {
		p.sfd = s
		p.dstErr = p.dst.rc.Control(p.inner)
	}
	return p
}

// run makes the call once, as both describes.
func (p *pairCall) run() (n int, errno, err error) {
	if p.dst.mayBlock() || p.src.mayBlock() {
		return bothDup(p.op, p.dst, p.src, p.call)
	}
	p.n, p.errno, p.dstErr = 0, nil, nil
	if err := p.src.rc.Control(p.outer); err != nil {
		return 0, nil, p.src.closedOr(p.op, err)
	}
	if p.dstErr != nil {
		return 0, nil, p.dst.closedOr(p.op, p.dstErr)
	}
	return p.n, p.errno, nil
}

// bothDup is both for a pair with a side that may sleep in call.
func bothDup(op string, dst, src *fdConn, call func(dfd, sfd int) (int, error)) (n int, errno, err error) {
	d, err := dst.dup(op)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = unix.Close(d) }() // our own duplicates; nothing to report
	s, err := src.dup(op)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = unix.Close(s) }()
	n, errno = ignoringEINTR(func() (int, error) { return call(d, s) })
	return n, errno, nil
}

// waitEither finds, after an EAGAIN, which side is not ready, with one
// poll(2) of both, and waits for it: the source if it is empty, else the
// destination if it is full. It reports whether it parked; false means both
// sides were ready. Only the side waited on is touched, so the other side's
// deadline, even one long past, plays no part.
func waitEither(op string, dst, src *fdConn) (parked bool, err error) {
	var srcReady, dstReady bool
	_, _, err = both(op, dst, src, func(dfd, sfd int) (int, error) {
		fds := []unix.PollFd{{Fd: int32(sfd), Events: unix.POLLIN}, {Fd: int32(dfd), Events: unix.POLLOUT}}
		if _, err := unix.Poll(fds, 0); err != nil {
			return 0, err // EINTR is retried; nothing else happens with a zero timeout
		}
		srcReady = fds[0].Revents&wants(unix.POLLIN) != 0
		dstReady = fds[1].Revents&wants(unix.POLLOUT) != 0
		return 0, nil
	})
	switch {
	case err != nil:
		return false, err
	case !srcReady:
		return src.await(op, unix.POLLIN, readinessFor(unix.POLLIN))
	case !dstReady:
		return dst.await(op, unix.POLLOUT, readinessFor(unix.POLLOUT))
	}
	return false, nil
}

// readyFirst waits until s, a side that may sleep in the kernel (see
// mayBlock), is ready for events, so that the call that follows takes what
// is there rather than sleeping for more. With nonblock it does not wait,
// and reports EAGAIN if s is not ready. Other sides need no such wait.
func (s *fdConn) readyFirst(op string, events int16, nonblock bool) error {
	switch {
	case !s.mayBlock():
		return nil
	case !nonblock:
		_, err := s.await(op, events, readiness(events))
		return err
	}
	isReady := false
	if err := s.rc.Control(func(fd uintptr) { isReady = ready(int(fd), events) }); err != nil {
		return s.closedOr(op, err)
	}
	if !isReady {
		return os.NewSyscallError(op, unix.EAGAIN)
	}
	return nil
}

// A stallGuard paces the tries of a transfer that the kernel answers with
// EAGAIN while both sides poll ready, which no wait in the poller can cure.
// Others sharing a pipe or FIFO cause it (data taken or room filled between
// the call and the poll), and only for a moment, so the first retry comes at
// once and later ones back off to stallMax between tries, costing next to
// no CPU however long it lasts. A park, or progress, resets it.
type stallGuard int

// stallMax is the longest sleep between tries of a stalled transfer: the
// delay it can add to one that resumes.
const stallMax = 8 * time.Millisecond

func (g *stallGuard) pause() {
	if *g < 8 { // enough to reach stallMax, never enough to overflow
		*g++
	}
	if *g > 1 {
		time.Sleep(min(time.Millisecond<<(*g-2), stallMax))
	}
}

// long reports a stall that has lasted beyond the races that cause short
// ones: from then on it is a wait on both sides, and either side's deadline
// ends it.
func (g stallGuard) long() bool { return g > 5 }

// deadlinePassed returns os.ErrDeadlineExceeded if s's deadline for events
// has passed, without waiting.
func (s *fdConn) deadlinePassed(op string, events int16) error {
	done := func(uintptr) bool { return true }
	var err error
	if events == unix.POLLIN {
		err = s.rc.Read(done)
	} else {
		err = s.rc.Write(done)
	}
	if err != nil {
		return s.closedOr(op, err)
	}
	return nil
}

// A spinner decides how long a call that found the pipe full (or empty) is
// retried before it parks, for one descriptor. Parking costs a wake-up
// through the poller and a trip through the scheduler on each side, several
// times what it takes a reader on another CPU to empty a 64 KiB pipe; so
// while the other side keeps up, retrying for a few microseconds moves the
// data without either side parking. The retries are bounded by the budget,
// which adapts: a spin that ends in progress, or a park that ended soon
// after (a spin would have caught it), raises it up to spinMax, or, for a
// reader, up to spinLong while waiting has paid (spinPays); a park that
// lasted longer halves it, down to nothing, so a stalled call costs at most
// one spin before each park. The zero value starts at spinStart.
type spinner struct {
	budget   time.Duration // how long the next spin may retry; 0 with primed: park at once
	primed   bool          // budget has been set
	parkedAt time.Time     // when the call last parked; zero while it runs
	failed   int           // spins in a row that ended in a park

	// The ledger that lets a reader's spins run to spinLong (see
	// spinPays): whether this spinner may (reader), the time waited in
	// this window (spins, and parks up to spinLong), the bytes the calls
	// moved in it, and the last window's verdict.
	reader bool
	waited time.Duration
	moved  int64
	long   bool
}

const (
	spinStart = 20 * time.Microsecond // a 64 KiB pipe emptied and refilled, with room
	spinMax   = 50 * time.Microsecond // the most a call retries before it parks

	// spinShortPark is the longest park that a longer spin might have
	// spared: spinMax, and the wake-up through the poller, which took
	// 50-150 µs on a loaded 2-core VM.
	//
	// A spinMax of 200 µs with a short park of 400 µs kept a reader
	// spinning through a fresh run's refill (64 KiB fresh buffers 5.2-6.8
	// -> 8.6-10.1 GB/s), but a reader taking a page every 300 µs then made
	// every Commit spin 200 µs, 3-4 times a waiting Write's CPU
	// (TestVmspliceWriterReaderEvery300usDoesNotSpin). spinLong keeps the
	// first without the second.
	spinShortPark = 250 * time.Microsecond

	// spinLong is the most a pipe reader's call retries (the side of a
	// transfer that reads a pipe into a destination that is always
	// ready), and spinLongShortPark the longest park such a spin might
	// have spared, while waiting has paid: while the reader's calls moved
	// at least spinPays bytes for each microsecond it waited (spinning, or
	// parked up to spinLong) over the last spinWindow of waiting. The
	// bytes are all its calls moved, waited for or not. A writer of fresh
	// pages stops for as long as the kernel takes to zero a 2 MiB run
	// (150-250 µs on a 2-core VM), and a reader parked through each stop
	// paid a wake-up through the poller on both sides; such a reader moved
	// 2.4-17 bytes for each nanosecond it waited.
	//
	// A spin that lasts through all the waiting costs the reader 1/spinPays
	// ns a byte: 0.25 at 4 bytes a nanosecond, about what a Read's copy of
	// each byte costs (0.2-0.25 ns here). At 2, a process vmsplicing 320
	// KiB after each 30 µs of sleep (3 bytes a nanosecond, and no copy on
	// its side) kept long spins on, and Copy used 1.2-1.8 times the CPU time
	// of Read, three times what it used with spins of spinMax; at 4 it used
	// less than Read (TestCopyOfPacedWriterDoesNotSpin). Writes of 4 or 64
	// KiB every 100 µs let Copy move 0.04 or 0.65 bytes a nanosecond; with
	// every spin allowed spinLong, Copy used 2-3.5 times the CPU time of
	// Read there.
	//
	// A writer's spins stay within spinMax: the reader it waits for may
	// sleep between reads, and a reader process taking 256 KiB of a 512
	// KiB pipe every 20 µs of sleep gave its writer 2.5 bytes a nanosecond
	// while each long spin lasted through the reader's whole sleep: Commit
	// used 1.6-2.4 times the CPU time of Write, moving 5-25% more
	// (TestCommitOfBurstyReaderDoesNotSpin). A socket's reader keeps
	// spinMax too: nothing here measured what its spins cost.
	//
	// A window of 2 ms of waiting is ten spins of spinLong, and a verdict
	// that waiting no longer pays takes the budget back to spinMax at once.
	// A deadline that passes during a spin ends the call when the spin
	// does: up to spinLong late.
	spinLong          = 200 * time.Microsecond
	spinLongShortPark = spinLong + spinShortPark - spinMax
	spinPays          = 4096                 // bytes moved per µs waited: 4 GB/s
	spinWindow        = 2 * time.Millisecond // of waiting, between verdicts
)

// spinCPUs reports more than one CPU: with one, the other side cannot
// make progress while this one spins.
var spinCPUs = runtime.NumCPU() > 1

// spinPs reports whether a spin can overlap the other side when that side
// is a goroutine of this process: with GOMAXPROCS at 1 (set by the user, or
// by the runtime in a container limited to one CPU) the spinning goroutine
// holds the only P, and the other side runs only once the spin has given
// up. A goroutine in another process would still run, but the spin cannot
// tell the two apart. Asked at each spin, since GOMAXPROCS may change.
func spinPs() bool { return runtime.GOMAXPROCS(0) > 1 }

// attempt runs call, which reports whether the kernel answered EAGAIN,
// and on EAGAIN retries it for as long as the budget allows. It reports
// whether the last answer was still EAGAIN. A try calls it once for each
// time it runs, and calls parking if it then returns false to park.
func (sp *spinner) attempt(call func() (again bool)) (again bool) {
	if !sp.primed {
		sp.budget, sp.primed = spinStart, true
	}
	if !sp.parkedAt.IsZero() { // the first call after a park: was the park short?
		d := time.Since(sp.parkedAt)
		sp.wait(min(d, spinLong))
		most, shortPark := sp.limits()
		switch {
		case sp.budget <= 0 && d < spinMax:
			// A spin would have covered it: try spinning again.
			sp.budget, sp.failed = spinStart, 0
		case d < shortPark && sp.failed < 4:
			sp.budget = min(most, max(2*sp.budget, spinStart))
		default:
			// A long park, or short parks that spins keep failing to
			// cover (a reader taking a page every 100 µs): spin less.
			if sp.budget /= 2; sp.budget < time.Microsecond {
				sp.budget = 0
			}
		}
		sp.parkedAt = time.Time{}
	}
	if !call() {
		return false
	}
	if sp.budget <= 0 || !spinCPUs || !spinPs() {
		return true
	}
	start := time.Now()
	for {
		if !call() {
			d := time.Since(start)
			sp.wait(d)
			most, _ := sp.limits()
			sp.budget = min(most, max(sp.budget, 2*d))
			sp.failed = 0
			return false
		}
		if d := time.Since(start); d >= sp.budget {
			sp.wait(d)
			sp.failed++
			return true
		}
		yield()
	}
}

// limits returns the most a spin may retry, and the longest park that a
// spin of that length might have spared.
func (sp *spinner) limits() (most, shortPark time.Duration) {
	if sp.long {
		return spinLong, spinLongShortPark
	}
	return spinMax, spinShortPark
}

// add records n bytes moved by a reader's call (a writer's spins never
// run long, and its calls are not counted).
func (sp *spinner) add(n int) {
	if n > 0 {
		sp.moved += int64(n)
	}
}

// wait records time spent waiting, and at the end of each spinWindow of
// it decides whether spins may run to spinLong in the next.
func (sp *spinner) wait(d time.Duration) {
	if !sp.reader {
		return
	}
	if sp.waited += d; sp.waited < spinWindow {
		return
	}
	sp.long = sp.moved >= int64(sp.waited/time.Microsecond)*spinPays
	if !sp.long {
		sp.budget = min(sp.budget, spinMax)
	}
	sp.waited, sp.moved = 0, 0
}

// yield gives this thread's CPU to another thread that is ready to run,
// if there is one, between the retries of a spin (sched_yield(2)). On a
// machine with as many busy threads as CPUs, the peer a spin waits for is
// often one that the runtime's own threads (sysmon, an M looking for
// work) have taken the CPU from; retrying without yielding kept it off
// the CPU until the spin gave up and parked, and a park costs a wake-up
// through the poller (270-810 µs on a 2-core VM). With the yield, a
// VmspliceWriter of 64 KiB buffers and a Copy reader parked 170-230 times
// a second instead of 2,400-5,300.
//
// Those threads run for microseconds, so such a yield returns soon. When
// other programs keep the CPUs busy, a yield hands the CPU to one of them
// for its whole time slice, and the scheduler (EEVDF) also pushes this
// thread's deadline back at each yield: a writer yielding in every spin
// got a fraction of the CPU that a plain Write got
// (TestVmspliceWriterUnderCPUContention). So a yield that took longer than
// yieldSlow turns yielding off, for every spin of the process, for
// yieldOff; the spins go on without it. A spin ends once its budget is
// spent, yields included, so a spin yields the CPU for long at most once
// before it parks.
//
// yieldSlow was 100 µs, but a quiet machine's yields run past that now and
// then (200,000 yields of a 64 KiB writer and its reader on a 2-core VM:
// 97% within 30 µs, 113 over 100 µs, 7 over 300 µs, none over 1 ms), so
// yielding was off much of the time it was needed. At 1 ms the writer
// moved more (BENCHMARKS.md: 64 KiB fresh buffers in a 64 KiB pipe 2.8 ->
// 5.1 GiB/s, p = 0.002), and with every CPU busy it still got about as
// much CPU time as a plain Write.
func yield() {
	start := nanotime()
	if start < yieldOffUntil.Load() {
		return
	}
	_, _, _ = unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
	if end := nanotime(); end-start > int64(yieldSlow) {
		yieldOffUntil.Store(end + int64(yieldOff))
	}
}

const (
	yieldSlow = time.Millisecond       // longer than the runtime's threads run or a quiet machine's yields take; shorter than a time slice (EEVDF: 0.75 ms x (1 + log2 CPUs), 1.5 ms on 2)
	yieldOff  = 100 * time.Millisecond // then one yield in 100 ms tests whether the CPUs are still contended
)

// yieldOffUntil is the nanotime before which spins do not yield.
var yieldOffUntil atomic.Int64

// A schedPoint makes a goroutine that makes one call after another on a
// descriptor pass through the scheduler (runtime.Gosched) at most once
// every schedEvery: every wait of the package (await) and every try made
// outside one calls its side's point first (schedPoint of fdConn). A call
// that waited in the poller has in practice been through the scheduler
// (parked), and owes no Gosched for schedEvery after: a Gosched while
// another P is idle wakes a thread to look for work. (A wait can end
// without parking, when a readiness notice was already pending; in a
// 64 KiB writer and its reader, all 7,185 waits of a 2 s trace parked.)
// The free calls' points (goScheds) do not count parks.
//
// The runtime's monitor thread (sysmon) preempts a goroutine that has run
// for 10 ms without passing through the scheduler (runtime.retake, Go
// 1.26). If that goroutine is in a system call at that moment, which is
// where a loop of splice(2) or vmsplice(2) calls that seldom parks spends
// most of its time, it cannot be preempted: sysmon takes its P (handoffp,
// which starts a thread to look for work when none is spinning and no P
// is idle), and from then on sysmon wakes every 20 µs for at least a
// millisecond before it backs off; while it does, it also takes the P of
// any system call that spans two of its ticks. With two such loops (a
// writer and its reader) on a 2-core machine every one of those wake-ups
// takes a CPU from one of them. In BenchmarkSyscallCeiling's loop of 64 KiB
// vmsplices and splices, 200,000 rounds made 10,849 nanosleeps (sysmon's
// ticks) and 18,965 context switches at 8.2 GB/s; with a Gosched every 256
// rounds they made 170 and 362, at 20.2 GB/s, as much as the same loop
// making its calls with RawSyscall6, which sysmon never sees (`perf stat`,
// a throwaway build).
type schedPoint struct {
	at     atomic.Int64 // nanotime of the last Gosched or park, or of the first call; 0 before it
	yields atomic.Int64 // how many times point called Gosched (the tests read it)
}

// schedEvery is how often a schedPoint calls Gosched: half of sysmon's 10
// ms (forcePreemptNS in the runtime), so that sysmon never sees a
// goroutine's turn last that long, with room for the call that runs past
// it; and rarely enough to cost nothing measurable. Every 1 and every 5 ms
// moved the same (BENCHMARKS.md, "The scheduler's 10 ms").
const schedEvery = 5 * time.Millisecond

// point calls runtime.Gosched if schedEvery has passed since it last did,
// or since the last park or the first call. Of goroutines sharing p (a
// slot of goScheds), the one that sees it due first makes it.
func (p *schedPoint) point() {
	now := nanotime()
	switch at := p.at.Load(); {
	case at == 0:
		p.at.CompareAndSwap(0, now)
	case now-at >= int64(schedEvery) && p.at.CompareAndSwap(at, now):
		runtime.Gosched()
		p.at.Store(nanotime())
		p.yields.Add(1)
	}
}

// parked records a park: the goroutine has been through the scheduler.
func (p *schedPoint) parked() { p.at.Store(nanotime()) }

// goScheds are the schedPoints of the sides that Splice, Tee and Vmsplice
// open for one call (fdConn.free), and of Copy before it splices (staged,
// or its splicer), whose sides' own schedPoints serve only the calls that
// one Copy makes: one for each goroutine, as far as goSched can tell them
// apart, so that a loop of such calls passes through the scheduler as a
// VmspliceWriter's commits do. (A Copy that leaves the job to io.Copy
// passes through the scheduler as io.Copy does.)
//
// They are not one point shared: sysmon counts each P's turns, and a
// Gosched resets only the P it runs on, so with one point shared by two
// loops, the one that found it due first made the Gosched and the other
// went 15-42 ms at a time without one (a hostile review, logging). Nor one
// per thread: gettid(2) cost 1 µs on a 2-core VM, and a slot found by it
// took the gains of the Gosched back from loops of Vmsplice calls. Parks do
// not count here: a point may serve two goroutines whose stacks share a
// slot.
var goScheds [256]schedPoint

// goSched returns the calling goroutine's slot of goScheds, found from the
// address of a variable on its stack: stacks are the goroutine's own, and
// the same call path gives the same slot while the stack stays where it is
// (it moves when it grows, or when the garbage collector shrinks it). A
// goroutine reaching free calls by two paths may get two slots, and make a
// Gosched for each (at most one for each path each schedEvery). Two
// goroutines whose stacks hash to one slot (for two given goroutines, one
// chance in 256) share it, and the one that calls more often makes the
// Goscheds: the other may then go as long without one as it would without
// this point (72-98 ms in a review's test of two goroutines calling every
// 1 ms and every 100 µs), which costs speed, never correctness. Keying
// the point by P, which is what sysmon counts, would need the runtime's
// procPin through go:linkname.
func goSched() *schedPoint {
	var here byte
	h := uint64(uintptr(unsafe.Pointer(&here))>>11) * 0x9e3779b97f4a7c15 // 2 KiB: the smallest stack
	return &goScheds[h>>56]
}

// schedPoint returns the schedPoint of s's calls.
func (s *fdConn) schedPoint() *schedPoint {
	if s.free {
		return goSched()
	}
	return &s.sched
}

// nanotime is a monotonic clock in nanoseconds.
func nanotime() int64 { return int64(time.Since(clockBase)) }

var clockBase = time.Now()

// parking records that the call is about to park.
func (sp *spinner) parking() { sp.parkedAt = time.Now() }
