package pipe_test

import (
	"fmt"
	"log"

	"github.com/pipe2go/pipe"
)

// Growing a pipe to 1 MiB, the default pipe-max-size, lets a writer get
// further ahead of its reader and moves large buffers in fewer system calls.
func ExampleSetCapacity() {
	r, w, err := pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_NONBLOCK)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	defer w.Close()

	before, err := pipe.Capacity(r)
	if err != nil {
		log.Fatal(err)
	}
	// The kernel rounds up to a power of two of pages and says what it chose.
	got, err := pipe.SetCapacity(w, 1000*1000)
	if err != nil {
		log.Fatal(err) // EPERM above pipe-max-size without CAP_SYS_RESOURCE
	}
	after, err := pipe.Capacity(r) // either end reports the same pipe
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("default:", before)
	fmt.Println("asked for 1000000, got:", got)
	fmt.Println("capacity now:", after)
	// Output:
	// default: 65536
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
