//go:build unix

package pipe_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/pipe2go/pipe"
)

// A reader and a writer meet through a named pipe. Whichever comes first
// waits for the other without holding a thread; the reader returns once the
// writer's first bytes have arrived, and reads until the writer closes.
func ExampleOpenFIFO() {
	dir, err := os.MkdirTemp("", "fifo")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "fifo")
	if err := pipe.Mkfifo(path, 0o600); err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	go func() {
		w, err := pipe.OpenFIFO(ctx, path, os.O_WRONLY) // waits for the reader
		if err != nil {
			log.Fatal(err)
		}
		defer w.Close() // the reader then sees EOF
		fmt.Fprintln(w, "hello through a FIFO")
	}()

	r, err := pipe.OpenFIFO(ctx, path, os.O_RDONLY) // waits for the writer
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(data))
	// Output: hello through a FIFO
}

// A reader that waits at most 50 ms for a writer: the context bounds the
// wait, and the error matches its deadline. Nothing is left open.
func ExampleOpenFIFO_deadline() {
	dir, err := os.MkdirTemp("", "fifo")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "fifo")
	if err := pipe.Mkfifo(path, 0o600); err != nil {
		log.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	r, err := pipe.OpenFIFO(ctx, path, os.O_RDONLY) // no writer ever comes
	if err == nil {
		r.Close()
		log.Fatal("a writer came")
	}
	fmt.Println("waited 50 ms:", time.Since(start) >= 50*time.Millisecond)
	fmt.Println("deadline exceeded:", errors.Is(err, context.DeadlineExceeded))
	// Output:
	// waited 50 ms: true
	// deadline exceeded: true
}
