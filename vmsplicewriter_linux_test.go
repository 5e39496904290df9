package pipe_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/pipe2go/pipe"
	"golang.org/x/sys/unix"
)

func init() {
	helpers["vmsplice-reader"] = helperRecordReader
	helpers["vmsplice-eperm"] = helperVmspliceEPERM
}

// records is an endless stream of numbered records: each is its sequence
// number (8 bytes), its length (4 bytes) and a payload of 1 to 3000 bytes
// cut from a fixed random table at a place the number chooses. Writer and
// reader each run one from the start; the reader compares every byte.
type records struct {
	seq uint64
	rec []byte // the current record
	off int    // how much of rec has been produced
}

var recordTable = func() []byte {
	b := make([]byte, 1<<16)
	rand.NewChaCha8([32]byte{'v', 'm', 's'}).Read(b)
	return b
}()

// next makes the following record current.
func (g *records) next() {
	g.seq++
	n := 1 + int(g.seq*7919%3000)
	start := int(g.seq * 104729 % uint64(len(recordTable)-3000))
	g.rec = binary.LittleEndian.AppendUint64(g.rec[:0], g.seq)
	g.rec = binary.LittleEndian.AppendUint32(g.rec, uint32(n))
	g.rec = append(g.rec, recordTable[start:start+n]...)
	g.off = 0
}

// fill fills b with the next bytes of the stream.
func (g *records) fill(b []byte) {
	for len(b) > 0 {
		if g.off == len(g.rec) {
			g.next()
		}
		k := copy(b, g.rec[g.off:])
		g.off += k
		b = b[k:]
	}
}

// Read makes records an io.Reader, for ReadFrom.
func (g *records) Read(b []byte) (int, error) {
	g.fill(b)
	return len(b), nil
}

// checker compares what arrives with the stream, record by record.
type checker struct {
	want  records
	buf   []byte
	total int64
}

// check compares b, the next bytes read, and describes the first
// difference.
func (c *checker) check(b []byte) error {
	for len(b) > 0 {
		if c.want.off == len(c.want.rec) {
			c.want.next()
		}
		rest := c.want.rec[c.want.off:]
		k := min(len(rest), len(b))
		if !bytes.Equal(b[:k], rest[:k]) {
			i := 0
			for b[i] == rest[i] {
				i++
			}
			return fmt.Errorf("byte %d of the stream, byte %d of record %d (%d bytes): got %#x, want %#x",
				c.total+int64(i), c.want.off+i, c.want.seq, len(c.want.rec), b[i], rest[i])
		}
		c.want.off += k
		c.total += int64(k)
		b = b[k:]
	}
	return nil
}

// consume reads r to EOF in chunks of chunk bytes, pausing pause after each
// read, checks every record and returns the bytes read.
func consume(r io.Reader, chunk int, pause time.Duration) (int64, error) {
	c := &checker{buf: make([]byte, chunk)}
	for {
		n, err := r.Read(c.buf)
		if cerr := c.check(c.buf[:n]); cerr != nil {
			return c.total, cerr
		}
		if err == io.EOF {
			return c.total, nil
		}
		if err != nil {
			return c.total, err
		}
		if pause > 0 {
			time.Sleep(pause) // a slow reader: the writer waits on a full pipe
		}
	}
}

// helperRecordReader is a reader in another process: it checks the records
// on descriptor 3 and prints how many bytes it read.
func helperRecordReader() int {
	chunk, _ := strconv.Atoi(os.Getenv("VMSPLICE_CHUNK"))
	pause, _ := time.ParseDuration(os.Getenv("VMSPLICE_PAUSE"))
	n, err := consume(os.NewFile(3, "|0"), max(chunk, 1), pause)
	if err != nil {
		fmt.Println("reader:", err)
		return 1
	}
	fmt.Println(n)
	return 0
}

// produce writes total bytes of records through v in the ways a user can:
// Buffer and Commit of whole and partial buffers, Write of odd sizes, and
// ReadFrom; it collects garbage every few steps, then closes v.
func produce(v *pipe.VmspliceWriter, total int64, seed uint64) error {
	g := &records{}
	rng := rand.New(rand.NewPCG(seed, 1))
	var sent int64
	for step := 0; sent < total; step++ {
		left := total - sent
		switch rng.IntN(4) {
		case 0, 1: // fill in place
			b := v.Buffer()
			n := len(b)
			if rng.IntN(3) == 0 {
				n = rng.IntN(n + 1)
			}
			n = int(min(int64(n), left))
			g.fill(b[:n])
			if err := v.Commit(n); err != nil {
				return fmt.Errorf("Commit(%d) after %d bytes: %w", n, sent, err)
			}
			sent += int64(n)
		case 2:
			p := make([]byte, min(int64(rng.IntN(3*len(v.Buffer())+2)), left))
			g.fill(p)
			n, err := v.Write(p)
			sent += int64(n)
			if err != nil || n != len(p) {
				return fmt.Errorf("Write(%d bytes) = %d, %v", len(p), n, err)
			}
		case 3:
			want := min(int64(rng.IntN(2*len(v.Buffer())+2)), left)
			n, err := v.ReadFrom(io.LimitReader(g, want))
			sent += n
			if err != nil || n != want {
				return fmt.Errorf("ReadFrom(%d bytes) = %d, %v", want, n, err)
			}
		}
		if step%8 == 0 {
			runtime.GC()
		}
	}
	return v.Close()
}

// reader is a way to consume the pipe: it returns the bytes read, checked.
type recordReader struct {
	name string
	read func(t *testing.T, r *os.File) <-chan readResult
}

type readResult struct {
	n   int64
	err error
}

func goReader(chunk int, pause time.Duration) func(t *testing.T, r *os.File) <-chan readResult {
	return func(t *testing.T, r *os.File) <-chan readResult {
		out := make(chan readResult, 1)
		go func() {
			n, err := consume(r, chunk, pause)
			r.Close()
			out <- readResult{n, err}
		}()
		return out
	}
}

// childReader reads in another process; r is closed in this one.
func childReader(chunk int, pause time.Duration) func(t *testing.T, r *os.File) <-chan readResult {
	return func(t *testing.T, r *os.File) <-chan readResult {
		cmd := helperCmd(t, "vmsplice-reader")
		cmd.Env = append(cmd.Env, "VMSPLICE_CHUNK="+strconv.Itoa(chunk), "VMSPLICE_PAUSE="+pause.String())
		cmd.ExtraFiles = []*os.File{r}
		var stdout strings.Builder
		cmd.Stdout = &stdout
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r.Close()
		out := make(chan readResult, 1)
		go func() {
			err := cmd.Wait()
			s := strings.TrimSpace(stdout.String())
			n, perr := strconv.ParseInt(s, 10, 64)
			if err == nil && perr != nil {
				err = perr
			}
			if err != nil {
				err = fmt.Errorf("child: %v: %s", err, s)
			}
			out <- readResult{n, err}
		}()
		return out
	}
}

// TestVmspliceWriterIntegrity sends numbered records through buffers of odd
// sizes and page multiples, with fresh pages and with reuse, to a fast
// reader, a slow one and one in another process, forcing garbage
// collections throughout and after Close, and checks every record.
func TestVmspliceWriterIntegrity(t *testing.T) {
	page := os.Getpagesize()
	sizes := []int{1000, 100_000, 1_000_000, page, 16 * page, 256 * page, 2 << 20}
	readers := []recordReader{
		{"fast", goReader(1<<20, 0)},
		{"slow", goReader(3000, 200*time.Microsecond)},
		{"process", childReader(64<<10, 0)},
	}
	for _, size := range sizes {
		for _, reuse := range []bool{false, true} {
			for _, rd := range readers {
				name := fmt.Sprintf("size=%d/reuse=%v/reader=%s", size, reuse, rd.name)
				t.Run(name, func(t *testing.T) {
					r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
					v, err := pipe.NewVmspliceWriter(w, size)
					if errors.Is(err, syscall.EPERM) {
						t.Skipf("NewVmspliceWriter(%d): %v (needs CAP_SYS_RESOURCE above pipe-max-size)", size, err)
					}
					if err != nil {
						t.Fatal(err)
					}
					v.SetReuse(reuse)
					total := int64(4 << 20)
					if rd.name == "slow" {
						total = 1 << 20
					}
					got := rd.read(t, r)
					if err := produce(v, total, uint64(size)); err != nil {
						w.Close()
						t.Fatalf("writer: %v; reader: %v", err, (<-got).err)
					}
					// The pipe may still hold pages of the unmapped buffers;
					// collect garbage and map new memory over the old
					// addresses before the reader is done.
					runtime.GC()
					scribble(t, w, size)
					w.Close()
					res := <-got
					if res.err != nil {
						t.Fatal(res.err)
					}
					if res.n != total {
						t.Fatalf("reader got %d bytes; want %d", res.n, total)
					}
				})
			}
		}
	}
}

// scribble maps a new writer's buffers, likely at the addresses a closed one
// used, and fills them with 0xff, without committing.
func scribble(t *testing.T, w *os.File, size int) {
	t.Helper()
	v, err := pipe.NewVmspliceWriter(w, size)
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		b := v.Buffer()
		for i := range b {
			b[i] = 0xff
		}
		v.Write(b[:0])
	}
	v.SetReuse(true)
	v.Close()
}

// TestVmspliceWriterOnwardReaders hands a buffer to a reader that splices
// or tees it on, out of the pipe, into a socket or another pipe, then goes
// round the writer's ring of buffers (their pages read out of the pipe by a
// copying reader) until the same buffer comes back, and fills it again: with
// fresh pages (the default) the onward reader gets what was committed
// first, although the writer recycled that memory; with SetReuse it gets
// what the buffer holds later, as SetReuse's doc warns.
func TestVmspliceWriterOnwardReaders(t *testing.T) {
	onward := map[string]func(t *testing.T, r *os.File) (move func() error, out io.Reader){
		"splice-to-unix-socket": func(t *testing.T, r *os.File) (func() error, io.Reader) {
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
			if err != nil {
				t.Fatal(err)
			}
			a, b := socketConn(t, fds[0]), socketConn(t, fds[1])
			return func() error { _, err := pipe.Splice(a, r, 1<<20, 0); return err }, b
		},
		"splice-to-tcp": func(t *testing.T, r *os.File) (func() error, io.Reader) {
			a, b := tcpPair(t)
			return func() error { _, err := pipe.Splice(a, r, 1<<20, 0); return err }, b
		},
		"splice-to-pipe": func(t *testing.T, r *os.File) (func() error, io.Reader) {
			r2, w2 := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			return func() error { _, err := pipe.Splice(w2, r, 1<<20, 0); return err }, r2
		},
		"tee-to-pipe": func(t *testing.T, r *os.File) (func() error, io.Reader) {
			r2, w2 := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			return func() error {
				if _, err := pipe.Tee(w2, r, 1<<20, 0); err != nil {
					return err
				}
				_, err := r.Read(make([]byte, 1<<20)) // consumes this pipe's copy
				return err
			}, r2
		},
	}
	// A page is a small commit, which the writer copies: the pipe holds
	// none of its pages, and reuse cannot corrupt it. 16 KiB is copied with
	// fresh pages (a new writer's first commits of 16 KiB are, see small)
	// and mapped with reuse. 64 KiB is mapped (with reuse
	// always; with fresh pages unless copying measured faster, and either
	// way is safe).
	page := os.Getpagesize()
	for name, setup := range onward {
		for _, c := range []struct {
			size   int
			reuse  bool
			intact bool
		}{
			{page, false, true}, {page, true, true},
			{16 << 10, false, true}, {16 << 10, true, false},
			{64 << 10, false, true}, {64 << 10, true, false},
		} {
			reuse := c.reuse
			t.Run(fmt.Sprintf("%s/size=%s/reuse=%v", name, sizeName(c.size), reuse), func(t *testing.T) {
				r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
				if _, err := pipe.SetCapacity(w, c.size); err != nil {
					t.Fatal(err)
				}
				v, err := pipe.NewVmspliceWriter(w, c.size)
				if err != nil {
					t.Fatal(err)
				}
				defer v.Close()
				v.SetReuse(reuse)
				move, out := setup(t, r)
				first := v.Buffer()
				want := bytes.Repeat([]byte{'a'}, len(first))
				copy(first, want)
				if err := v.Commit(len(first)); err != nil {
					t.Fatal(err)
				}
				if err := move(); err != nil {
					t.Fatal(err)
				}
				// Round the ring: each buffer is read out of the pipe, so
				// that the next commit goes in, until the first comes back.
				scratch := make([]byte, c.size)
				laps := 0
				for b := v.Buffer(); &b[0] != &first[0] || laps == 0; b = v.Buffer() {
					if laps++; laps > 1<<20 {
						t.Fatal("the first buffer never came back")
					}
					copy(b, bytes.Repeat([]byte{'x'}, len(b)))
					if err := v.Commit(len(b)); err != nil {
						t.Fatal(err)
					}
					if _, err := io.ReadFull(r, scratch[:len(b)]); err != nil {
						t.Fatal(err)
					}
				}
				b := v.Buffer()
				copy(b, bytes.Repeat([]byte{'z'}, len(b)))
				if err := v.Commit(len(b)); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, len(want))
				if _, err := io.ReadFull(out, got); err != nil {
					t.Fatal(err)
				}
				intact := bytes.Equal(got, want)
				switch {
				case c.intact && !intact:
					t.Errorf("buffer refilled after %d others: the onward reader got %q...; want %q...", laps, got[:1], want[:1])
				case !c.intact && intact:
					t.Errorf("reuse: the onward reader got the committed bytes; SetReuse's warning is stale for %s", name)
				}
			})
		}
	}
}

// socketConn wraps a socket descriptor as a net.Conn (see connOf).
func socketConn(t *testing.T, fd int) *net.UnixConn {
	t.Helper()
	return connOf(t, fd).(*net.UnixConn)
}

func TestVmspliceWriterBadFiles(t *testing.T) {
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	closedR, closedW := newPipe(t, pipe.O_CLOEXEC)
	closedR.Close()
	closedW.Close()
	regular, err := os.CreateTemp(t.TempDir(), "regular")
	if err != nil {
		t.Fatal(err)
	}
	defer regular.Close()
	for _, tc := range []struct {
		name string
		f    *os.File
		want error
	}{
		{"nil", nil, os.ErrInvalid},
		{"closed", closedW, os.ErrClosed},
		{"read-end", r, syscall.EBADF},
		{"regular-file", regular, syscall.EBADF},
	} {
		v, err := pipe.NewVmspliceWriter(tc.f, 4096)
		if !errors.Is(err, tc.want) || v != nil {
			t.Errorf("%s: NewVmspliceWriter = %v, %v; want nil, %v", tc.name, v, err, tc.want)
		}
	}
	for _, size := range []int{0, -1, math.MaxInt} {
		v, err := pipe.NewVmspliceWriter(w, size)
		if !errors.Is(err, syscall.EINVAL) || v != nil {
			t.Errorf("size %d: NewVmspliceWriter = %v, %v; want nil, EINVAL", size, v, err)
		}
	}
}

// TestVmspliceWriterAboveMaxUnprivileged asks, as an unprivileged user,
// for buffers larger than pipe-max-size, and then, past the per-user pipe
// page limit, for a pipe that may not grow at all.
func TestVmspliceWriterAboveMaxUnprivileged(t *testing.T) {
	out, err := helperCmd(t, "vmsplice-eperm").CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if reason, ok := strings.CutPrefix(string(out), "skip: "); ok {
		t.Skip(strings.TrimSpace(reason))
	}
	t.Logf("%s", out)
}

func helperVmspliceEPERM() int {
	if err := dropToNobody(); err != nil {
		fmt.Println("dropping privileges:", err)
		return 1
	}
	max, err := pipe.MaxCapacity()
	if err != nil {
		fmt.Println(err)
		return 1
	}
	r, w, err := pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_NONBLOCK)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer r.Close()
	defer w.Close()
	// Buffers of twice pipe-max-size: the pipe gets pipe-max-size and each
	// buffer goes in in parts.
	v, err := pipe.NewVmspliceWriter(w, 2*max)
	if err != nil {
		fmt.Printf("uid %d: NewVmspliceWriter(%d), above pipe-max-size %d: %v\n", os.Geteuid(), 2*max, max, err)
		return 1
	}
	if c, err := pipe.Capacity(w); c != max || err != nil {
		fmt.Printf("capacity %d, %v; want pipe-max-size %d\n", c, err, max)
		return 1
	}
	const total = 3
	done := make(chan error, 1)
	go func() {
		for range total {
			b := v.Buffer()
			if len(b) < 2*max {
				done <- fmt.Errorf("len(Buffer()) = %d; want at least %d", len(b), 2*max)
				return
			}
			if err := v.Commit(len(b)); err != nil {
				done <- err
				return
			}
		}
		done <- v.Close()
	}()
	n, err := io.CopyN(io.Discard, r, int64(total*2*max))
	if err != nil || n != int64(total*2*max) {
		fmt.Printf("read %d bytes, %v; want %d\n", n, err, total*2*max)
		return 1
	}
	if err := <-done; err != nil {
		fmt.Println("writer:", err)
		return 1
	}
	// Past pipe-user-pages-soft, new pipes of this user get two pages and
	// may not grow: the error says why and where the limit is.
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for range 20000 / 2 {
		r, w, err := pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_NONBLOCK)
		if err != nil {
			fmt.Println("skip: no pipe shrank before running out of descriptors (past pipe-user-pages-soft):", err)
			return 0
		}
		files = append(files, r, w)
		if c, _ := pipe.Capacity(w); c < 16*os.Getpagesize() {
			_, err := pipe.NewVmspliceWriter(w, 64<<10)
			if !errors.Is(err, syscall.EPERM) || !strings.Contains(err.Error(), "pipe-max-size") || !strings.Contains(err.Error(), "MaxCapacity") {
				fmt.Printf("NewVmspliceWriter on a pipe past the per-user limit (capacity %d): %v; want EPERM naming pipe-max-size and MaxCapacity\n", c, err)
				return 1
			}
			fmt.Println(err)
			return 0
		}
	}
	fmt.Println("skip: no pipe shrank: pipe-user-pages-soft is not in force")
	return 0
}

func TestVmspliceWriterMisuse(t *testing.T) {
	_, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	v, err := pipe.NewVmspliceWriter(w, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(v.Buffer()); got != os.Getpagesize() {
		t.Errorf("len(Buffer()) = %d; want one page, %d", got, os.Getpagesize())
	}
	for _, n := range []int{-1, len(v.Buffer()) + 1} {
		if err := v.Commit(n); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("Commit(%d) = %v; want EINVAL", n, err)
		}
	}
	v.Write([]byte("abc"))
	if got := len(v.Buffer()); got != os.Getpagesize()-3 {
		t.Errorf("after Write of 3 bytes, len(Buffer()) = %d; want %d", got, os.Getpagesize()-3)
	}
	if err := v.Commit(len(v.Buffer()) + 1); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("Commit past the free space = %v; want EINVAL", err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := pipe.Buffered(w); n != 3 || err != nil {
		t.Errorf("Close flushed %d bytes, %v; want 3", n, err)
	}
	if b := v.Buffer(); b != nil {
		t.Errorf("Buffer after Close = %d bytes; want nil", len(b))
	}
	for name, call := range map[string]func() error{
		"Commit":   func() error { return v.Commit(0) },
		"Write":    func() error { _, err := v.Write([]byte{1}); return err },
		"ReadFrom": func() error { _, err := v.ReadFrom(strings.NewReader("x")); return err },
		"Flush":    v.Flush,
		"Close":    v.Close,
	} {
		if err := call(); !errors.Is(err, os.ErrClosed) {
			t.Errorf("%s after Close = %v; want os.ErrClosed", name, err)
		}
	}
	for _, v := range []*pipe.VmspliceWriter{nil, new(pipe.VmspliceWriter)} {
		v.SetReuse(true)
		if b := v.Buffer(); b != nil {
			t.Errorf("%#v.Buffer() = %d bytes", v, len(b))
		}
		for name, call := range map[string]func() error{
			"Commit":   func() error { return v.Commit(0) },
			"Write":    func() error { _, err := v.Write([]byte{1}); return err },
			"ReadFrom": func() error { _, err := v.ReadFrom(strings.NewReader("x")); return err },
			"Flush":    v.Flush,
			"Close":    v.Close,
		} {
			if err := call(); !errors.Is(err, os.ErrInvalid) {
				t.Errorf("%s on %#v = %v; want os.ErrInvalid", name, v, err)
			}
		}
	}
}

// fullWriter returns a writer for a pipe that nobody reads, its buffer
// filled, and the pipe filled by a first Commit.
func fullWriter(t *testing.T, size int) (r, w *os.File, v *pipe.VmspliceWriter) {
	t.Helper()
	r, w = newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	v, err := pipe.NewVmspliceWriter(w, size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	fill(t, w)
	return r, w, v
}

// waitSizes are the buffer sizes the waiting tests use: a page, which a
// commit copies (write(2)), and the default pipe's capacity, which it maps.
var waitSizes = []int{4096, 64 << 10}

func TestVmspliceWriterCloseWakesCommit(t *testing.T) {
	for _, size := range waitSizes {
		t.Run(sizeName(size), func(t *testing.T) {
			_, w, v := fullWriter(t, size)
			checkCloseWakes(t, "VmspliceWriter).Commit(", func() error { return v.Commit(len(v.Buffer())) }, w)
			if err := v.Close(); !errors.Is(err, os.ErrClosed) {
				t.Errorf("Close = %v; want the sticky os.ErrClosed", err)
			}
		})
	}
}

func TestVmspliceWriterDeadline(t *testing.T) {
	for _, size := range waitSizes {
		t.Run(sizeName(size), func(t *testing.T) {
			_, w, v := fullWriter(t, size)
			w.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			if _, err := v.Write(make([]byte, 2*len(v.Buffer()))); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Write past the deadline = %v; want os.ErrDeadlineExceeded", err)
			}
			w.SetWriteDeadline(time.Time{})
			if err := v.Flush(); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("Flush after the error = %v; want it again", err)
			}
		})
	}
}

func TestVmspliceWriterNoReaderIsEPIPE(t *testing.T) {
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	v, err := pipe.NewVmspliceWriter(w, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	r.Close()
	if err := v.Commit(10); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("Commit with no reader = %v; want EPIPE", err)
	}
}

// TestVmspliceWriterWaitDoesNotSpin measures the CPU time of a Commit that
// waits half a second on a full pipe.
func TestVmspliceWriterWaitDoesNotSpin(t *testing.T) {
	for _, size := range waitSizes {
		t.Run(sizeName(size), func(t *testing.T) {
			r, _, v := fullWriter(t, size)
			done := make(chan error, 1)
			go func() { done <- v.Commit(len(v.Buffer())) }()
			waitBlocked(t, "VmspliceWriter).Commit(")
			checkIdle(t, "a Commit waiting on a full pipe", 250*time.Millisecond)
			go func() { _, _ = io.Copy(io.Discard, r) }() // ends when the test closes r
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestVmspliceWriterSmallCommitsCopy checks what a small commit, which the
// writer copies, does that a mapped one does not: on a blocking write end it
// waits for room as vmsplice does, the buffer may be refilled at once, and
// in a packet-mode pipe each commit is a packet.
func TestVmspliceWriterSmallCommitsCopy(t *testing.T) {
	t.Run("blocking", func(t *testing.T) {
		r, w := newPipe(t, pipe.O_CLOEXEC)
		v, err := pipe.NewVmspliceWriter(w, 4096)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		fill(t, w)
		b := v.Buffer()
		copy(b, "first")
		done := make(chan error, 1)
		go func() { done <- v.Commit(len("first")) }()
		select {
		case err := <-done:
			t.Fatalf("Commit into a full blocking pipe returned at once: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		// Drain what fill wrote, then the commit.
		c, err := pipe.Capacity(w)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(r, make([]byte, c)); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		// Refill the same buffer before anything reads the first commit.
		if b2 := v.Buffer(); &b2[0] == &b[0] {
			copy(b2, "XXXXX")
		}
		got := make([]byte, len("first"))
		if _, err := io.ReadFull(r, got); err != nil || string(got) != "first" {
			t.Errorf("read %q, %v; want the committed %q", got, err, "first")
		}
	})
	t.Run("after a mapped commit", func(t *testing.T) {
		// A pipe that had pages vmspliced into it refuses pwritev2 with
		// RWF_NOWAIT (EOPNOTSUPP) from then on; small commits still copy.
		r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
		v, err := pipe.NewVmspliceWriter(w, 64<<10)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		b := v.Buffer()
		if err := v.Commit(len(b)); err != nil {
			t.Fatal(err)
		}
		small := v.Buffer()
		if &small[0] == &b[0] {
			t.Fatal("a mapped commit did not move on to the next buffer")
		}
		if _, err := io.ReadFull(r, make([]byte, len(b))); err != nil { // room for the next
			t.Fatal(err)
		}
		copy(small, "small")
		if err := v.Commit(len("small")); err != nil {
			t.Fatal(err)
		}
		if again := v.Buffer(); &again[0] != &small[0] {
			t.Error("a small commit after a mapped one moved on to another buffer: it was mapped, not copied")
		}
		got := make([]byte, len("small"))
		if _, err := io.ReadFull(r, got); err != nil || string(got) != "small" {
			t.Errorf("read %q, %v; want %q", got, err, "small")
		}
	})
	t.Run("packet mode is a byte stream", func(t *testing.T) {
		// On a packet-mode pipe every commit is mapped, so none is a
		// packet: a packet would give a 1000-byte read the first 1000
		// bytes of a page and drop the rest, and so would a read that
		// runs from mapped pages into one.
		r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK|pipe.O_DIRECT)
		v, err := pipe.NewVmspliceWriter(w, 64<<10)
		if err != nil {
			t.Fatal(err)
		}
		var want []byte
		next := func(n int) []byte {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(len(want) + i)
			}
			want = append(want, b...)
			return b
		}
		got := make(chan []byte, 1)
		go func() {
			var all []byte
			buf := make([]byte, 1000)
			for {
				n, err := r.Read(buf)
				all = append(all, buf[:n]...)
				if err != nil {
					got <- all
					return
				}
			}
		}()
		for _, n := range []int{8 << 10, 64 << 10, 8 << 10, 100} {
			if err := v.Commit(copy(v.Buffer(), next(n))); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := v.Write(next(100 << 10)); err != nil { // a straight Write elsewhere
			t.Fatal(err)
		}
		if err := v.Close(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		if all := <-got; !bytes.Equal(all, want) {
			t.Errorf("the reader got %d bytes, %d in order; want the %d written", len(all), commonPrefix(all, want), len(want))
		}
	})
}

// TestVmspliceWriterCopiesUnder16KiB checks where copying ends: a commit
// under 16 KiB is copied; one of 16 KiB or more is mapped with reuse, and
// with fresh pages too (the way chooser starts by mapping), except that a
// fresh one of 16 KiB is copied while the writer copies smaller ones with
// pwritev2 and the pipe takes it (see TestVmspliceWriterFresh16KiBKeepsNowait). A copied commit leaves the
// writer on the same buffer, a mapped one moves it on to the next; each
// commit's bytes arrive whole. (Mapping 12 KiB commits with reuse was
// tried: alone they gained, but a writer of mostly 4 KiB commits with one
// of 12 KiB lost 29-36%, its copies turned from pwritev2 into F_GETFL and
// write(2); see BENCHMARKS.md.)
func TestVmspliceWriterCopiesUnder16KiB(t *testing.T) {
	nowait := pipesTakeNowait(t)
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	v, err := pipe.NewVmspliceWriter(w, 20<<10)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	sent := 0
	for _, c := range []struct {
		n             int
		reuse, mapped bool
	}{
		{12 << 10, false, false},
		{16<<10 - 1, false, false},
		{16 << 10, false, !nowait}, // copied after smaller copies with pwritev2, where pipes take it
		{12 << 10, true, false},
		{16<<10 - 1, true, false},
		{16 << 10, true, true},
		{12 << 10, true, false}, // copied after a mapped commit too (write(2))
		{16 << 10, false, true}, // the pipe refuses pwritev2 now: the chooser maps
		{16<<10 + 1, false, true},
		{12289, false, false},
	} {
		v.SetReuse(c.reuse)
		b := v.Buffer()
		for i := range c.n {
			b[i] = byte((sent + i) % 251)
		}
		if err := v.Commit(c.n); err != nil {
			t.Fatal(err)
		}
		next := v.Buffer()
		if next == nil {
			t.Fatal("Buffer is nil after a Commit that succeeded")
		}
		if mapped := &next[0] != &b[0]; mapped != c.mapped {
			t.Errorf("reuse %v, a commit of %d bytes: mapped %v, want %v", c.reuse, c.n, mapped, c.mapped)
		}
		got := make([]byte, c.n)
		if _, err := io.ReadFull(r, got); err != nil {
			t.Fatal(err)
		}
		for i, x := range got {
			if want := byte((sent + i) % 251); x != want {
				t.Fatalf("reuse %v, a commit of %d bytes: byte %d is %d; want %d", c.reuse, c.n, i, x, want)
			}
		}
		sent += c.n
	}
}

// TestVmspliceWriterSlowReaderDoesNotSpin writes buffer after buffer into
// a pipe of a buffer's size whose reader sleeps 300 µs before each buffer
// (time.Sleep: about a millisecond here), once with Commit and once with
// plain Write, which parks in the poller without spinning. Each Commit
// waits longer than a spin before a park may last, so the spins must die
// away: the process may use little more CPU than with Write. (This catches
// a spin that does not end in a park; a fixed 50 µs spin before each park
// cost about 1.5 times Write's CPU here, within the noise of this bound.)
// A page is a commit that is copied, 64 KiB one that is mapped.
func TestVmspliceWriterSlowReaderDoesNotSpin(t *testing.T) {
	for _, size := range waitSizes {
		t.Run(sizeName(size), func(t *testing.T) {
			pause := func() { time.Sleep(300 * time.Microsecond) }
			noMoreCPUThanWrite(t, "a slow reader", 3,
				func() time.Duration { return slowReaderCPU(t, "Write", size, pause) },
				func() time.Duration { return slowReaderCPU(t, "Commit", size, pause) })
		})
	}
}

// slowReaderCPU returns the CPU time the process uses in half a second
// while a goroutine writes buffers of size bytes into a pipe that holds one,
// with way "Write" (w.Write) or "Commit" (a VmspliceWriter with reuse), and
// the test reads a buffer after each pause.
func slowReaderCPU(t *testing.T, way string, size int, pause func()) time.Duration {
	t.Helper()
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	if _, err := pipe.SetCapacity(w, size); err != nil {
		t.Fatal(err)
	}
	write := func() error { _, err := w.Write(make([]byte, size)); return err }
	if way == "Commit" {
		v, err := pipe.NewVmspliceWriter(w, size)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		v.SetReuse(true)
		write = func() error { return v.Commit(len(v.Buffer())) }
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := write(); err != nil {
				done <- err
				return
			}
		}
	}()
	buf := make([]byte, size)
	read := func(d time.Duration) int {
		n := 0
		for end := time.Now().Add(d); time.Now().Before(end); n++ {
			pause()
			if _, err := io.ReadFull(r, buf); err != nil {
				t.Fatal(err)
			}
		}
		return n
	}
	read(100 * time.Millisecond) // let the spins die away
	start, before := time.Now(), cpuTime(t)
	n := read(500 * time.Millisecond)
	used, elapsed := cpuTime(t)-before, time.Since(start)
	t.Logf("%s of %s, %d slow reads: the process used %v of CPU in %v", way, sizeName(size), n, used, elapsed)
	close(stop)
	go func() { _, _ = io.Copy(io.Discard, r) }() // ends when the test closes r
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return used
}

// mapping returns the /proc/self/smaps entry of the mapping holding addr,
// or "" if none does.
func mapping(t *testing.T, addr uintptr) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Skip(err)
	}
	var cur []string
	found := ""
	for line := range strings.Lines(string(b)) {
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x ", &lo, &hi); n == 2 {
			if found != "" {
				break
			}
			cur = cur[:0]
			if lo <= addr && addr < hi {
				found = line
			}
		}
		if found != "" {
			cur = append(cur, line)
		}
	}
	return strings.Join(cur, "")
}

// TestVmspliceWriterHugePages checks that buffers of 1 MiB and more get
// transparent huge pages where the system gives them on madvise.
func TestVmspliceWriterHugePages(t *testing.T) {
	mode, _ := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if !bytes.Contains(mode, []byte("[madvise]")) && !bytes.Contains(mode, []byte("[always]")) {
		t.Skipf("transparent_hugepage/enabled is %q", bytes.TrimSpace(mode))
	}
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	v, err := pipe.NewVmspliceWriter(w, 1<<20)
	if err != nil {
		t.Skip(err)
	}
	defer v.Close()
	v.SetReuse(true)
	go io.Copy(io.Discard, r)
	for range 4 {
		b := v.Buffer()
		for i := range b {
			b[i] = byte(i)
		}
		if err := v.Commit(len(b)); err != nil {
			t.Fatal(err)
		}
	}
	b := v.Buffer()
	addr := uintptr(unsafe.Pointer(&b[0]))
	if addr%(1<<20) != 0 {
		t.Errorf("buffer at %#x is not aligned to 1 MiB", addr)
	}
	smaps := mapping(t, addr)
	if !strings.Contains(smaps, "hg") {
		t.Errorf("mapping not advised for huge pages (no hg in VmFlags):\n%s", smaps)
	}
	var kb int
	for line := range strings.Lines(smaps) {
		fmt.Sscanf(line, "AnonHugePages: %d kB", &kb)
		if strings.HasPrefix(line, "AnonHugePages:") {
			break
		}
	}
	if kb == 0 {
		t.Logf("no huge pages were given (memory fragmented?):\n%s", smaps)
	}
}

// TestVmspliceWriterDroppedIsUnmapped drops a writer without Close and
// waits for the garbage collector to unmap its buffers.
func TestVmspliceWriterDroppedIsUnmapped(t *testing.T) {
	_, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	addr := func() uintptr {
		v, err := pipe.NewVmspliceWriter(w, 4096)
		if err != nil {
			t.Fatal(err)
		}
		return uintptr(unsafe.Pointer(&v.Buffer()[0]))
	}()
	if mapping(t, addr) == "" {
		t.Fatalf("no mapping at %#x", addr)
	}
	for start := time.Now(); mapping(t, addr) != ""; time.Sleep(time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatal("the buffers of a dropped writer are still mapped")
		}
		runtime.GC()
	}
}

// TestVmspliceWriterIoCopy uses the writer as io.Copy's destination.
func TestVmspliceWriterIoCopy(t *testing.T) {
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	v, err := pipe.NewVmspliceWriter(w, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	got := goReader(64<<10, 0)(t, r)
	const total = 3 << 20
	if n, err := io.Copy(v, bufio.NewReader(io.LimitReader(&records{}, total))); n != total || err != nil {
		t.Fatalf("io.Copy = %d, %v", n, err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if res := <-got; res.n != total || res.err != nil {
		t.Fatalf("reader: %d bytes, %v; want %d", res.n, res.err, total)
	}
}

// TestVmspliceWriterCloseDuringCommit: Close from another goroutine while a
// Commit waits must not unmap the buffers the waiting vmsplice(2) points at.
func TestVmspliceWriterCloseDuringCommit(t *testing.T) {
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	v, err := pipe.NewVmspliceWriter(w, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, w) // the next Commit waits
	done := make(chan error, 1)
	go func() {
		b := v.Buffer()
		touch(b, 'x')
		done <- v.Commit(len(b))
	}()
	waitBlocked(t, "VmspliceWriter).Commit(")
	if err := v.Close(); !errors.Is(err, os.ErrInvalid) {
		t.Errorf("Close while a Commit waits: %v; want os.ErrInvalid", err)
	}
	go io.Copy(io.Discard, r) // let the Commit finish
	if err := <-done; err != nil {
		t.Errorf("the waiting Commit: %v", err)
	}
	if err := v.Close(); err != nil {
		t.Errorf("Close after the Commit: %v", err)
	}
}

// TestVmspliceWriterCloseRacesCalls runs Close against Commit, Write,
// Buffer and SetReuse from other goroutines, on new writers for a while: no
// call may panic or touch the buffers Close unmaps, and each returns nil, an
// error matching os.ErrInvalid (another call in progress) or os.ErrClosed.
func TestVmspliceWriterCloseRacesCalls(t *testing.T) {
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	drainForever(t, r)
	errs := make(chan error, 1)
	report := func(what string, err error) {
		if err != nil && !errors.Is(err, os.ErrInvalid) && !errors.Is(err, os.ErrClosed) {
			select {
			case errs <- fmt.Errorf("%s = %w", what, err):
			default:
			}
		}
	}
	iterations := 0
	for start := time.Now(); time.Since(start) < 200*time.Millisecond; iterations++ {
		v, err := pipe.NewVmspliceWriter(w, 4096)
		if err != nil {
			t.Fatal(err)
		}
		reuse := iterations%2 == 0
		// Commit(1) is always in range: Write and ReadFrom commit a
		// buffer as soon as it is full, so a byte of it is free.
		callers := map[string]func() error{
			"Commit(1)": func() error { return v.Commit(1) },
			"Write":     func() error { _, err := v.Write([]byte("abc")); return err },
			"ReadFrom":  func() error { _, err := v.ReadFrom(strings.NewReader("xyz")); return err },
			"Flush":     v.Flush,
			"Buffer+SetReuse": func() error {
				v.SetReuse(reuse)
				_ = v.Buffer() // nil while another call runs or after Close
				return nil
			},
		}
		stop := make(chan struct{})
		done := make(chan struct{}, len(callers))
		for name, call := range callers {
			go func() {
				defer func() { done <- struct{}{} }()
				for {
					select {
					case <-stop:
						return
					default:
					}
					report(name, call())
					runtime.Gosched() // give Close its chances
				}
			}()
		}
		runtime.Gosched() // let the callers start
		for {
			err := v.Close()
			report("Close", err)
			if !errors.Is(err, os.ErrInvalid) {
				break
			}
			runtime.Gosched()
		}
		for range 10 { // calls after Close
			runtime.Gosched()
		}
		close(stop)
		for range callers {
			<-done
		}
	}
	t.Logf("%d writers closed under concurrent calls", iterations)
	select {
	case err := <-errs:
		t.Error(err)
	default:
	}
}

// TestVmspliceWriterCloseWhileCancelled closes the write end to cancel a
// waiting Commit, as the docs recommend, while another goroutine keeps
// calling Close on the writer: each gets os.ErrInvalid until the Commit has
// returned, then Close gives the sticky error, and the race detector sees no
// unguarded access.
func TestVmspliceWriterCloseWhileCancelled(t *testing.T) {
	_, w, v := fullWriter(t, 64<<10)
	done := make(chan error, 1)
	go func() { done <- v.Commit(len(v.Buffer())) }()
	waitBlocked(t, "VmspliceWriter).Commit(")
	if err := v.Close(); !errors.Is(err, os.ErrInvalid) {
		t.Fatalf("Close while a Commit waits = %v; want os.ErrInvalid", err)
	}
	// Another goroutine calls Close in a loop, before, during and after
	// the cancellation; calls reports how many gave os.ErrInvalid.
	closed := make(chan error, 1)
	var calls atomic.Int64
	go func() {
		for {
			err := v.Close()
			if !errors.Is(err, os.ErrInvalid) {
				closed <- err
				return
			}
			calls.Add(1)
			runtime.Gosched()
		}
	}()
	for calls.Load() < 100 {
		select {
		case err := <-closed:
			t.Fatalf("Close while the Commit waits = %v; want os.ErrInvalid", err)
		default:
		}
		runtime.Gosched()
	}
	w.Close()
	checkReturns(t, done, os.ErrClosed)
	if err := <-closed; err != nil && !errors.Is(err, os.ErrClosed) {
		t.Errorf("Close after the cancelled Commit = %v; want nil or the sticky os.ErrClosed", err)
	}
	if err := v.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Close again = %v; want os.ErrClosed", err)
	}
}

// commonPrefix is the length of the prefix a and b share.
func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// TestVmspliceWriterBlockingEndStaysInThePoller makes the write end
// blocking after the writer was made (SetNonblock, as Fd or a process
// sharing the end would), fills the pipe, and has a copied commit or a
// straight Write wait: Close and a deadline must still end the wait, which
// they cannot if the copy sleeps in write(2). Once pages were mapped into
// the pipe it refuses pwritev2 with RWF_NOWAIT, so both states are tried.
func TestVmspliceWriterBlockingEndStaysInThePoller(t *testing.T) {
	for _, mapped := range []bool{false, true} {
		for _, way := range []string{"small commit", "Write"} {
			for _, end := range []string{"Close", "deadline"} {
				name := fmt.Sprintf("mapped=%v/%s/%s", mapped, way, end)
				t.Run(name, func(t *testing.T) {
					r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
					v, err := pipe.NewVmspliceWriter(w, 64<<10)
					if err != nil {
						t.Fatal(err)
					}
					defer v.Close()
					if mapped {
						if err := v.Commit(len(v.Buffer())); err != nil {
							t.Fatal(err)
						}
						if _, err := io.ReadFull(r, make([]byte, 64<<10)); err != nil {
							t.Fatal(err)
						}
					}
					if err := pipe.SetNonblock(w, false); err != nil {
						t.Fatal(err)
					}
					fill(t, w)
					done := make(chan error, 1)
					go func() {
						if way == "Write" {
							_, err := v.Write(make([]byte, 128<<10))
							done <- err
							return
						}
						copy(v.Buffer(), "small")
						done <- v.Commit(len("small"))
					}()
					select {
					case err := <-done:
						t.Fatalf("returned while the pipe was full: %v", err)
					case <-time.After(50 * time.Millisecond):
					}
					closed := make(chan error, 1)
					want := os.ErrDeadlineExceeded
					if end == "Close" {
						want = os.ErrClosed
						go func() { closed <- w.Close() }()
					} else if err := w.SetWriteDeadline(time.Now()); err != nil {
						t.Fatal(err)
					}
					select {
					case err := <-done:
						if !errors.Is(err, want) {
							t.Errorf("the wait ended with %v; want %v", err, want)
						}
					case <-time.After(5 * time.Second):
						go io.Copy(io.Discard, r) // let the stuck write finish
						t.Fatalf("%s did not end the wait within 5 s", end)
					}
					if end == "Close" {
						select {
						case <-closed:
						case <-time.After(5 * time.Second):
							go io.Copy(io.Discard, r)
							t.Fatal("w.Close did not return within 5 s")
						}
					}
				})
			}
		}
	}
}

// pipesTakeNowait reports whether a new pipe takes pwritev2 with RWF_NOWAIT
// (Linux 6.4 on, where nothing has been vmspliced or spliced into it).
func pipesTakeNowait(t testing.TB) bool {
	t.Helper()
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	defer r.Close()
	defer w.Close()
	rc, err := w.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var werr error
	if err := rc.Control(func(fd uintptr) {
		_, werr = unix.Pwritev2(int(fd), [][]byte{{1}}, -1, unix.RWF_NOWAIT)
	}); err != nil {
		t.Fatal(err)
	}
	return werr == nil
}
