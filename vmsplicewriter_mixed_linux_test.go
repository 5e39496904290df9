package pipe

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// streamByte is byte i of the test stream.
func streamByte(i int64) byte { return byte((uint64(i)*0x9E3779B97F4A7C15)>>29) ^ byte(i>>12) }

type streamGen struct{ pos int64 }

func (g *streamGen) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = streamByte(g.pos)
		g.pos++
	}
	return len(b), nil
}

// consumeOdd reads r in reads of the given sizes (cycled), checks each
// byte and returns the count.
func consumeOdd(r io.Reader, sizes []int, pause time.Duration) (int64, error) {
	var pos int64
	buf := make([]byte, 1<<20)
	for k := 0; ; k++ {
		n, err := r.Read(buf[:sizes[k%len(sizes)]])
		for i := 0; i < n; i++ {
			if buf[i] != streamByte(pos) {
				return pos, fmt.Errorf("byte %d: got %#x want %#x", pos, buf[i], streamByte(pos))
			}
			pos++
		}
		if err == io.EOF {
			return pos, nil
		}
		if err != nil {
			return pos, err
		}
		if pause > 0 && k%16 == 0 {
			time.Sleep(pause)
		}
	}
}

// TestVmspliceWriterMixedWays forces the way of every large commit at random
// (mapped or copied), mixes small and large commits, straight Writes,
// ReadFrom and Flush, toggles the write end's blocking mode between calls,
// scribbles over every fresh Buffer, and checks every byte at readers that
// read odd sizes, directly or through a tee'd/spliced second pipe.
func TestVmspliceWriterMixedWays(t *testing.T) {
	for _, reader := range []string{"odd", "splice-onward"} {
		for _, size := range []int{64 << 10, 100_000, 1 << 20} {
			t.Run(fmt.Sprintf("%s/%d", reader, size), func(t *testing.T) {
				mixedWays(t, reader, size, 24<<20)
			})
		}
	}
}

func mixedWays(t *testing.T, reader string, size int, total int64) {
	r, w, err := Pipe2(O_CLOEXEC | O_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	v, err := NewVmspliceWriter(w, size)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	done := make(chan error, 1)
	var got int64
	sizes := []int{1, 1000, 4095, 4097, 7777, 65537, 3, 300_000}
	go func() {
		src := io.Reader(r)
		if reader == "splice-onward" {
			r2, w2, err := Pipe2(O_CLOEXEC | O_NONBLOCK)
			if err != nil {
				done <- err
				return
			}
			defer r2.Close()
			SetCapacity(w2, 1<<20)
			go func() {
				for {
					// Splice moves the page references on: with fresh pages,
					// the pages must still hold what was committed.
					if n, err := Splice(w2, r, 1<<20, 0); err != nil || n == 0 {
						break
					}
				}
				w2.Close()
			}()
			src = r2
		}
		got, err = consumeOdd(src, sizes, 200*time.Microsecond)
		r.Close()
		done <- err
	}()
	g := &streamGen{}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(size), seed))
	dup, err := unix.Dup(int(fdInt(t, w)))
	if err != nil {
		t.Fatal(err)
	}
	scribble := func() {
		b := v.Buffer()
		for i := range b {
			b[i] = 0xEE
		}
	}
	for g.pos < total {
		left := total - g.pos
		if rng.IntN(5) == 0 {
			unix.SetNonblock(dup, rng.IntN(2) == 0)
		}
		v.way.copying, v.way.trying = rng.IntN(2) == 0, false
		switch rng.IntN(6) {
		case 0, 1:
			b := v.Buffer()
			n := len(b)
			switch rng.IntN(3) {
			case 0:
				n = rng.IntN(n + 1)
			case 1:
				n = min(n, rng.IntN(20<<10))
			}
			n = int(min(int64(n), left))
			g.Read(b[:n])
			if err := v.Commit(n); err != nil {
				t.Fatal(err)
			}
		case 2:
			p := make([]byte, min(int64(rng.IntN(3*size+2)), left))
			g.Read(p)
			if n, err := v.Write(p); err != nil || n != len(p) {
				t.Fatal(n, err)
			}
			for i := range p {
				p[i] = 0xDD // the caller may reuse p at once
			}
		case 3:
			want := min(int64(rng.IntN(2*size+2)), left)
			if n, err := v.ReadFrom(io.LimitReader(g, want)); err != nil || n != want {
				t.Fatal(n, err)
			}
		case 4:
			if err := v.Flush(); err != nil {
				t.Fatal(err)
			}
		case 5:
			p := make([]byte, min(int64(rng.IntN(5000)), left))
			g.Read(p)
			if n, err := v.Write(p); err != nil || n != len(p) {
				t.Fatal(n, err)
			}
		}
		scribble()
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	unix.Close(dup) // a write end too: the reader's EOF waits for it
	w.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		if got != total {
			t.Fatalf("got %d bytes, want %d", got, total)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("reader did not finish")
	}
}

func fdInt(t *testing.T, f *os.File) uintptr {
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd uintptr
	rc.Control(func(u uintptr) { fd = u })
	return fd
}

// TestVmspliceWriterSlowReaderCopiesDoNotSpin compares the CPU a writer uses against a
// reader taking a page every 300 µs: plain w.Write, copied commits after a
// mapped one (write(2)), and chosen copies of 64 KiB commits.
func TestVmspliceWriterSlowReaderCopiesDoNotSpin(t *testing.T) {
	cpu := func() time.Duration {
		var ru unix.Rusage
		unix.Getrusage(unix.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	run := func(way string) time.Duration {
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
		if err := v.Commit(64 << 10); err != nil { // mapped: write(2) from now on
			t.Fatal(err)
		}
		write := func() error { _, err := w.Write(make([]byte, 8<<10)); return err }
		switch way {
		case "small-commit":
			write = func() error { return v.Commit(8 << 10) }
		case "chosen-copy":
			write = func() error { v.way.copying, v.way.trying = true, false; return v.Commit(64 << 10) }
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
		buf := make([]byte, 4096)
		read := func(d time.Duration) {
			for end := time.Now().Add(d); time.Now().Before(end); {
				time.Sleep(300 * time.Microsecond)
				if _, err := io.ReadFull(r, buf); err != nil {
					t.Fatal(err)
				}
			}
		}
		read(100 * time.Millisecond)
		before, start := cpu(), time.Now()
		read(500 * time.Millisecond)
		used := cpu() - before
		t.Logf("%s: %v CPU in %v", way, used, time.Since(start))
		close(stop)
		go io.Copy(io.Discard, r)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return used
	}
	plain := run("w.Write")
	for _, way := range []string{"small-commit", "chosen-copy"} {
		if used := run(way); used > 2*plain+50*time.Millisecond {
			t.Errorf("%s used %v of CPU; w.Write %v", way, used, plain)
		}
	}
}
