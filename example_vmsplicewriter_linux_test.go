package pipe_test

import (
	"fmt"
	"io"
	"log"

	"github.com/pipe2go/pipe"
)

// ExampleVmspliceWriter fills the writer's buffer in place and commits it:
// the pipe takes the pages, not a copy, and the writer never writes to pages
// the pipe may still hold, whatever the reader does with them. (When every
// reader copies the bytes out, as this one does, SetReuse(true) is faster.)
func ExampleVmspliceWriter() {
	r, w, err := pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_NONBLOCK)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	v, err := pipe.NewVmspliceWriter(w, 64<<10)
	if err != nil {
		log.Fatal(err)
	}

	done := make(chan string)
	go func() {
		b, err := io.ReadAll(r)
		if err != nil {
			log.Fatal(err)
		}
		done <- fmt.Sprintf("read %d bytes: %q ... %q", len(b), b[:9], b[len(b)-9:])
	}()

	for i := range 3 {
		n := copy(v.Buffer(), fmt.Sprintf("record %d\n", i))
		if err := v.Commit(n); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Fprintf(v, "%d more bytes through Write\n", 28) // buffered until Close
	if err := v.Close(); err != nil {
		log.Fatal(err)
	}
	w.Close()
	fmt.Println(<-done)
	// Output: read 55 bytes: "record 0\n" ... "gh Write\n"
}
