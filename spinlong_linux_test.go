package pipe_test

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pipe2go/pipe"
)

// pacedReaderCPU reads, for d, a pipe of pipeSize bytes that another process
// (role: paced-writer or paced-vmsplicer) fills with chunk bytes every
// interval, with Copy into /dev/null or, if !withCopy, with Read, and
// returns the CPU time this process used meanwhile.
func pacedReaderCPU(t *testing.T, role string, withCopy bool, pipeSize, chunk int, every, d time.Duration) time.Duration {
	t.Helper()
	r, cmd := startPaced(t, role, pipeSize, chunk, every)
	defer cmd.Wait()
	defer r.Close()
	null := devNull(t)
	// Both readers stop at d: the deadline ends a parked Read or Copy.
	start := time.Now()
	if err := r.SetReadDeadline(start.Add(100*time.Millisecond + d)); err != nil {
		t.Fatal(err)
	}
	before := make(chan time.Duration, 1)
	go func() {
		time.Sleep(100 * time.Millisecond) // let the spins settle
		var ru unix.Rusage
		_ = unix.Getrusage(unix.RUSAGE_SELF, &ru) // cpuTime's t.Fatal belongs to the test's goroutine
		before <- time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}()
	var err error
	if withCopy {
		_, err = pipe.Copy(null, r)
	} else {
		_, err = io.CopyBuffer(null, struct{ io.Reader }{r}, make([]byte, pipeSize))
	}
	if !os.IsTimeout(err) {
		t.Fatalf("Copy %v: %v, want the deadline's error", withCopy, err)
	}
	return cpuTime(t) - <-before
}

// TestCopyOfPacedWriterDoesNotSpin: Copy reads a pipe that another process
// fills in bursts, and must use no more CPU than reading it with Read.
// Writes of 4 and 64 KiB every 100 µs move 0.04 and 0.65 bytes for each
// nanosecond the reader waits, far below spinPays; when every spin could
// run to spinLong, each of them succeeded at the next chunk and Copy spun
// through every pause. 256 KiB and 1 MiB every 100 µs are near and above
// it. A writer that vmsplices 320 KiB after each 30 µs of sleep moves more
// than 3 bytes a nanosecond without copying them: with spinPays at 2, long
// spins stayed on and covered nearly all the waiting, and Copy used
// 1.26-1.83 times the CPU of Read (3 times that of 50 µs spins).
func TestCopyOfPacedWriterDoesNotSpin(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: nothing spins")
	}
	for _, c := range []struct {
		role  string
		chunk int
		every time.Duration
	}{
		{"paced-writer", 4 << 10, 100 * time.Microsecond},
		{"paced-writer", 64 << 10, 100 * time.Microsecond},
		{"paced-writer", 256 << 10, 100 * time.Microsecond},
		{"paced-writer", 1 << 20, 100 * time.Microsecond},
		{"paced-vmsplicer", 320 << 10, 30 * time.Microsecond},
	} {
		t.Run(fmt.Sprintf("%s/chunk=%dKiB/every=%v", c.role, c.chunk>>10, c.every), func(t *testing.T) {
			run := func(withCopy bool) func() time.Duration {
				return func() time.Duration {
					used := pacedReaderCPU(t, c.role, withCopy, 1<<20, c.chunk, c.every, 500*time.Millisecond)
					t.Logf("%s giving %d KiB every %v: Copy %v used %v of CPU", c.role, c.chunk>>10, c.every, withCopy, used)
					return used
				}
			}
			noMoreCPUThan(t, fmt.Sprintf("%s giving %d KiB every %v", c.role, c.chunk>>10, c.every), "Read", "Copy", 3, run(false), run(true))
		})
	}
}

// TestCommitOfBurstyReaderDoesNotSpin: a reader in another process takes
// 256 KiB of a 512 KiB pipe, sleeping 20 µs before each read, about 2.5
// bytes for each nanosecond its writer waits. When a writer's spins could
// also run to spinLong, that paid by spinPays, and each spin lasted
// through the reader's whole pause: Commit used 1.6-2.4 times the CPU time
// of Write, moving 5-25% more. Only a reader's spins run long.
func TestCommitOfBurstyReaderDoesNotSpin(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: nothing spins")
	}
	const size, chunk, every = 512 << 10, 256 << 10, 20 * time.Microsecond
	run := func(commit bool) func() time.Duration {
		return func() time.Duration {
			used, n := pacedWriterCPU(t, commit, size, chunk, every, 500*time.Millisecond)
			t.Logf("reader taking %d KiB every %v: Commit %v used %v of CPU (%d MiB)", chunk>>10, every, commit, used, n>>20)
			return used
		}
	}
	noMoreCPUThanWrite(t, fmt.Sprintf("a reader taking %d KiB every %v", chunk>>10, every), 3, run(false), run(true))
}
