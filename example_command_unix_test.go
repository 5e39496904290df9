//go:build unix

package pipe_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/pipe2go/pipe"
)

// yes | head -n 3 | tr a-z A-Z, as a shell runs it: the bytes go from
// program to program through pipes between them, never through this
// program, and Output returns what the last one wrote. yes dies of SIGPIPE
// once head has its lines and exits, which, as in a shell, is no failure.
func ExamplePipeline() {
	p, err := pipe.NewPipeline(
		pipe.Command("yes", "pipe"),
		pipe.Command("head", "-n", "3"),
		pipe.Command("tr", "a-z", "A-Z"),
	)
	if err != nil {
		log.Fatal(err)
	}
	out, err := p.Output()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(out))
	// Output:
	// PIPE
	// PIPE
	// PIPE
}

// When a command cannot start, Start kills and reaps the ones it started
// and says which command failed, by position and program.
func ExamplePipeline_Start() {
	p, err := pipe.NewPipeline(
		pipe.Command("printf", "hello\n"),
		pipe.Command("gunzipp"),
		pipe.Command("wc", "-c"),
	)
	if err != nil {
		log.Fatal(err)
	}
	err = p.Start()
	fmt.Println(err)
	fmt.Println("not found:", errors.Is(err, exec.ErrNotFound))
	fmt.Println("Wait says it again:", p.Wait() == err)
	// Output:
	// pipe: command 2 of 3 (gunzipp): exec: "gunzipp": executable file not found in $PATH
	// not found: true
	// Wait says it again: true
}

// Wait reports the first command that failed, not the writers that died of
// SIGPIPE because of it, and wraps the command's *exec.ExitError.
func ExamplePipeline_Wait() {
	p, err := pipe.NewPipeline(
		pipe.Command("yes"),
		pipe.Command("sh", "-c", "read line; exit 3"),
		pipe.Command("cat"),
	)
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Start(); err != nil {
		log.Fatal(err)
	}
	err = p.Wait()
	fmt.Println(err)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		fmt.Println("exit code:", ee.ExitCode())
	}
	// Output:
	// pipe: command 2 of 3 (sh): exit status 3
	// exit code: 3
}

// Streaming through a pipeline: write its input and read its output, the
// two ends being this program's, in the runtime poller.
func ExamplePipeline_StdoutPipe() {
	p, err := pipe.NewPipeline(pipe.Command("gzip"), pipe.Command("gunzip"), pipe.Command("wc", "-c"))
	if err != nil {
		log.Fatal(err)
	}
	in, err := p.StdinPipe()
	if err != nil {
		log.Fatal(err)
	}
	out, err := p.StdoutPipe()
	if err != nil {
		log.Fatal(err)
	}
	defer out.Close()
	if err := p.Start(); err != nil {
		in.Close()
		log.Fatal(err)
	}
	go func() {
		fmt.Fprint(in, strings.Repeat("there and back again\n", 1000))
		in.Close() // gzip compresses to the end, then all three exit
	}()
	count, err := io.ReadAll(out)
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("bytes through gzip | gunzip:", strings.TrimSpace(string(count)))
	// Output: bytes through gzip | gunzip: 21000
}

// Feeding a program and reading what it writes back. The program's ends are
// blocking, as sort expects; this program's ends use the runtime poller, so
// a deadline bounds the wait for its output.
func ExampleCommand() {
	sort := pipe.Command("sort")
	in, err := sort.StdinPipe()
	if err != nil {
		log.Fatal(err)
	}
	out, err := sort.StdoutPipe()
	if err != nil {
		log.Fatal(err)
	}
	defer out.Close()
	if err := sort.Start(); err != nil {
		log.Fatal(err)
	}

	go func() {
		fmt.Fprintln(in, "pear\napple\nfig")
		in.Close() // sort sorts once its input ends
	}()
	out.SetReadDeadline(time.Now().Add(10 * time.Second))
	sorted, err := io.ReadAll(out)
	if err != nil {
		log.Fatal(err) // os.ErrDeadlineExceeded if sort took too long
	}
	if err := sort.Wait(); err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(sorted))
	// Output:
	// apple
	// fig
	// pear
}

// exec.Cmd's fields are set on the Cmd itself, as on an exec.Cmd: here Env,
// Dir and WaitDelay of a command killed if it outlives its context. Output,
// like Start, Run and CombinedOutput, is the Cmd's own.
func ExampleCommandContext() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := pipe.CommandContext(ctx, "sh", "-c", `echo "$GREETING from $(pwd)"`)
	c.Env = append(os.Environ(), "GREETING=hello")
	c.Dir = "/"
	c.WaitDelay = time.Second
	out, err := c.Output()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(out))
	// Output: hello from /
}

// Wait does not close the pipes: the output can be read after the program
// has exited, and the caller closes it.
func ExampleCmd_StdoutPipe() {
	echo := pipe.Command("sh", "-c", "echo done")
	out, err := echo.StdoutPipe()
	if err != nil {
		log.Fatal(err)
	}
	defer out.Close()
	if err := echo.Run(); err != nil { // short output fits in the pipe
		log.Fatal(err)
	}
	b, err := io.ReadAll(out)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(b))
	// Output: done
}

// A file goes into a program's standard input with Copy, which on Linux
// splices it from the file into the pipe without reading it into this
// program's memory (elsewhere it is io.Copy).
func ExampleCmd_StdinPipe() {
	f, err := os.CreateTemp("", "stdin-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.WriteString(strings.Repeat("0123456789abcdef", 1<<16)); err != nil {
		log.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		log.Fatal(err)
	}

	wc := pipe.Command("wc", "-c")
	in, err := wc.StdinPipe()
	if err != nil {
		log.Fatal(err)
	}
	out, err := wc.StdoutPipe()
	if err != nil {
		log.Fatal(err)
	}
	defer out.Close()
	if err := wc.Start(); err != nil {
		log.Fatal(err)
	}
	if _, err := pipe.Copy(in, f); err != nil {
		log.Fatal(err)
	}
	in.Close()
	count, err := io.ReadAll(out)
	if err != nil {
		log.Fatal(err)
	}
	if err := wc.Wait(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("wc counted", strings.TrimSpace(string(count)), "bytes")
	// Output: wc counted 1048576 bytes
}

// gzip | gunzip, as a shell would run it: the compressed bytes go from gzip
// to gunzip through a pipe between them and never through this program.
// Chain connects the commands; each is then started and waited for.
func ExampleChain() {
	gzip, gunzip := pipe.Command("gzip"), pipe.Command("gunzip")
	in, err := gzip.StdinPipe()
	if err != nil {
		log.Fatal(err)
	}
	if err := pipe.Chain(gzip, gunzip); err != nil {
		log.Fatal(err)
	}
	out, err := gunzip.StdoutPipe()
	if err != nil {
		log.Fatal(err)
	}
	defer out.Close()
	for _, c := range []*pipe.Cmd{gzip, gunzip} {
		if err := c.Start(); err != nil {
			log.Fatal(err)
		}
	}

	go func() {
		fmt.Fprintln(in, "there and back again")
		in.Close()
	}()
	b, err := io.ReadAll(out)
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range []*pipe.Cmd{gzip, gunzip} {
		if err := c.Wait(); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Print(string(b))
	// Output: there and back again
}

// An extra pipe reaches the program as descriptor 3, beside its standard
// streams: here the shell reports its status there, apart from its standard
// output (unset, so os/exec sends it to /dev/null).
func ExampleCmd_ExtraPipe() {
	sh := pipe.Command("sh", "-c", "echo noise; echo status: ok >&3")
	status, fd, err := sh.ExtraPipe(true) // the child writes, this program reads
	if err != nil {
		log.Fatal(err)
	}
	defer status.Close()
	fmt.Println("descriptor in the child:", fd)
	if err := sh.Start(); err != nil {
		log.Fatal(err)
	}
	b, err := io.ReadAll(status)
	if err != nil {
		log.Fatal(err)
	}
	if err := sh.Wait(); err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(b))
	// Output:
	// descriptor in the child: 3
	// status: ok
}
