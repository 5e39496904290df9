//go:build aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris

package pipe_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"time"

	"github.com/pipe2go/pipe"
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
// the producer writes (64 KiB by default on Linux) until the consumer reads it;
// a full pipe parks the producer, an empty one the consumer.
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

// Feeding a C program. cat, like most programs, fails with EAGAIN on a
// non-blocking stdin or stdout, so the ends it gets are switched to blocking
// first; the parent's ends stay non-blocking and pollable.
func ExampleSetNonblock() {
	inR, inW, err := pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_NONBLOCK)
	if err != nil {
		log.Fatal(err)
	}
	outR, outW, err := pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_NONBLOCK)
	if err != nil {
		log.Fatal(err)
	}
	defer outR.Close()

	// cat's ends: blocking, as C programs expect.
	if err := pipe.SetNonblock(inR, false); err != nil {
		log.Fatal(err)
	}
	if err := pipe.SetNonblock(outW, false); err != nil {
		log.Fatal(err)
	}

	cat := exec.Command("cat")
	cat.Stdin = inR
	cat.Stdout = outW
	if err := cat.Start(); err != nil {
		log.Fatal(err)
	}
	// cat has its own copies now. Closing ours lets outR reach EOF when cat exits.
	inR.Close()
	outW.Close()

	go func() {
		fmt.Fprintln(inW, "through cat and back")
		inW.Close() // cat sees EOF, writes what it has and exits
	}()
	out, err := io.ReadAll(outR)
	if err != nil {
		log.Fatal(err)
	}
	if err := cat.Wait(); err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(out))
	// Output: through cat and back
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
	cmd := exec.Command(self)
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
