package pipe_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/pipe2go/pipe"
)

const linux = true

func init() {
	helpers["eperm"] = helperEPERM
}

// rounded is the capacity the kernel gives for a request of n bytes: n
// rounded up to a power of two of pages, at least one page.
func rounded(n int) int {
	page := os.Getpagesize()
	pages := (n + page - 1) / page
	if pages <= 1 {
		return page
	}
	return page << bits.Len(uint(pages-1))
}

func TestCapacity(t *testing.T) {
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	// 16 pages, or fewer past pipe-user-pages-soft: whole pages, a power of
	// two of them, the same from either end.
	c, err := pipe.Capacity(r)
	if err != nil || c < os.Getpagesize() || c != rounded(c) {
		t.Errorf("Capacity(%s) of a new pipe = %d, %v; want a power of two of pages", r.Name(), c, err)
	}
	if n, err := pipe.Capacity(w); n != c || err != nil {
		t.Errorf("Capacity(%s) of a new pipe = %d, %v; want %d, as the read end says", w.Name(), n, err, c)
	}
	for _, tc := range []struct{ ask, want int }{{0, 4096}, {1, 4096}, {4097, 8192}, {65537, 131072}, {1 << 20, 1 << 20}, {4096, 4096}} {
		want := rounded(tc.ask)
		if os.Getpagesize() == 4096 && want != tc.want {
			t.Fatalf("rounded(%d) = %d; want %d", tc.ask, want, tc.want)
		}
		got, err := pipe.SetCapacity(w, tc.ask)
		if err != nil || got != want {
			t.Errorf("SetCapacity(%d) = %d, %v; want %d", tc.ask, got, err, want)
		}
		for _, f := range []*os.File{r, w} {
			if n, err := pipe.Capacity(f); n != want || err != nil {
				t.Errorf("after SetCapacity(%d): Capacity(%s) = %d, %v; want %d", tc.ask, f.Name(), n, err, want)
			}
		}
	}
}

// TestCapacityIsWhatFits writes exactly the capacity into a non-blocking
// pipe, then one byte more.
func TestCapacityIsWhatFits(t *testing.T) {
	for _, size := range []int{0, 65536, 1 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			_, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			c, err := pipe.Capacity(w)
			if size > 0 {
				c, err = pipe.SetCapacity(w, size)
			}
			if err != nil {
				t.Fatal(err)
			}
			if n, err := rawWrite(t, w, make([]byte, c)); n != c || err != nil {
				t.Fatalf("write of the capacity, %d bytes = %d, %v", c, n, err)
			}
			if n, err := rawWrite(t, w, []byte{1}); n != 0 || !errors.Is(err, syscall.EAGAIN) {
				t.Fatalf("one byte more = %d, %v; want EAGAIN", n, err)
			}
		})
	}
}

func TestShrinkBelowContentIsEBUSY(t *testing.T) {
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	data := make([]byte, 3*os.Getpagesize())
	for i := range data {
		data[i] = byte(i * 7)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	n, err := pipe.SetCapacity(w, 1)
	var se *os.SyscallError
	if !errors.Is(err, syscall.EBUSY) || !errors.As(err, &se) || se.Syscall != "fcntl" {
		t.Fatalf("SetCapacity below the content = %d, %v; want an fcntl EBUSY", n, err)
	}
	w.Close()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("data after the refused shrink: %d bytes, %v; want the %d written", len(got), err, len(data))
	}
}

// TestMaxCapacity checks that MaxCapacity is the limit an unprivileged
// process meets: SetCapacity of MaxCapacity bytes succeeds and one byte more
// fails with EPERM (checkEPERM). As root that runs in a helper that drops
// to nobody, which also drops CAP_SYS_RESOURCE; and with CAP_SYS_RESOURCE
// the limit does not apply.
func TestMaxCapacity(t *testing.T) {
	max, err := pipe.MaxCapacity()
	if err != nil {
		t.Fatal(err)
	}
	// The kernel rounds pipe-max-size as it rounds a capacity.
	if max < os.Getpagesize() || max != rounded(max) {
		t.Errorf("MaxCapacity() = %d; want a power of two of pages", max)
	}
	if os.Geteuid() != 0 {
		if msg := checkEPERM(); msg != "" {
			t.Fatal(msg)
		}
		return
	}
	out, err := helperCmd(t, "eperm").CombinedOutput()
	if err != nil {
		t.Fatalf("helper as nobody: %v\n%s", err, out)
	}
	if !hasCapSysResource(t) {
		t.Log("root without CAP_SYS_RESOURCE here: not checking the privileged side")
		return
	}
	_, w := newPipe(t, pipe.O_CLOEXEC)
	if n, err := pipe.SetCapacity(w, 2*max); n != 2*max || err != nil {
		t.Errorf("as root: SetCapacity(%d) = %d, %v", 2*max, n, err)
	}
}

// hasCapSysResource reports whether CAP_SYS_RESOURCE (capability 24) is in
// the effective set, which a container's root may lack.
func hasCapSysResource(t *testing.T) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if hex, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return caps&(1<<24) != 0
		}
	}
	t.Fatal("no CapEff in /proc/self/status")
	return false
}

func helperEPERM() int {
	if err := dropToNobody(); err != nil {
		fmt.Println(err)
		return 1
	}
	if msg := checkEPERM(); msg != "" {
		fmt.Println(msg)
		return 1
	}
	return 0
}

// checkEPERM returns what went wrong, if anything, when an unprivileged
// process sets a capacity of MaxCapacity bytes and one byte more.
func checkEPERM() string {
	max, err := pipe.MaxCapacity()
	if err != nil {
		return err.Error()
	}
	r, w, err := pipe.Pipe2(pipe.O_CLOEXEC)
	if err != nil {
		return err.Error()
	}
	defer r.Close()
	defer w.Close()
	if n, err := pipe.SetCapacity(w, max); n != max || err != nil {
		return fmt.Sprintf("SetCapacity(pipe-max-size %d) = %d, %v", max, n, err)
	}
	n, err := pipe.SetCapacity(w, max+1)
	var se *os.SyscallError
	if !errors.Is(err, syscall.EPERM) || !errors.As(err, &se) || se.Syscall != "fcntl" || n != 0 {
		return fmt.Sprintf("uid %d: SetCapacity(%d) = %d, %v; want 0 and an fcntl EPERM", os.Geteuid(), max+1, n, err)
	}
	if c, _ := pipe.Capacity(w); c != max {
		return fmt.Sprintf("capacity after the refusal = %d; want %d", c, max)
	}
	return ""
}

func TestCapacityBadInput(t *testing.T) {
	_, w := newPipe(t, pipe.O_CLOEXEC)
	c0, err := pipe.Capacity(w)
	if err != nil {
		t.Fatal(err)
	}
	sizes := []int{-1, -4096}
	if bits.UintSize == 64 {
		big := int64(1)<<31 + 1
		sizes = append(sizes, int(big), int(^uint(0)>>1))
	}
	for _, n := range sizes {
		if got, err := pipe.SetCapacity(w, n); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("SetCapacity(%d) = %d, %v; want EINVAL", n, got, err)
		}
	}
	if c, err := pipe.Capacity(w); c != c0 || err != nil {
		t.Errorf("capacity after refused sizes = %d, %v; want %d, unchanged", c, err, c0)
	}

	checkNoLeak(t, "not pipes", func() {
		for name, f := range badFiles(t) {
			if _, err := pipe.Capacity(f); !errors.Is(err, syscall.EBADF) {
				t.Errorf("Capacity(%s): %v; want EBADF", name, err)
			}
			if _, err := pipe.SetCapacity(f, 1<<20); !errors.Is(err, syscall.EBADF) {
				t.Errorf("SetCapacity(%s): %v; want EBADF", name, err)
			}
			f.Close()
		}
	})

	r2, w2, err := pipe.Pipe2(pipe.O_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	r2.Close()
	w2.Close()
	if _, err := pipe.Capacity(r2); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Capacity of a closed file: %v; want os.ErrClosed", err)
	}
	if _, err := pipe.SetCapacity(w2, 4096); !errors.Is(err, os.ErrClosed) {
		t.Errorf("SetCapacity of a closed file: %v; want os.ErrClosed", err)
	}
	if _, err := pipe.Capacity(nil); !errors.Is(err, os.ErrInvalid) {
		t.Errorf("Capacity(nil): %v; want os.ErrInvalid", err)
	}
	if _, err := pipe.SetCapacity(nil, 4096); !errors.Is(err, os.ErrInvalid) {
		t.Errorf("SetCapacity(nil): %v; want os.ErrInvalid", err)
	}
}

func TestPacketMode(t *testing.T) {
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_DIRECT)
	for _, p := range []string{"first", "second", "abcdef", "next"} {
		if _, err := w.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 64)
	for _, want := range []string{"first", "second"} {
		n, err := r.Read(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("Read = %q, %v; want packet %q", buf[:n], err, want)
		}
	}
	// A short read takes part of a packet and discards the rest.
	n, err := r.Read(buf[:3])
	if err != nil || string(buf[:n]) != "abc" {
		t.Fatalf("short Read = %q, %v; want %q", buf[:n], err, "abc")
	}
	n, err = r.Read(buf)
	if err != nil || string(buf[:n]) != "next" {
		t.Fatalf("Read after a short read = %q, %v; want %q (the rest of the packet discarded)", buf[:n], err, "next")
	}
}

// TestPacketsTakeSlots fills a default pipe with one-byte packets: each
// takes a page slot, so 16 fill a pipe of 16 pages.
func TestPacketsTakeSlots(t *testing.T) {
	_, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK|pipe.O_DIRECT)
	c, err := pipe.Capacity(w)
	if err != nil {
		t.Fatal(err)
	}
	slots := c / os.Getpagesize()
	for i := 0; i < slots; i++ {
		if n, err := rawWrite(t, w, []byte{byte(i)}); n != 1 || err != nil {
			t.Fatalf("packet %d: %d, %v", i, n, err)
		}
	}
	if n, err := rawWrite(t, w, []byte{0}); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("packet %d into a %d-byte pipe = %d, %v; want EAGAIN", slots, c, n, err)
	}
	if n, err := pipe.Buffered(w); n != slots || err != nil {
		t.Errorf("Buffered = %d, %v; want %d", n, err, slots)
	}
}

// TestSetCapacityErrorsReturnZero: fcntl(2) answers -1 with its errors.
func TestSetCapacityErrorsReturnZero(t *testing.T) {
	f := tempFile(t, "notapipe")
	r, _ := newPipe(t, pipe.O_CLOEXEC)
	// Beyond 2^31 on 64-bit platforms; as close as an int gets elsewhere.
	over, limit := int(min(math.MaxInt, int64(1)<<31+1)), int(min(math.MaxInt, int64(1)<<31))
	for name, call := range map[string]func() (int, error){
		"SetCapacity(file)":     func() (int, error) { return pipe.SetCapacity(f, 4096) },
		"SetCapacity(-1)":       func() (int, error) { return pipe.SetCapacity(r, -1) },
		"SetCapacity(1<<31+1)":  func() (int, error) { return pipe.SetCapacity(r, over) },
		"SetCapacity(nil)":      func() (int, error) { return pipe.SetCapacity(nil, 4096) },
		"Capacity(file)":        func() (int, error) { return pipe.Capacity(f) },
		"SetCapacity(too much)": func() (int, error) { return pipe.SetCapacity(r, limit) },
	} {
		n, err := call()
		if err == nil {
			continue // CAP_SYS_RESOURCE may allow "too much"
		}
		if n != 0 {
			t.Errorf("%s = %d, %v; want 0 with the error", name, n, err)
		}
	}
}
