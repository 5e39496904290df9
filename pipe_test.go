package pipe_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pipe2go/pipe"
)

// flagSets lists every combination of the three flags.
func flagSets() []int {
	var sets []int
	for i := 0; i < 8; i++ {
		f := 0
		if i&1 != 0 {
			f |= pipe.O_CLOEXEC
		}
		if i&2 != 0 {
			f |= pipe.O_NONBLOCK
		}
		if i&4 != 0 {
			f |= pipe.O_DIRECT
		}
		sets = append(sets, f)
	}
	return sets
}

func TestFlagsAreDistinctBits(t *testing.T) {
	flags := []int{pipe.O_CLOEXEC, pipe.O_NONBLOCK, pipe.O_DIRECT}
	seen := 0
	for _, f := range flags {
		if f <= 0 || f&(f-1) != 0 {
			t.Errorf("flag %#x is not a single bit", f)
		}
		if seen&f != 0 {
			t.Errorf("flag %#x is used twice", f)
		}
		seen |= f
	}
}

func TestRoundTrip(t *testing.T) {
	msg := bytes.Repeat([]byte("0123456789abcdef"), 1<<12) // 64 KiB: more than fits at once with O_DIRECT
	for _, flags := range []int{0, pipe.O_CLOEXEC, pipe.O_NONBLOCK, pipe.O_CLOEXEC | pipe.O_NONBLOCK} {
		t.Run(fmt.Sprintf("flags=%#x", flags), func(t *testing.T) {
			r, w := newPipe(t, flags)
			if r.Name() != "|0" || w.Name() != "|1" {
				t.Errorf("names = %q, %q; want |0, |1", r.Name(), w.Name())
			}
			errc := make(chan error, 1)
			go func() {
				_, err := w.Write(msg)
				if cerr := w.Close(); err == nil {
					err = cerr
				}
				errc <- err
			}()
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, msg) {
				t.Fatalf("read %d bytes that differ from the %d written", len(got), len(msg))
			}
			// The writer is gone: every further read is EOF.
			if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Fatalf("Read after writer closed = %d, %v; want 0, EOF", n, err)
			}
		})
	}
}

func TestUnknownFlagsAreEINVAL(t *testing.T) {
	for _, flags := range []int{-1, 1 << 30, pipe.O_CLOEXEC | 1<<29, int(^uint(0) >> 1)} {
		if flags&^(pipe.O_CLOEXEC|pipe.O_NONBLOCK|pipe.O_DIRECT) == 0 {
			continue // not unknown here
		}
		r, w, err := pipe.Pipe2(flags)
		if r != nil || w != nil || !errors.Is(err, syscall.EINVAL) {
			t.Errorf("Pipe2(%#x) = %v, %v, %v; want nil, nil, EINVAL", flags, r, w, err)
		}
		var se *os.SyscallError
		if !errors.As(err, &se) || se.Syscall != "pipe2" {
			t.Errorf("Pipe2(%#x) error %v is not an *os.SyscallError for pipe2", flags, err)
		}
	}
}

// TestUnsupportedFlags checks what each platform promises: a flag it cannot
// honour gives an error matching errors.ErrUnsupported that names the flag
// and the GOOS, and one it can does not.
func TestUnsupportedFlags(t *testing.T) {
	supported := map[string][]int{
		"linux":   {pipe.O_CLOEXEC, pipe.O_NONBLOCK, pipe.O_DIRECT},
		"android": {pipe.O_CLOEXEC, pipe.O_NONBLOCK, pipe.O_DIRECT},
		"windows": {pipe.O_CLOEXEC},
		"plan9":   {pipe.O_CLOEXEC},
		"js":      {},
		"wasip1":  {},
	}
	want, ok := supported[runtime.GOOS]
	if !ok { // the BSDs, Solaris, illumos, darwin, ios, aix
		want = []int{pipe.O_CLOEXEC, pipe.O_NONBLOCK}
	}
	for _, tc := range []struct {
		flag int
		name string
	}{{pipe.O_CLOEXEC, "O_CLOEXEC"}, {pipe.O_NONBLOCK, "O_NONBLOCK"}, {pipe.O_DIRECT, "O_DIRECT"}} {
		r, w, err := pipe.Pipe2(tc.flag)
		if err == nil {
			r.Close()
			w.Close()
		}
		isSupported := false
		for _, f := range want {
			isSupported = isSupported || f == tc.flag
		}
		switch {
		case isSupported && errors.Is(err, errors.ErrUnsupported):
			t.Errorf("Pipe2(%s) on %s: %v; want it supported", tc.name, runtime.GOOS, err)
		case !isSupported && !errors.Is(err, errors.ErrUnsupported):
			t.Errorf("Pipe2(%s) on %s: %v; want an error matching errors.ErrUnsupported", tc.name, runtime.GOOS, err)
		case !isSupported && len(want) > 0 && (!strings.Contains(err.Error(), tc.name) || !strings.Contains(err.Error(), runtime.GOOS)):
			t.Errorf("error %q does not name %s and %s", err, tc.name, runtime.GOOS)
		case !isSupported && (r != nil || w != nil):
			t.Errorf("Pipe2(%s) returned files with an error", tc.name)
		}
	}
}

// TestDeadlines checks that a read and a write past their deadlines fail
// with os.ErrDeadlineExceeded, the write after it wrote what fitted.
func TestDeadlines(t *testing.T) {
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)

	deadline := time.Now().Add(50 * time.Millisecond)
	if err := r.SetReadDeadline(deadline); err != nil {
		t.Fatal(err)
	}
	n, err := r.Read(make([]byte, 10))
	if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read on an empty pipe = %d, %v; want 0, os.ErrDeadlineExceeded", n, err)
	}
	if now := time.Now(); now.Before(deadline) {
		t.Errorf("Read returned %v before its deadline", deadline.Sub(now))
	}

	// A write larger than the pipe fills it, then waits for the deadline.
	// A deadline that passed before Write began (a busy machine) gives 0
	// bytes written: try again with a longer one.
	big := make([]byte, 8<<20)
	for d := 50 * time.Millisecond; ; d *= 4 {
		deadline := time.Now().Add(d)
		if err := w.SetWriteDeadline(deadline); err != nil {
			t.Fatal(err)
		}
		n, err = w.Write(big)
		if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) && d < 5*time.Second {
			t.Logf("Write with a deadline in %v wrote nothing: the deadline passed first, trying again", d)
			continue
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) || n <= 0 || n >= len(big) {
			t.Errorf("Write of %d bytes = %d, %v; want a partial write and os.ErrDeadlineExceeded", len(big), n, err)
		}
		if now := time.Now(); now.Before(deadline) {
			t.Errorf("Write returned %v before its deadline", deadline.Sub(now))
		}
		break
	}
}

func TestBlockingPipeHasNoDeadline(t *testing.T) {
	r, w := newPipe(t, pipe.O_CLOEXEC)
	for _, f := range []*os.File{r, w} {
		if err := f.SetDeadline(time.Now().Add(time.Second)); !errors.Is(err, os.ErrNoDeadline) {
			t.Errorf("%s.SetDeadline on a blocking pipe: %v; want os.ErrNoDeadline", f.Name(), err)
		}
	}
}

func TestCloseWakesBlockedRead(t *testing.T) {
	r, _ := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	checkCloseWakes(t, "os.(*File).Read(", func() error {
		_, err := r.Read(make([]byte, 1))
		return err
	}, r)
}

func TestCloseWakesBlockedWrite(t *testing.T) {
	_, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	checkCloseWakes(t, "os.(*File).Write(", func() error {
		_, err := w.Write(make([]byte, 8<<20)) // more than any pipe holds
		return err
	}, w)
}

func TestSetNonblockBadFiles(t *testing.T) {
	if err := pipe.SetNonblock(nil, false); err == nil {
		t.Error("SetNonblock(nil) succeeded")
	} else if !errors.Is(err, os.ErrInvalid) && !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("SetNonblock(nil) = %v; want os.ErrInvalid", err)
	}
	r, w, err := pipe.Pipe2(pipe.O_CLOEXEC)
	if err != nil {
		t.Skip(err)
	}
	w.Close()
	r.Close()
	if err := pipe.SetNonblock(r, false); !errors.Is(err, os.ErrClosed) && !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("SetNonblock on a closed file = %v; want os.ErrClosed", err)
	}
}
