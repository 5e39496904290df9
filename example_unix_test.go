//go:build unix

package pipe_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"time"

	"github.com/pipe2go/pipe"
	"golang.org/x/sys/unix"
)

func init() {
	helpers["child"] = child
}

// The first pipe: what is written to w is read from r, and closing w gives
// the reader EOF.
func Example() {
	r, w, err := pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_NONBLOCK)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()

	go func() {
		fmt.Fprintln(w, "hello, pipe")
		w.Close() // the reader sees EOF once the data is read
	}()

	data, err := io.ReadAll(r)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(data))
	// Output: hello, pipe
}

// A producer goroutine and a consumer joined by a pipe. The kernel holds what
// the producer writes (16 pages, 64 KiB with 4 KiB pages, by default on Linux)
// until the consumer reads it; a full pipe parks the producer, an empty one
// the consumer.
func ExamplePipe2() {
	r, w, err := pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_NONBLOCK)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()

	go func() {
		defer w.Close()
		for i := 1; i <= 3; i++ {
			fmt.Fprintf(w, "line %d\n", i)
		}
	}()

	lines := bufio.NewScanner(r)
	for lines.Scan() {
		fmt.Println("got", lines.Text())
	}
	if err := lines.Err(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// got line 1
	// got line 2
	// got line 3
}

// Buffered tells how much a reader would find waiting, without reading it.
func ExampleBuffered() {
	r, w, err := pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_NONBLOCK)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	defer w.Close()

	fmt.Fprint(w, "twelve bytes")
	n, err := pipe.Buffered(r)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("waiting:", n)

	r.Read(make([]byte, 6))
	n, err = pipe.Buffered(r)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("after reading 6:", n)
	// Output:
	// waiting: 12
	// after reading 6: 6
}

// With O_NONBLOCK the files use the runtime poller, so deadlines work. Without
// it, SetReadDeadline fails with os.ErrNoDeadline.
func ExamplePipe2_deadline() {
	r, w, err := pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_NONBLOCK)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	defer w.Close()

	r.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	_, err = r.Read(make([]byte, 1)) // nothing was written
	fmt.Println("timed out:", errors.Is(err, os.ErrDeadlineExceeded))

	br, bw, err := pipe.Pipe2(pipe.O_CLOEXEC) // blocking
	if err != nil {
		log.Fatal(err)
	}
	defer br.Close()
	defer bw.Close()
	err = br.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	fmt.Println("blocking pipe has no deadline:", errors.Is(err, os.ErrNoDeadline))
	// Output:
	// timed out: true
	// blocking pipe has no deadline: true
}

// A program written in C expects blocking standard input and output: on a
// non-blocking pipe its read(2) fails with EAGAIN where it should wait. The
// flag belongs to the pipe end, shared by every process holding it, so the
// end a child gets (exec.Cmd's Stdin, Stdout or ExtraFiles) must be
// switched to blocking first, as here, where the raw read(2) stands for
// the child's. The parent's own ends stay non-blocking and pollable.
// (Cmd's pipe methods do this for you.)
func ExampleSetNonblock() {
	r, w, err := pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_NONBLOCK)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	defer w.Close()

	// What a C program's read(2) gets from the end as it is.
	rc, err := r.SyscallConn()
	if err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 64)
	var n int
	var rerr error
	cRead := func(fd uintptr) { n, rerr = unix.Read(int(fd), buf) }
	if err := rc.Control(cRead); err != nil {
		log.Fatal(err)
	}
	fmt.Println("non-blocking and empty, EAGAIN:", errors.Is(rerr, unix.EAGAIN))

	// Made blocking, as a child needs it, read(2) waits for the data.
	if err := pipe.SetNonblock(r, false); err != nil {
		log.Fatal(err)
	}
	go fmt.Fprint(w, "worth the wait")
	if err := rc.Control(cRead); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("blocking: %q, %v\n", buf[:n], rerr)
	// Output:
	// non-blocking and empty, EAGAIN: true
	// blocking: "worth the wait", <nil>
}

// The program of Python's os.pipe2 documentation in Go: the parent writes
// to a pipe and a child process reads from it. The child here is this same
// program started again, told its role by an environment variable (the
// test's TestMain sends it to child below). Go has no bare fork: os/exec
// forks and execs in one step, and ExtraFiles hands the read end to the child
// as descriptor 3. O_CLOEXEC keeps every other child from inheriting the pipe;
// ExtraFiles clears it in this child only.
func ExamplePipe2_parentChild() {
	r, w, err := pipe.Pipe2(pipe.O_CLOEXEC)
	if err != nil {
		log.Fatal(err)
	}

	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, self) // killed if it hangs
	cmd.Env = append(os.Environ(), "PIPE_TEST_HELPER=child")
	cmd.ExtraFiles = []*os.File{r} // descriptor 3 in the child
	cmd.Stdout = os.Stdout
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	r.Close() // the child has the read end; the parent only writes

	fmt.Println("Parent process is writing")
	text := "Hello child process"
	if _, err := w.Write([]byte(text)); err != nil {
		log.Fatal(err)
	}
	fmt.Println("Written text:", text)
	w.Close() // the child reads until EOF

	if err := cmd.Wait(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// Parent process is writing
	// Written text: Hello child process
	// Child Process is reading
	// Read text: Hello child process
}

// child is the child process of ExamplePipe2_parentChild.
func child() int {
	r := os.NewFile(3, "|0")
	text, err := io.ReadAll(r) // until the parent closes its end
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("Child Process is reading")
	fmt.Println("Read text:", string(text))
	return 0
}
