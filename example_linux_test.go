package pipe_test

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"os"
	"runtime"

	"github.com/pipe2go/pipe"
)

// Growing a pipe to 1 MiB, the default pipe-max-size, lets a writer get
// further ahead of its reader and moves large buffers in fewer system calls.
// The kernel rounds a request up to a power of two of pages and says what
// it chose: 1,000,000 bytes is 245 pages of 4 KiB, or 16 of 64 KiB, and
// either way 1 MiB.
func ExampleSetCapacity() {
	r, w, err := pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_NONBLOCK)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	defer w.Close()

	got, err := pipe.SetCapacity(w, 1000*1000)
	if err != nil {
		log.Fatal(err) // EPERM above pipe-max-size without CAP_SYS_RESOURCE
	}
	now, err := pipe.Capacity(r) // either end reports the same pipe
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("asked for 1000000, got:", got)
	fmt.Println("capacity now:", now)
	// Output:
	// asked for 1000000, got: 1048576
	// capacity now: 1048576
}

// Packet mode (O_DIRECT) keeps write boundaries: each write is one packet,
// and each read returns at most one. A read too short for its packet gets the
// start of it; the rest is discarded.
func ExamplePipe2_packetMode() {
	r, w, err := pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_DIRECT)
	if err != nil {
		log.Fatal(err) // EINVAL on kernels before 3.4
	}
	defer r.Close()
	defer w.Close()

	for _, msg := range []string{"ping", "pong", "a long message", "done"} {
		if _, err := w.Write([]byte(msg)); err != nil {
			log.Fatal(err)
		}
	}
	buf := make([]byte, 6)
	for i := 0; i < 4; i++ {
		n, err := r.Read(buf)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%q\n", buf[:n])
	}
	// Output:
	// "ping"
	// "pong"
	// "a long"
	// "done"
}

// Splice moves bytes between a pipe and another file inside the kernel: here
// from a regular file into a pipe, without passing through this program's
// memory.
func ExampleSplice() {
	f, err := os.CreateTemp("", "splice-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	f.WriteString("from a file, through a pipe\n")
	f.Seek(0, io.SeekStart)

	r, w, err := pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_NONBLOCK)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()

	n, err := pipe.Splice(w, f, 1<<20, 0) // up to 1 MiB, from f's current offset
	if err != nil {
		log.Fatal(err)
	}
	w.Close()
	fmt.Println("spliced", n, "bytes")

	data, err := io.ReadAll(r)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(data))
	// Output:
	// spliced 28 bytes
	// from a file, through a pipe
}

// Tee copies what waits in one pipe into another without consuming it: the
// same bytes can then be read from both, say one for a log and one for work.
func ExampleTee() {
	src, srcW, err := pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_NONBLOCK)
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	dup, dupW, err := pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_NONBLOCK)
	if err != nil {
		log.Fatal(err)
	}
	defer dup.Close()

	fmt.Fprint(srcW, "said once, read twice")
	srcW.Close()

	n, err := pipe.Tee(dupW, src, 1<<20, 0)
	if err != nil {
		log.Fatal(err)
	}
	dupW.Close()
	fmt.Println("teed", n, "bytes")

	original, _ := io.ReadAll(src) // still all there
	copied, _ := io.ReadAll(dup)
	fmt.Printf("src: %s\ndup: %s\n", original, copied)
	// Output:
	// teed 21 bytes
	// src: said once, read twice
	// dup: said once, read twice
}

// Vmsplice hands the kernel references to the program's pages instead of
// copying them, so a buffer must stay untouched, and reachable, until the
// reader has consumed it. Double buffering keeps that rule when each buffer
// is as large as the pipe's capacity, as SetCapacity returned it: the
// Vmsplice of one buffer cannot return before the reader has taken all of
// the other, which is then free to refill. (VmspliceWriter does all this
// for you.)
func ExampleVmsplice() {
	r, w, err := pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_NONBLOCK)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	// Ask for 100,000 bytes; the kernel rounds up to a power of two of
	// pages, and the buffers must match what it chose.
	size, err := pipe.SetCapacity(w, 100_000)
	if err != nil {
		log.Fatal(err)
	}

	done := make(chan struct{})
	go func() { // the reader: one record per buffer
		defer close(done)
		rec := make([]byte, size)
		for {
			if _, err := io.ReadFull(r, rec); err != nil {
				return // EOF once w is closed
			}
			fmt.Printf("%s\n", bytes.TrimRight(rec[:16], "\x00"))
		}
	}()

	bufs := [2][]byte{make([]byte, size), make([]byte, size)}
	for i := 0; i < 4; i++ {
		b := bufs[i%2] // free: the reader has consumed what it held
		clear(b)
		copy(b, fmt.Sprintf("record %d", i))
		if _, err := pipe.Vmsplice(w, [][]byte{b}, 0); err != nil {
			log.Fatal(err)
		}
	}
	w.Close()
	<-done
	runtime.KeepAlive(&bufs) // the pipe referenced them until the reader was done
	// Output:
	// record 0
	// record 1
	// record 2
	// record 3
}

// Copy is io.Copy that splices when one side is a pipe: here everything a
// producer writes into a pipe goes to a file without being read into this
// program.
func ExampleCopy() {
	r, w, err := pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_NONBLOCK)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	go func() {
		for i := 1; i <= 3; i++ {
			fmt.Fprintf(w, "line %d\n", i)
		}
		w.Close()
	}()

	f, err := os.CreateTemp("", "copy-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()

	n, err := pipe.Copy(f, r) // until the producer closes w
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("copied", n, "bytes")

	data, err := os.ReadFile(f.Name())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(data))
	// Output:
	// copied 21 bytes
	// line 1
	// line 2
	// line 3
}
