//go:build unix && !linux

package pipe

import (
	"context"
	"errors"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Waiting for a FIFO's other side where there is no inotify (everywhere
// but Linux): a writer tries open(2) again on a shared clock, and a reader
// waits in the runtime poller for the first byte.

// rdwrFIFO tells whether OpenFIFO accepts O_RDWR: POSIX leaves opening a
// FIFO for both reading and writing undefined, so only Linux does.
const rdwrFIFO = false

// writerSeen reports whether the FIFO read end fd has seen a writer: whether
// data has arrived, according to FIONREAD. What poll(2) and kqueue report
// for a FIFO whose writer has not yet connected or has gone differs across
// these kernels (some report end of file before any writer came), so a
// hang-up is not taken as proof that a writer was there.
func writerSeen(fd int) (bool, error) {
	n, err := unix.IoctlGetInt(fd, fionread)
	if err != nil {
		return false, os.NewSyscallError("ioctl", err)
	}
	return n > 0, nil
}

// retryInterval is how often a writer waiting for a reader tries open(2)
// again: a writer connects within about retryInterval of a reader
// appearing. Waking a goroutine on a timer cost about 0.3 ms of CPU on a
// 2-core Linux VM, so all waiting writers share one timer (retryClock), and
// each tick costs one wake-up plus one failed open(2) per writer.
const retryInterval = 20 * time.Millisecond

// longAgo is a deadline in the past: setting it wakes a parked Read at once.
var longAgo = time.Unix(1, 0)

// awaitReader retries opening path for writing, given the result of the
// first try, for as long as open(2) fails with ENXIO (no reader yet) and ctx
// is not done. Between tries it waits for the next tick of retryClock, so it
// holds no thread and cannot spin: a try happens once per tick.
func awaitReader(ctx context.Context, path string, fd int, err error) (int, error) {
	if !errors.Is(err, unix.ENXIO) {
		return fd, err
	}
	retryClock.join()
	defer retryClock.leave()
	for {
		tick := retryClock.next()
		select {
		case <-ctx.Done():
			return -1, &os.PathError{Op: "open", Path: path, Err: ctx.Err()}
		case <-tick:
		}
		fd, err = openNonblock(path, os.O_WRONLY)
		if !errors.Is(err, unix.ENXIO) {
			return fd, err
		}
	}
}

// retryClock ticks every retryInterval while at least one writer waits, and
// not at all otherwise: the timer is stopped when the last waiter leaves, so
// neither a timer nor a goroutine is left behind. A tick closes the channel
// that next returned, waking every waiting writer at once.
var retryClock clock

type clock struct {
	mu      sync.Mutex
	waiters int
	timer   *time.Timer   // nil while stopped
	tick    chan struct{} // closed at the next tick
}

func (c *clock) join() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waiters++
	if c.tick == nil {
		c.tick = make(chan struct{})
	}
	if c.timer == nil {
		c.timer = time.AfterFunc(retryInterval, c.fire)
	}
}

func (c *clock) leave() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waiters--
	// If Stop fails, fire is running or about to run; it finds no waiter
	// (or a new one) and stops (or ticks) by itself.
	if c.waiters == 0 && c.timer.Stop() {
		c.timer = nil
	}
}

// next returns the channel that the next tick closes.
func (c *clock) next() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tick
}

func (c *clock) fire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waiters == 0 {
		c.timer = nil
		return
	}
	close(c.tick)
	c.tick = make(chan struct{})
	c.timer.Reset(retryInterval)
}

// awaitWriter parks the goroutine in the runtime poller until the FIFO read
// end f shows that a writer has connected (writerSeen), ctx is done (the
// error is then ctx.Err()) or waiting fails. It leaves f's read deadline
// clear and no goroutine behind.
//
// The poller is edge-triggered, so each wake-up asks the kernel afresh with
// writerSeen, which never sleeps, and parks again if there is still nothing:
// a wake-up happens only when the FIFO's state changes, so this cannot spin.
// ctx interrupts the wait by setting a read deadline in the past.
func awaitWriter(ctx context.Context, f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		_ = f.SetReadDeadline(longAgo) // fails only for a file the poller lacks, whose wait fails anyway
	})
	var seen bool
	var seenErr error
	err = rc.Read(func(fd uintptr) bool {
		seen, seenErr = writerSeen(int(fd))
		return seen || seenErr != nil
	})
	if !stop() {
		<-fired // the deadline is set; clear it below if the wait succeeded
	}
	switch {
	case err == nil && seenErr != nil:
		return seenErr
	case err == nil:
		// A deadline set by the AfterFunc after the wait ended is undone
		// here, since the caller gets the file.
		_ = f.SetReadDeadline(time.Time{}) // cannot fail: the wait used the poller
		return nil
	case ctx.Err() != nil && errors.Is(err, os.ErrDeadlineExceeded):
		return ctx.Err()
	}
	return err
}
