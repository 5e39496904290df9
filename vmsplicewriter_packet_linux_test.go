package pipe_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/pipe2go/pipe"
	"golang.org/x/sys/unix"
)

// TestVmspliceWriterPacketModeSetLater turns packet mode (O_DIRECT) on for
// the write end after the writer was made, which Linux allows with F_SETFL.
// The writer read the mode when it was made, but once it has mapped a
// commit it must not copy any more while the end is in packet mode: the
// copies would be packets, and a read that runs from mapped pages into a
// packet, or one shorter than the packet, drops the packet's rest. So a
// reader taking 1000 bytes at a time gets every byte.
func TestVmspliceWriterPacketModeSetLater(t *testing.T) {
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	v, err := pipe.NewVmspliceWriter(w, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	fd := fdOf(t, w)
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl|unix.O_DIRECT); err != nil {
		t.Skipf("F_SETFL O_DIRECT on a pipe: %v", err)
	}
	if fl2, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); fl2&unix.O_DIRECT == 0 {
		t.Skip("the kernel ignored O_DIRECT")
	}
	var want []byte
	got := make(chan []byte, 1)
	go func() {
		b, _ := readAllIn(r, 1000)
		got <- b
	}()
	for i, n := range []int{64 << 10, 8 << 10, 100, 64 << 10, 5000} {
		b := v.Buffer()[:n]
		for j := range b {
			b[j] = byte(i*31 + j)
		}
		want = append(want, b...)
		if err := v.Commit(n); err != nil {
			t.Fatal(err)
		}
	}
	tail := make([]byte, 200<<10) // Write's straight path
	for j := range tail {
		tail[j] = byte(j * 7)
	}
	want = append(want, tail...)
	if _, err := v.Write(tail); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if all := <-got; !bytes.Equal(all, want) {
		t.Errorf("O_DIRECT set after NewVmspliceWriter, then a mapped commit: the reader got %d bytes of the %d committed (%d in order)",
			len(all), len(want), commonPrefix(all, want))
	}
}

func readAllIn(r io.Reader, chunk int) ([]byte, error) {
	var all []byte
	buf := make([]byte, chunk)
	for {
		n, err := r.Read(buf)
		all = append(all, buf[:n]...)
		if err != nil {
			return all, err
		}
	}
}
