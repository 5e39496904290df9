//go:build aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris

package pipe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// retryInterval is how often a writer waiting for a reader tries open(2)
// again: a writer connects within about retryInterval of a reader
// appearing. Waking a goroutine on a timer cost about 0.3 ms of CPU on a
// 2-core Linux VM, so all waiting writers share one timer (retryClock), and
// each tick costs one wake-up plus one failed open(2) per writer.
const retryInterval = 20 * time.Millisecond

// longAgo is a deadline in the past: setting it wakes a parked Read at once.
var longAgo = time.Unix(1, 0)

func mkfifo(path string, mode os.FileMode) error {
	err := whileEINTR(func() error { return unix.Mkfifo(path, uint32(mode)) })
	if err != nil {
		return &os.PathError{Op: "mkfifo", Path: path, Err: err}
	}
	return nil
}

func openFIFO(ctx context.Context, path string, flag int) (*os.File, error) {
	if flag == os.O_RDWR && !rdwrFIFO {
		return nil, unsupported("OpenFIFO with O_RDWR")
	}
	fd, err := openNonblock(path, flag)
	if flag == os.O_WRONLY {
		fd, err = awaitReader(ctx, path, fd, err)
	}
	if err != nil {
		return nil, err
	}
	// The descriptor has O_NONBLOCK, so os.NewFile registers it with the
	// runtime poller on every system here (darwin's exception for FIFOs
	// covers only os.OpenFile); settleFIFO decides what the caller gets.
	f := os.NewFile(uintptr(fd), path)
	if flag == os.O_RDONLY {
		if err := awaitWriter(ctx, f); err != nil {
			_ = f.Close() // the wait's error is the one to report
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
	}
	if f, err = settleFIFO(f); err != nil {
		return nil, err
	}
	own(f) // made by os.NewFile, so Fd keeps O_NONBLOCK (darwin's file is blocking: nothing to keep)
	return f, nil
}

// openNonblock opens path with O_NONBLOCK and O_CLOEXEC, and O_NOCTTY in
// case it has turned into a terminal, if it is a FIFO. It checks with
// stat(2) first, since opening a device can have effects of its own (a tape
// rewinds, a watchdog starts), and with fstat(2) after, since the path may
// have been replaced in between; what is not a FIFO is closed again and
// refused.
func openNonblock(path string, flag int) (int, error) {
	var st unix.Stat_t
	if err := whileEINTR(func() error { return unix.Stat(path, &st) }); err != nil {
		return -1, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if err := checkFIFO(path, uint32(st.Mode)); err != nil {
		return -1, err
	}
	var fd int
	err := whileEINTR(func() (err error) {
		fd, err = unix.Open(path, flag|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
		return err
	})
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	if err = whileEINTR(func() error { return unix.Fstat(fd, &st) }); err != nil {
		err = &os.PathError{Op: "fstat", Path: path, Err: err}
	} else {
		err = checkFIFO(path, uint32(st.Mode))
	}
	if err != nil {
		_ = unix.Close(fd) // opened only to be checked
		return -1, err
	}
	return fd, nil
}

// checkFIFO returns nil if mode is a FIFO's and an error saying what path is
// instead otherwise.
func checkFIFO(path string, mode uint32) error {
	var kind string
	switch mode & unix.S_IFMT {
	case unix.S_IFIFO:
		return nil
	case unix.S_IFREG:
		kind = "regular file"
	case unix.S_IFDIR:
		kind = "directory"
	case unix.S_IFCHR:
		kind = "character device"
	case unix.S_IFBLK:
		kind = "block device"
	case unix.S_IFSOCK:
		kind = "socket"
	default:
		kind = fmt.Sprintf("file of type %#o", mode&unix.S_IFMT)
	}
	return &os.PathError{Op: "open", Path: path, Err: fmt.Errorf("not a FIFO but a %s: %w", kind, syscall.EINVAL)}
}

// awaitReader retries opening path for writing, given the result of the
// first try, for as long as open(2) fails with ENXIO (no reader yet) and ctx
// is not done. Between tries it waits for the next tick of retryClock, so it
// holds no thread and cannot spin: a try happens once per tick.
//
// Nothing cheaper tells a writer that a reader has come: inotify reports an
// open only once it completes, and a reader blocked in its own open(2),
// which is a reader as far as the writer's open(2) is concerned, has not
// completed it.
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
