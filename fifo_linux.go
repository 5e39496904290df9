package pipe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rdwrFIFO tells whether OpenFIFO accepts O_RDWR: Linux defines it for
// FIFOs (fifo(7)), and such an open never waits.
const rdwrFIFO = true

// Waiting for a FIFO's other side on Linux, as open(2) would, holding no
// thread.
//
// A writer's open(2) of a FIFO that has a reader completes at once, and
// inotify then reports IN_OPEN on the FIFO's inode. So a waiting reader
// parks until IN_OPEN arrives and then asks the kernel whether a writer has
// the FIFO open: tee(2) of one byte with SPLICE_F_NONBLOCK into a scratch
// pipe fails with EAGAIN when the FIFO is empty and has a writer, returns 0
// when it is empty and has none, and copies a byte, without consuming it,
// when data is waiting. Another reader's open also raises IN_OPEN; the probe
// then finds no writer, and the reader parks again.
//
// A reader blocked in its own open(2) counts as a reader for a writer's
// open(2), but raises no IN_OPEN until a writer has come, so nothing tells a
// waiting writer about it: waiting writers try open(2) again on a shared
// clock, once per FIFO per tick however many wait on it. A reader that opens
// without waiting (O_NONBLOCK, as this package, tokio and containerd/fifo
// do) raises IN_OPEN, and the FIFO's writers are tried at once.
//
// One inotify instance serves every waiting open in the process, with one
// watch per FIFO: instances are few (fs.inotify.max_user_instances, 128 by
// default), watches many. The instance, its goroutine, the scratch pipe and
// the clock exist only while something waits. Where no instance or watch
// can be had, readers too probe on the clock.

// The clock's tick: fifoTickPer for each FIFO that has writers waiting,
// within [fifoTickMin, fifoTickMax]. A try, open(2) failing with ENXIO,
// costs about 3 µs of CPU on a 2-core Linux 6.18 VM, so 1,000 FIFOs cost
// about 4% of a core at the longest tick, and a writer connects to a
// blocking reader within fifoTickMax plus one round of tries: the 100 ms
// that OpenFIFO's doc promises.
const (
	fifoTickMin = 25 * time.Millisecond
	fifoTickMax = 95 * time.Millisecond
	fifoTickPer = 95 * time.Microsecond
)

// fifoRoundBatch is how many tries a round makes between lets go of
// the lock: a cancel waits for at most that many, well under a millisecond.
const fifoRoundBatch = 64

// fifoWatchMask selects the inotify events that matter: an open, and the
// events after which the path may no longer name the watched inode (a
// chmod also raises IN_ATTRIB, which costs only a stat(2) per try).
const fifoWatchMask = unix.IN_OPEN | unix.IN_ATTRIB | unix.IN_MOVE_SELF | unix.IN_DELETE_SELF

// fifos holds every waiting OpenFIFO of the process.
var fifos = fifoWaits{
	entries: make(map[fifoKey]*fifoEntry),
	watches: make(map[int32]*fifoWatch),
	dirs:    make(map[[2]uint64]*fifoDir),
	inFD:    -1,
	scratch: [2]int{-1, -1},
}

// fifoWaits is the set of waiting opens. Its mutex guards every field of
// it and of its entries and watches.
type fifoWaits struct {
	mu      sync.Mutex
	entries map[fifoKey]*fifoEntry
	watches map[int32]*fifoWatch // by watch descriptor
	clocked []*fifoEntry         // the entries the clock pokes
	dirs    map[[2]uint64]*fifoDir
	in      *os.File      // the inotify instance, or nil
	inFD    int           // in's descriptor, for inotify_add_watch and inotify_rm_watch
	done    chan struct{} // closed once the goroutine reading in has returned
	scratch [2]int        // the tee probe's scratch pipe while readers wait, else -1s
	timer   *time.Timer   // the clock, while some entry needs it

	// An instance stopIfIdle retired, for unlock to close.
	retired     *os.File
	retiredDone chan struct{}
}

// fifoKey names the waiters that share one entry: the readers of one
// FIFO, by the device and inode of the file they opened, or the writers of
// one name in one directory, by the directory's device and inode, since
// writers open by name.
type fifoKey struct {
	dev, ino uint64
	name     string // writers only
	writer   bool
}

// fifoEntry is the waiters of one key.
type fifoEntry struct {
	key     fifoKey
	path    string // the caller's, for errors
	waiters int
	watch   *fifoWatch    // nil without one
	wake    chan struct{} // closed, and replaced, to wake the waiters
	dead    bool          // dropped from fifos.entries
	clk     int           // e's index in fifos.clocked, or -1

	// Writers only.
	fd   int       // a write end that a try opened for a waiter to take, or -1
	gen  uint64    // counts the tries that connected
	err  error     // a try's error other than ENXIO, for every waiter
	sure bool      // name in dir is the watched FIFO, not a symlink, as far as inotify tells
	fifo [2]uint64 // the device and inode that name named when watched
	dir  *fifoDir  // nil if the directory could not be opened
	name string    // the path's last element in dir, or the path if dir is nil
}

// fifoDir is a directory, opened with O_PATH, in which writers' entries
// try openat(2): shorter than the whole path, as tries are many. Entries
// in the same directory share it.
type fifoDir struct {
	id   [2]uint64 // device and inode
	fd   int
	refs int
}

// fifoWatch is an inotify watch, which every entry on the same inode
// shares: the kernel gives one watch descriptor per inode and instance.
type fifoWatch struct {
	wd      int32
	entries []*fifoEntry
}

// awaitReader waits until a writer's open of path succeeds, given the
// result of the first try: for as long as open(2) fails with ENXIO (no
// reader) and ctx is not done. It returns the write end or the first other
// error, or ctx's error if ctx is done by then.
func awaitReader(ctx context.Context, path string, fd int, err error) (int, error) {
	if !errors.Is(err, unix.ENXIO) {
		return fd, err
	}
	e, err := fifos.join(path, -1, true)
	if err != nil {
		return -1, err
	}
	tried := false
	var gen uint64
	for {
		fifos.mu.Lock()
		done := true
		switch {
		case e.fd >= 0:
			fd, err, e.fd = e.fd, nil, -1
		case e.err != nil:
			fd, err = -1, e.err
		case !tried || e.gen != gen:
			// Once on joining, since a reader may have come after the
			// first try but before the watch, and after each connection
			// made for another waiter on this FIFO, which has a reader
			// now.
			tried, gen = true, e.gen
			fd, err = e.open()
			done = !errors.Is(err, unix.ENXIO)
		default:
			done = false
		}
		if done {
			fifos.leaveLocked(e) // e.fd is -1: nothing for it to hand over
			fifos.unlock()
			return fd, ctxFirst(ctx, path, err)
		}
		wake := e.wake
		fifos.mu.Unlock()
		select {
		case <-ctx.Done():
			// A try may have connected meanwhile; then the connection is
			// this waiter's, if no other is left to take it, not to be
			// closed again: a reader blocked in open(2) would see a
			// writer come and go.
			fifos.mu.Lock()
			fd := fifos.leaveLocked(e)
			fifos.unlock()
			if fd >= 0 {
				return fd, nil
			}
			return -1, &os.PathError{Op: "open", Path: path, Err: ctx.Err()}
		case <-wake:
		}
	}
}

// awaitWriter parks the goroutine until a writer has the FIFO read end f
// open, has written to it or has come and gone, or ctx is done (the error
// is then ctx.Err()).
func awaitWriter(ctx context.Context, f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	// A writer that has written, or come and gone, shows in poll(2); then
	// nothing needs watching.
	var seen bool
	if err := rc.Control(func(fd uintptr) { seen = ready(int(fd), unix.POLLIN) }); err != nil || seen {
		return err
	}
	var e *fifoEntry
	if cerr := rc.Control(func(fd uintptr) { e, err = fifos.join(f.Name(), int(fd), false) }); cerr != nil {
		return cerr
	}
	if err != nil {
		return err
	}
	defer fifos.leave(e)
	for {
		fifos.mu.Lock()
		wake := e.wake // before the probe: a later open closes it
		fifos.mu.Unlock()
		var probeErr error
		err := rc.Control(func(fd uintptr) { seen, probeErr = fifos.probe(int(fd)) })
		if err == nil {
			err = probeErr
		}
		if seen || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		}
	}
}

// join adds a waiter for the readers of the FIFO open as fd (writer false)
// or for the writers of path (fd is then -1), starting what waiting needs
// if nothing waited before.
func (w *fifoWaits) join(path string, fd int, writer bool) (*fifoEntry, error) {
	var key fifoKey
	var dir *fifoDir
	name := path
	if writer {
		if dir = w.openDir(filepath.Dir(path)); dir != nil {
			key = fifoKey{dev: dir.id[0], ino: dir.id[1], name: filepath.Base(path), writer: true}
			name = key.name
		} else {
			key = fifoKey{name: path, writer: true} // relative to whatever directory: no sharing but by the string
		}
	} else {
		var st unix.Stat_t
		if err := whileEINTR(func() error { return unix.Fstat(fd, &st) }); err != nil {
			return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
		}
		key = fifoKey{dev: uint64(st.Dev), ino: uint64(st.Ino)}
	}
	w.mu.Lock()
	if len(w.entries) == 0 && w.in == nil {
		w.startInotify()
	}
	if !writer && w.scratch[0] < 0 {
		if err := unix.Pipe2(w.scratch[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
			w.scratch = [2]int{-1, -1}
			w.releaseDir(dir)
			w.stopIfIdle()
			w.unlock()
			return nil, os.NewSyscallError("pipe2", err)
		}
	}
	defer w.unlock()
	e := w.entries[key]
	if e == nil {
		e = &fifoEntry{key: key, path: path, wake: make(chan struct{}), fd: -1, clk: -1, dir: dir, name: name}
		w.entries[key] = e
		if writer {
			// Watch what the name names in the directory, and trust it
			// for plain tries only if that is a FIFO, not a symlink.
			if w.watch(e, w.dirPath(e)); e.watch != nil {
				e.sure = e.revalidate(true)
			} else {
				w.watch(e, path) // no /proc: events still help, but every try stats first
			}
		} else {
			w.watch(e, fmt.Sprintf("/proc/self/fd/%d", fd)) // the very inode this reader has open
			if e.watch == nil {
				w.watch(e, path) // no /proc: the path, which is what writers open
			}
		}
		if writer || e.watch == nil {
			w.clock(e)
		}
	} else {
		w.releaseDir(dir) // e holds its own
	}
	e.waiters++
	w.schedule()
	return e, nil
}

// dirPath returns a path that names what e's writers open, through the
// directory e holds when there is /proc, or e's path.
func (w *fifoWaits) dirPath(e *fifoEntry) string {
	if e.dir == nil {
		return e.path
	}
	return fmt.Sprintf("/proc/self/fd/%d/%s", e.dir.fd, e.name)
}

// revalidate reports whether e's name in its directory is still the FIFO
// it was when watched (or, with first, records it): a FIFO itself, not a
// symlink, with the same device and inode. Plain tries rely on it.
func (e *fifoEntry) revalidate(first bool) bool {
	if e.dir == nil {
		return false
	}
	var st unix.Stat_t
	err := whileEINTR(func() error { return unix.Fstatat(e.dir.fd, e.name, &st, unix.AT_SYMLINK_NOFOLLOW) })
	if err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return false
	}
	id := [2]uint64{uint64(st.Dev), uint64(st.Ino)}
	if first {
		e.fifo = id
	}
	return id == e.fifo
}

// leave removes a reader's waiter from e (see leaveLocked).
func (w *fifoWaits) leave(e *fifoEntry) {
	w.mu.Lock()
	_ = w.leaveLocked(e) // readers' entries hold no write end
	w.unlock()
}

// leaveLocked removes a waiter from e, and stops what waiting needs once
// nothing waits. It returns the write end a try opened for e's waiters if
// no other waiter is left to take it, or -1.
func (w *fifoWaits) leaveLocked(e *fifoEntry) int {
	e.waiters--
	fd := -1
	if e.waiters == 0 {
		fd, e.fd = e.fd, -1
		if !e.dead {
			w.drop(e)
		}
	}
	w.stopIfIdle()
	return fd
}

// drop removes e from the entries and from its watch, removing the watch
// if no other entry shares it.
func (w *fifoWaits) drop(e *fifoEntry) {
	e.dead = true
	delete(w.entries, e.key)
	w.unclock(e)
	w.releaseDir(e.dir)
	e.dir = nil
	wa := e.watch
	if wa == nil {
		return
	}
	e.watch = nil
	for i, o := range wa.entries {
		if o == e {
			wa.entries = append(wa.entries[:i], wa.entries[i+1:]...)
			break
		}
	}
	if len(wa.entries) == 0 {
		delete(w.watches, wa.wd)
		_, _ = unix.InotifyRmWatch(w.inFD, uint32(wa.wd)) // fails only if the kernel removed it already (IN_IGNORED on its way)
	}
}

// startInotify makes the inotify instance and starts the goroutine that
// reads it. Without one, which happens when the user's instances are used
// up, every wait uses the clock.
func (w *fifoWaits) startInotify() {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return
	}
	// Non-blocking, so in the runtime poller: the goroutine holds no
	// thread, and Close wakes it.
	w.in, w.inFD, w.done = os.NewFile(uintptr(fd), "inotify"), fd, make(chan struct{})
	go w.read(w.in, w.done)
}

// stopIfIdle stops the clock, closes the scratch pipe and retires the
// inotify instance, for unlock to close, once no entry is left.
func (w *fifoWaits) stopIfIdle() {
	if len(w.entries) > 0 {
		return
	}
	if w.timer != nil && w.timer.Stop() {
		w.timer = nil
	} // else the round in progress finds nothing to do and stops
	for i, fd := range w.scratch {
		if fd >= 0 {
			_ = unix.Close(fd) // empty after every probe: nothing to lose
			w.scratch[i] = -1
		}
	}
	if w.in != nil {
		w.retired, w.retiredDone = w.in, w.done
		w.in, w.inFD = nil, -1
	}
}

// unlock unlocks w.mu, then closes the instance stopIfIdle retired, if
// any, and waits for its reader to return: the descriptor is closed only
// once no Read holds it, and the caller's OpenFIFO should leave nothing
// open. The reader needs w.mu, so this cannot be done locked.
func (w *fifoWaits) unlock() {
	in, done := w.retired, w.retiredDone
	w.retired, w.retiredDone = nil, nil
	w.mu.Unlock()
	if in != nil {
		_ = in.Close() // read-only: nothing to flush
		<-done
	}
}

// openDir returns the directory name, opened with O_PATH and shared by
// device and inode, or nil if it cannot be opened. It takes w.mu itself.
func (w *fifoWaits) openDir(name string) *fifoDir {
	fd, err := ignoringEINTR(func() (int, error) {
		return unix.Open(name, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return nil // tries then take the whole path
	}
	var st unix.Stat_t
	if whileEINTR(func() error { return unix.Fstat(fd, &st) }) != nil {
		_ = unix.Close(fd) // O_PATH: nothing to flush
		return nil
	}
	id := [2]uint64{uint64(st.Dev), uint64(st.Ino)}
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.dirs[id]
	if d == nil {
		d = &fifoDir{id: id, fd: fd}
		w.dirs[id] = d
	} else {
		_ = unix.Close(fd) // the shared one serves
	}
	d.refs++
	return d
}

// releaseDir drops a reference to d, closing it with the last.
func (w *fifoWaits) releaseDir(d *fifoDir) {
	if d != nil {
		if d.refs--; d.refs == 0 {
			_ = unix.Close(d.fd) // O_PATH: nothing to flush
			delete(w.dirs, d.id)
		}
	}
}

// watch adds an inotify watch for the file at path for e, or leaves e
// without one.
func (w *fifoWaits) watch(e *fifoEntry, path string) {
	if w.in == nil {
		return
	}
	wd, err := unix.InotifyAddWatch(w.inFD, path, fifoWatchMask)
	if err != nil {
		return // ENOSPC (fs.inotify.max_user_watches) or a vanished path: the clock serves
	}
	wa := w.watches[int32(wd)]
	if wa == nil {
		wa = &fifoWatch{wd: int32(wd)}
		w.watches[wa.wd] = wa
	}
	wa.entries = append(wa.entries, e)
	e.watch = wa
}

// read reads events from the inotify instance in until in is closed.
func (w *fifoWaits) read(in *os.File, done chan struct{}) {
	defer close(done)
	// Watches are on FIFOs, not directories, so events carry no name;
	// room for many at once.
	buf := make([]byte, 64*unix.SizeofInotifyEvent)
	for {
		n, err := in.Read(buf)
		w.mu.Lock()
		if w.in != in {
			w.mu.Unlock()
			return // closed by stopIfIdle
		}
		if err != nil || n < unix.SizeofInotifyEvent {
			// Not expected: carry on without inotify, on the clock.
			w.lostInotify()
			w.mu.Unlock()
			_ = in.Close() // already failing
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			w.event(ev.Wd, ev.Mask)
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
		w.mu.Unlock()
	}
}

// lostInotify leaves every entry without a watch, for the clock to serve.
func (w *fifoWaits) lostInotify() {
	for _, e := range w.entries {
		e.watch, e.sure = nil, false
		w.clock(e)
		e.broadcast()
	}
	clear(w.watches)
	w.in, w.inFD = nil, -1
	w.schedule()
}

// event handles one inotify event.
func (w *fifoWaits) event(wd int32, mask uint32) {
	if mask&unix.IN_Q_OVERFLOW != 0 {
		// Events were lost: anything may have happened.
		for _, e := range w.entries {
			e.sure = false
			w.poke(e)
		}
		return
	}
	wa := w.watches[wd]
	if wa == nil {
		return // a watch removed since
	}
	if mask&(unix.IN_ATTRIB|unix.IN_MOVE_SELF|unix.IN_DELETE_SELF|unix.IN_IGNORED) != 0 {
		// Renamed, unlinked, replaced, or only chmod'ed: ask again.
		for _, e := range wa.entries {
			e.sure = mask&unix.IN_IGNORED == 0 && e.revalidate(false)
		}
	}
	if mask&unix.IN_IGNORED != 0 {
		// The kernel removed the watch: the inode is gone. The clock
		// serves its entries from now on.
		delete(w.watches, wd)
		for _, e := range wa.entries {
			e.watch = nil
			w.clock(e)
			e.broadcast()
		}
		w.schedule()
		return
	}
	if mask&unix.IN_OPEN != 0 {
		for _, e := range wa.entries {
			w.poke(e)
		}
	}
}

// poke has e's waiters look again: writers are tried, readers woken to
// probe.
func (w *fifoWaits) poke(e *fifoEntry) {
	if !e.key.writer {
		e.broadcast()
		return
	}
	if e.fd >= 0 || e.err != nil || e.dead {
		return
	}
	fd, err := e.open()
	switch {
	case err == nil:
		e.fd = fd
		e.gen++
	case errors.Is(err, unix.ENXIO):
		return
	default:
		e.err = err
		w.drop(e) // its waiters return; a later open starts afresh
	}
	e.broadcast()
}

// broadcast wakes e's waiters.
func (e *fifoEntry) broadcast() {
	close(e.wake)
	e.wake = make(chan struct{})
}

// open tries once to open e's name for writing. While the name is the
// watched FIFO itself (sure), that is one openat(2) with O_NOFOLLOW, which
// is all a failed try costs, and an fstat(2) on success; otherwise, as
// openNonblock, fstatat(2) first, so that nothing but a FIFO is opened.
func (e *fifoEntry) open() (int, error) {
	dir := unix.AT_FDCWD
	if e.dir != nil {
		dir = e.dir.fd
	}
	flags := unix.O_WRONLY | unix.O_NONBLOCK | unix.O_CLOEXEC | unix.O_NOCTTY
	if e.sure {
		flags |= unix.O_NOFOLLOW // a symlink put there since fails with ELOOP
	} else {
		var st unix.Stat_t
		if err := whileEINTR(func() error { return unix.Fstatat(dir, e.name, &st, 0) }); err != nil {
			return -1, &os.PathError{Op: "stat", Path: e.path, Err: err}
		}
		if err := checkFIFO(e.path, uint32(st.Mode)); err != nil {
			return -1, err
		}
	}
	fd, err := ignoringEINTR(func() (int, error) { return unix.Openat(dir, e.name, flags, 0) })
	if err == unix.ENXIO {
		return -1, err // the common answer, and no garbage for it
	}
	if err == unix.ELOOP && e.sure {
		e.sure = false
		return e.open()
	}
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: e.path, Err: err}
	}
	var st unix.Stat_t
	if err = whileEINTR(func() error { return unix.Fstat(fd, &st) }); err != nil {
		err = &os.PathError{Op: "fstat", Path: e.path, Err: err}
	} else {
		err = checkFIFO(e.path, uint32(st.Mode))
	}
	if err != nil {
		_ = unix.Close(fd) // opened only to be checked
		e.sure = false
		return -1, err
	}
	return fd, nil
}

// probe reports whether a writer has the FIFO read end fd open, has
// written to it, or has come and gone, without consuming anything.
func (w *fifoWaits) probe(fd int) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := ignoringEINTR(func() (int, error) {
		n, err := unix.Tee(fd, w.scratch[1], 1, unix.SPLICE_F_NONBLOCK)
		return int(n), err
	})
	switch {
	case err == unix.EAGAIN:
		return true, nil // empty, with a writer
	case err != nil:
		return false, os.NewSyscallError("tee", err)
	case n > 0:
		// Data; empty the scratch pipe for the next probe.
		var b [1]byte
		_, _ = ignoringEINTR(func() (int, error) { return unix.Read(w.scratch[0], b[:]) }) // holds the one byte tee copied
		return true, nil
	}
	// Empty, with no writer now: POLLHUP says one came and went.
	return ready(fd, unix.POLLIN), nil
}

// schedule starts the clock if an entry needs it and it is not running.
func (w *fifoWaits) schedule() {
	if w.timer != nil || len(w.clocked) == 0 {
		return
	}
	tick := min(max(time.Duration(len(w.clocked))*fifoTickPer, fifoTickMin), fifoTickMax)
	w.timer = time.AfterFunc(tick, w.round)
}

// clock puts e on the clock: a writer, which nothing else tells of a
// reader blocked in open(2), or a reader without a watch.
func (w *fifoWaits) clock(e *fifoEntry) {
	if e.clk < 0 {
		e.clk = len(w.clocked)
		w.clocked = append(w.clocked, e)
	}
}

// unclock takes e off the clock.
func (w *fifoWaits) unclock(e *fifoEntry) {
	if i := e.clk; i >= 0 {
		last := len(w.clocked) - 1
		w.clocked[i] = w.clocked[last]
		w.clocked[i].clk = i
		w.clocked[last] = nil
		w.clocked = w.clocked[:last]
		e.clk = -1
	}
}

// round is the clock's tick: it pokes every entry on the clock, in the
// same order every time, so that each is tried once per tick.
func (w *fifoWaits) round() {
	w.mu.Lock()
	defer w.mu.Unlock()
	// Backwards: dropping an entry moves the last one, already poked, into
	// its place, and new entries join at the end; so while the lock is let
	// go every fifoRoundBatch tries, for a cancel or an event to get in,
	// no entry is missed.
	for i := len(w.clocked) - 1; i >= 0; i-- {
		if i < len(w.clocked) {
			w.poke(w.clocked[i])
		}
		if i%fifoRoundBatch == 0 {
			w.mu.Unlock()
			w.mu.Lock()
		}
	}
	w.timer = nil
	w.schedule()
}
