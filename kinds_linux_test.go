package pipe_test

// Tests that transfers know each side by what the kernel says it is, not by
// its Go type, and wait the one right way for every kind of side.

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pipe2go/pipe"
)

// datagramPair returns a connected sender and its receiver on network
// ("udp" or "unixgram").
func datagramPair(t testing.TB, network string) (send, recv net.Conn) {
	t.Helper()
	var err error
	if network == "udp" {
		var r *net.UDPConn
		if r, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err == nil {
			recv = r
			send, err = net.DialUDP("udp", nil, r.LocalAddr().(*net.UDPAddr))
		}
	} else {
		addr := &net.UnixAddr{Name: filepath.Join(t.TempDir(), "dgram"), Net: "unixgram"}
		var r *net.UnixConn
		if r, err = net.ListenUnixgram("unixgram", addr); err == nil {
			recv = r
			send, err = net.DialUnix("unixgram", nil, addr)
		}
	}
	if recv != nil {
		t.Cleanup(func() { recv.Close() })
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { send.Close() })
	return send, recv
}

// TestCopyFromDatagramSocket: a datagram larger than the room left in the
// pipe arrives whole, an empty datagram is not the end, and the copy ends
// as io.Copy's does, at the socket's deadline.
func TestCopyFromDatagramSocket(t *testing.T) {
	for _, network := range []string{"udp", "unixgram"} {
		t.Run(network, func(t *testing.T) {
			send, recv := datagramPair(t, network)
			r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			filler := bytes.Repeat([]byte{'f'}, defaultCapacity(t)-os.Getpagesize())
			mustWrite(t, w, filler) // one page left
			big := bytes.Repeat([]byte{'x'}, 10000)
			for _, d := range [][]byte{big, {}, []byte("hello world")} {
				mustWrite(t, send, d)
			}
			if err := recv.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
				t.Fatal(err)
			}
			type result struct {
				n   int64
				err error
			}
			done := make(chan result, 1)
			go func() {
				n, err := pipe.Copy(w, recv)
				done <- result{n, err}
			}()
			waitBlocked(t, "pipe.Copy(") // on the full pipe
			got := collect(t, r)
			res := <-done
			w.Close()
			want := append(append(filler, big...), "hello world"...)
			if got := got(); !bytes.Equal(got, want) {
				t.Errorf("the pipe got %d bytes; want %d", len(got), len(want))
			}
			if res.n != 10011 || !errors.Is(res.err, os.ErrDeadlineExceeded) {
				t.Errorf("Copy = %d, %v; want 10011 and the socket's deadline, as io.Copy", res.n, res.err)
			}
		})
	}
}

// TestCopyIntoDatagramSocket: Copy sends what io.Copy sends, datagram by
// datagram, not the whole pipe as one datagram (EMSGSIZE).
func TestCopyIntoDatagramSocket(t *testing.T) {
	data := testData(t, 1<<20)
	for _, network := range []string{"udp", "unixgram"} {
		t.Run(network, func(t *testing.T) {
			send, recv := datagramPair(t, network)
			if err := recv.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			arrived := make(chan []byte, 1)
			go func() {
				var got []byte
				buf := make([]byte, 64<<10)
				for len(got) < len(data) {
					n, err := recv.Read(buf)
					if err != nil {
						break
					}
					if n > 32<<10 {
						got = append(got, "<datagram larger than io.Copy's buffer>"...)
					}
					got = append(got, buf[:n]...)
				}
				arrived <- got
			}()
			src := pipeSource(t, data)
			n, err := pipe.Copy(send, src)
			if n != int64(len(data)) || err != nil {
				t.Errorf("Copy = %d, %v; want %d, nil", n, err, len(data))
			}
			if network == "udp" {
				return // loopback UDP may drop what the receiver has no room for
			}
			if got := <-arrived; !bytes.Equal(got, data) {
				t.Errorf("the receiver got %d bytes; want %d in datagrams of at most 32 KiB", len(got), len(data))
			}
		})
	}
}

// urgentStream makes peer send 5,000 'a', one urgent byte, 5,000 'b', and
// its end of stream. read(2) delivers the 10,000 letters.
func urgentStream(t *testing.T, peer *net.TCPConn) []byte {
	t.Helper()
	a, b := bytes.Repeat([]byte{'a'}, 5000), bytes.Repeat([]byte{'b'}, 5000)
	mustWrite(t, peer, a)
	sendOOB(t, peer, "X")
	mustWrite(t, peer, b)
	if err := peer.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	return append(a, b...)
}

// socketFile returns c as an *os.File (its File method: a duplicate
// descriptor, non-blocking, in the poller) and closes c.
func socketFile(t testing.TB, c interface {
	File() (*os.File, error)
	Close() error
}) *os.File {
	t.Helper()
	f, err := c.File()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	t.Cleanup(func() { f.Close() })
	return f
}

// TestUrgentDataOnSocketFile: a TCP socket held as an *os.File is known as
// one by the kernel: Copy delivers what read(2) delivers past urgent data,
// and Splice says it cannot go on, rather than reporting end of file there.
func TestUrgentDataOnSocketFile(t *testing.T) {
	t.Run("Copy", func(t *testing.T) {
		peer, sock := tcpPair(t)
		f := socketFile(t, sock)
		want := urgentStream(t, peer)
		r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
		got := collect(t, r)
		n, err := pipe.Copy(w, f)
		w.Close()
		if n != int64(len(want)) || err != nil {
			t.Errorf("Copy = %d, %v; want %d, nil", n, err, len(want))
		}
		if got := got(); !bytes.Equal(got, want) {
			t.Errorf("the pipe got %d bytes; want %d", len(got), len(want))
		}
	})
	t.Run("Splice", func(t *testing.T) {
		peer, sock := tcpPair(t)
		f := socketFile(t, sock)
		urgentStream(t, peer)
		r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
		drainForever(t, r)
		var total int64
		for {
			n, err := pipe.Splice(w, f, 1<<20, 0)
			total += n
			if err != nil {
				if total != 5000 || !errors.Is(err, syscall.EAGAIN) || !strings.Contains(err.Error(), "urgent") {
					t.Errorf("Splice after %d bytes: %v; want an EAGAIN naming urgent data after 5000", total, err)
				}
				return
			}
			if n == 0 {
				t.Fatalf("Splice reported end of file after %d of 10000 bytes", total)
			}
		}
	})
}

// inPollerBlocking returns one end of a TCP connection as an *os.File in
// the runtime poller whose descriptor is blocking (File, then SetNonblock
// false), and the other end.
func inPollerBlocking(t testing.TB) (f *os.File, peer *net.TCPConn) {
	t.Helper()
	peer, sock := tcpPair(t)
	f = socketFile(t, sock)
	if err := pipe.SetNonblock(f, false); err != nil {
		t.Fatal(err)
	}
	return f, peer
}

// TestSpliceNonblockNeverWaits: with SPLICE_F_NONBLOCK, an empty source or
// a full destination gives EAGAIN at once, whatever the socket's own mode.
func TestSpliceNonblockNeverWaits(t *testing.T) {
	type side struct {
		name string
		open func(t *testing.T) (f *os.File, unblock func())
	}
	sides := []side{
		{"blocking", func(t *testing.T) (*os.File, func()) {
			a, b := blockingSocketpair(t)
			return a, func() { b.Close() }
		}},
		{"in-poller-blocking", func(t *testing.T) (*os.File, func()) {
			f, peer := inPollerBlocking(t)
			return f, func() { peer.Close() }
		}},
	}
	within := func(t *testing.T, what string, call func() error, unblock func(), want error) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- call() }()
		select {
		case err := <-done:
			if !errors.Is(err, want) {
				t.Errorf("%s with SPLICE_F_NONBLOCK: %v; want %v", what, err, want)
			}
		case <-time.After(time.Second):
			unblock()
			<-done
			t.Errorf("%s with SPLICE_F_NONBLOCK waited", what)
		}
	}
	for _, s := range sides {
		t.Run(s.name+"/empty-source", func(t *testing.T) {
			f, unblock := s.open(t)
			_, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			within(t, "Splice from an empty socket", func() error {
				return second(pipe.Splice(w, f, 100, pipe.SPLICE_F_NONBLOCK))
			}, unblock, syscall.EAGAIN)
		})
		t.Run(s.name+"/full-destination", func(t *testing.T) {
			f, unblock := s.open(t)
			fillSocket(t, f)
			r := pipeSource(t, []byte("data"))
			within(t, "Splice into a full socket", func() error {
				return second(pipe.Splice(f, r, 100, pipe.SPLICE_F_NONBLOCK))
			}, unblock, syscall.EINVAL) // refused at once: see TestCloseWhileSplicingIntoBlockingSocket
		})
	}
}

// TestCloseDoesNotWaitForSpliceOnBlockingSocket: a socket file in the
// poller whose descriptor is blocking is waited for in the poller, so its
// Close returns at once and wakes the Splice from it, or the Copy into it
// (which Splice refuses); so does Close of the pipe.
func TestCloseDoesNotWaitForSpliceOnBlockingSocket(t *testing.T) {
	for _, victim := range []string{"socket", "pipe"} {
		t.Run("source/close-"+victim, func(t *testing.T) {
			f, _ := inPollerBlocking(t)
			_, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			checkCloseDoesNotWait(t, "pipe.Splice(", func() error { return second(pipe.Splice(w, f, 100, 0)) }, f, w, victim)
		})
		t.Run("destination/close-"+victim, func(t *testing.T) {
			f, _ := inPollerBlocking(t)
			fillSocket(t, f)
			r := pipeSource(t, []byte("data"))
			checkCloseDoesNotWait(t, "pipe.Copy(", func() error { return second(pipe.Copy(f, r)) }, f, r, victim)
		})
	}
}

// checkCloseDoesNotWait starts call, which waits on sock, and closes sock
// or p, as victim says: Close must return within a second, and a Close of
// sock must also end the call.
func checkCloseDoesNotWait(t *testing.T, frame string, call func() error, sock, p *os.File, victim string) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	waitBlocked(t, frame)
	c := p
	if victim == "socket" {
		c = sock
	}
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(time.Second):
		t.Fatalf("Close of the %s waited for the %s", victim, frame)
	}
	if victim == "socket" {
		checkReturns(t, done, os.ErrClosed)
	} else {
		sock.Close() // the Splice waits on the socket: its Close ends it
		<-done
	}
}

// TestSpliceUnderContention: a blocking Splice between FIFOs that other
// processes read and write a byte at a time meets EAGAIN while both sides
// poll ready, again and again; that is a race, not a refusal, and the
// Splice must go on waiting rather than give up.
func TestSpliceUnderContention(t *testing.T) {
	needProgram(t, "dd")
	dir := t.TempDir()
	fifos := make([]*os.File, 2)
	for i := range fifos {
		path := filepath.Join(dir, "fifo"+string(rune('0'+i)))
		if err := pipe.Mkfifo(path, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0) // never waits for a peer on Linux
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		fifos[i] = f
		for _, args := range slices.Repeat([][]string{{"if=/dev/zero", "of=" + path}, {"if=" + path, "of=/dev/null"}}, 3) {
			cmd := exec.CommandContext(t.Context(), "dd", append(args, "bs=1", "status=none")...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		}
	}
	src, dst := fifos[0], fifos[1]
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
		if _, err := pipe.Splice(dst, src, 1, 0); err != nil {
			t.Fatalf("Splice between contended FIFOs: %v", err)
		}
	}
}

// TestSpliceRefusesMessageSockets: splice(2) would cut a datagram to what
// the pipe has room for, or send the pipe as one datagram; Splice refuses
// datagram and seqpacket sockets on either side.
func TestSpliceRefusesMessageSockets(t *testing.T) {
	socks := map[string]func(t *testing.T) syscall.Conn{
		"udp": func(t *testing.T) syscall.Conn {
			_, recv := datagramPair(t, "udp")
			recv.SetDeadline(time.Now().Add(time.Second)) // fail, not hang, if Splice waits
			return recv.(syscall.Conn)
		},
		"seqpacket-file": func(t *testing.T) syscall.Conn {
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
			if err != nil {
				t.Fatal(err)
			}
			a, b := os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
			t.Cleanup(func() { a.Close(); b.Close() })
			a.SetDeadline(time.Now().Add(time.Second)) // fail, not hang, if Splice waits
			return a
		},
	}
	for name, open := range socks {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
			mustWrite(t, w, []byte("data"))
			for what, err := range map[string]error{
				"from": second(pipe.Splice(w, s, 100, 0)),
				"into": second(pipe.Splice(s, r, 100, 0)),
			} {
				if !errors.Is(err, syscall.EINVAL) || !strings.Contains(err.Error(), "datagram") {
					t.Errorf("Splice %s a %s socket: %v; want EINVAL naming datagrams", what, name, err)
				}
			}
		})
	}
}

// TestClosedSteadySideIsNoEOF: a Splice from a regular file waits on the
// full destination pipe; the file is closed meanwhile. Once the pipe has
// room, the Splice reports the closed file, not end of file.
func TestClosedSteadySideIsNoEOF(t *testing.T) {
	src := fileWith(t, []byte("data"))
	r, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	fill(t, w)
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := pipe.Splice(w, src, 4, 0)
		done <- result{n, err}
	}()
	waitBlocked(t, "pipe.Splice(")
	src.Close()
	drainForever(t, r)
	select {
	case res := <-done:
		if !errors.Is(res.err, os.ErrClosed) {
			t.Errorf("Splice from a file closed while it waited = %d, %v; want os.ErrClosed", res.n, res.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Splice did not return once the destination had room")
	}
}

// TestSpliceNonblockAtUrgentData: with SPLICE_F_NONBLOCK, the stop at TCP
// urgent data is not a plain EAGAIN (polling would say ready, and a caller
// that polls and retries would spin): the error says why.
func TestSpliceNonblockAtUrgentData(t *testing.T) {
	peer, sock := tcpPair(t)
	sendUrgent(t, peer)
	_, w := newPipe(t, pipe.O_CLOEXEC|pipe.O_NONBLOCK)
	var total int64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		n, err := pipe.Splice(w, sock, 100, pipe.SPLICE_F_NONBLOCK)
		total += n
		switch {
		case err == nil:
			continue
		case errors.Is(err, syscall.EAGAIN) && strings.Contains(err.Error(), "urgent"):
			if total != 3 {
				t.Errorf("Splice stopped at urgent data after %d bytes; want 3", total)
			}
			return
		case errors.Is(err, syscall.EAGAIN) && total < 3:
			time.Sleep(time.Millisecond) // "abc" not there yet
			continue
		}
		t.Fatalf("Splice(SPLICE_F_NONBLOCK) after %d bytes: %v; want an EAGAIN naming urgent data", total, err)
	}
	t.Fatal("Splice(SPLICE_F_NONBLOCK) never reported the urgent data")
}
