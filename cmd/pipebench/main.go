// Command pipebench prints the pipe facts of this machine and measures how
// fast each way of moving data through a pipe goes here.
//
// Usage:
//
//	go run ./cmd/pipebench [-duration 1.5s] [-buf 256KiB] [-rows regexp] [-json]
//
// It prints the kernel's pipe limits (PIPE_BUF, default and maximum capacity,
// per-user page limits, packet mode, transparent huge pages), then one row per
// way of moving data, in GB/s, each as soon as it is measured: Write/Read with
// the default capacity and with a 1 MiB pipe, Vmsplice + Splice,
// VmspliceWriter + Splice, Copy and io.Copy from a pipe to /dev/null and to
// a file, and Write/Read between two processes. Each row says its speed-up over plain Write/Read. Every transfer
// checks that the bytes read equal the bytes written.
//
// With -json it prints the facts and rows as one JSON document instead. On
// systems without some facility it runs the rows it can and lists the ones it
// skipped, with the reason.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/pipe2go/pipe"
)

// childEnv tells a re-run pipebench to be the reader of the two-process row.
const childEnv = "PIPEBENCH_CHILD"

func main() {
	if os.Getenv(childEnv) == "reader" {
		os.Exit(childReader())
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Facts are the machine's pipe facts. A fact that could not be read holds
// its error text.
type Facts struct {
	OS              string `json:"os"`
	Kernel          string `json:"kernel"`
	PipeBuf         int    `json:"pipe_buf"`
	DefaultCapacity string `json:"default_capacity"`
	PipeMaxSize     string `json:"pipe_max_size"`
	UserPagesSoft   string `json:"pipe_user_pages_soft"`
	UserPagesHard   string `json:"pipe_user_pages_hard"`
	PacketMode      string `json:"packet_mode"`
	HugePages       string `json:"transparent_hugepage"`
}

// Row is one measured way of moving data.
type Row struct {
	Name    string  `json:"name"`
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	GBps    float64 `json:"gb_per_s"`
	Speedup float64 `json:"speedup_vs_write_read,omitempty"`
}

// Skipped is a row this system cannot run.
type Skipped struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// Report is what -json prints.
type Report struct {
	Facts   Facts     `json:"facts"`
	BufSize int       `json:"buf_bytes"`
	PerRow  string    `json:"duration_per_row"`
	Rows    []Row     `json:"rows"`
	Skipped []Skipped `json:"skipped,omitempty"`
}

// mover moves data for about d with buffers of size bytes and returns how
// many bytes arrived, after checking that they are all that was sent.
type mover func(d time.Duration, size int) (int64, error)

type rowSpec struct {
	name string
	move mover
}

func rows() []rowSpec {
	return []rowSpec{
		{"write/read, default capacity", writeRead(0)},
		{"write/read, 1 MiB pipe", writeRead(1 << 20)},
		{"vmsplice + splice to /dev/null", vmspliceSplice},
		{"VmspliceWriter reuse, /dev/null", vmspliceWriter},
		{"Copy pipe -> /dev/null", copyTo(pipe.Copy, devNullDst)},
		{"io.Copy pipe -> /dev/null", copyTo(io.Copy, devNullDst)},
		{"Copy pipe -> file", copyTo(pipe.Copy, tempFileDst)},
		{"io.Copy pipe -> file", copyTo(io.Copy, tempFileDst)},
		{"write/read, two processes", twoProcesses},
	}
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pipebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 1500*time.Millisecond, "how long to measure each row")
	bufFlag := fs.String("buf", "256KiB", "buffer size for each write and read (bytes, or with KiB or MiB)")
	filter := fs.String("rows", "", "run only the rows whose name matches this regular expression")
	asJSON := fs.Bool("json", false, "print the facts and rows as one JSON document")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: pipebench [flags]\n\nMeasures ways of moving data through pipes on this machine.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	bad := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "pipebench: "+format+"\n", a...)
		fs.Usage()
		return 2
	}
	if fs.NArg() > 0 {
		return bad("unexpected arguments: %q", fs.Args())
	}
	if *duration <= 0 {
		return bad("-duration must be positive, not %v", *duration)
	}
	size, err := parseSize(*bufFlag)
	if err != nil {
		return bad("-buf: %v", err)
	}
	match, err := regexp.Compile(*filter)
	if err != nil {
		return bad("-rows: %v", err)
	}

	rep := Report{Facts: facts(), BufSize: size, PerRow: duration.String()}
	if !*asJSON {
		printFacts(stdout, rep.Facts)
		fmt.Fprintf(stdout, "\n%-32s %10s %9s   (%s buffers, %v a row)\n", "way", "GB/s", "speed-up", sizeName(size), *duration)
	}
	var base float64 // GB/s of the baseline row, once measured
	baseline := rows()[0].name
	for _, spec := range rows() {
		if !match.MatchString(spec.name) {
			continue
		}
		start := time.Now()
		n, err := spec.move(*duration, size)
		secs := time.Since(start).Seconds()
		if errors.Is(err, errors.ErrUnsupported) {
			rep.Skipped = append(rep.Skipped, Skipped{spec.name, err.Error()})
			if !*asJSON {
				fmt.Fprintf(stdout, "%-32s %10s   skipped: %v\n", spec.name, "-", err)
			}
			continue
		}
		if err != nil {
			fmt.Fprintf(stderr, "pipebench: %s: %v\n", spec.name, err)
			return 1
		}
		row := Row{Name: spec.name, Bytes: n, Seconds: secs, GBps: float64(n) / secs / 1e9}
		if spec.name == baseline {
			base = row.GBps
		}
		if base > 0 {
			row.Speedup = row.GBps / base
		}
		rep.Rows = append(rep.Rows, row)
		if !*asJSON {
			speedup := "-"
			if row.Speedup > 0 {
				speedup = fmt.Sprintf("%.2fx", row.Speedup)
			}
			fmt.Fprintf(stdout, "%-32s %10.2f %9s\n", row.Name, row.GBps, speedup)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stderr, "pipebench:", err)
			return 1
		}
	}
	return 0
}

// parseSize reads "65536", "64KiB" or "1MiB".
func parseSize(s string) (int, error) {
	mult := 1
	num := s
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"K", 1 << 10}, {"M", 1 << 20}} {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 || n > (1<<30)/mult {
		return 0, fmt.Errorf("%q is not a size from 1 byte to 1GiB", s)
	}
	return n * mult, nil
}

func sizeName(n int) string {
	switch {
	case n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

func facts() Facts {
	f := Facts{
		OS:            runtime.GOOS + "/" + runtime.GOARCH,
		Kernel:        readFact("/proc/sys/kernel/osrelease"),
		PipeBuf:       pipe.PIPE_BUF,
		PipeMaxSize:   readFact("/proc/sys/fs/pipe-max-size"),
		UserPagesSoft: readFact("/proc/sys/fs/pipe-user-pages-soft"),
		UserPagesHard: readFact("/proc/sys/fs/pipe-user-pages-hard"),
		HugePages:     thpMode(),
	}
	if r, w, err := pipe.Pipe2(pipe.O_CLOEXEC); err != nil {
		f.DefaultCapacity = err.Error()
	} else {
		if c, err := pipe.Capacity(r); err != nil {
			f.DefaultCapacity = err.Error()
		} else {
			f.DefaultCapacity = strconv.Itoa(c)
		}
		r.Close()
		w.Close()
	}
	if r, w, err := pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_DIRECT); err != nil {
		f.PacketMode = "no: " + err.Error()
	} else {
		f.PacketMode = "yes"
		r.Close()
		w.Close()
	}
	return f
}

// readFact returns a /proc or /sys value, or why it could not be read.
func readFact(name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return strings.TrimSpace(string(b))
}

// thpMode returns the bracketed choice of the transparent huge page setting.
func thpMode() string {
	s := readFact("/sys/kernel/mm/transparent_hugepage/enabled")
	if i, j := strings.Index(s, "["), strings.Index(s, "]"); i >= 0 && j > i {
		return s[i+1 : j]
	}
	return s
}

func printFacts(w io.Writer, f Facts) {
	fmt.Fprintf(w, "os                     %s\n", f.OS)
	fmt.Fprintf(w, "kernel                 %s\n", f.Kernel)
	fmt.Fprintf(w, "PIPE_BUF               %d bytes\n", f.PipeBuf)
	fmt.Fprintf(w, "default capacity       %s\n", withUnit(f.DefaultCapacity, "bytes"))
	fmt.Fprintf(w, "pipe-max-size          %s\n", withUnit(f.PipeMaxSize, "bytes (largest capacity without CAP_SYS_RESOURCE)"))
	fmt.Fprintf(w, "pipe-user-pages-soft   %s\n", withUnit(f.UserPagesSoft, "pages (0: no limit)"))
	fmt.Fprintf(w, "pipe-user-pages-hard   %s\n", withUnit(f.UserPagesHard, "pages (0: no limit)"))
	fmt.Fprintf(w, "packet mode (O_DIRECT) %s\n", f.PacketMode)
	fmt.Fprintf(w, "transparent hugepages  %s\n", f.HugePages)
}

func withUnit(v, unit string) string {
	if _, err := strconv.Atoi(v); err == nil {
		return v + " " + unit
	}
	return v
}

// newPipe makes a pipe for the Go-side rows: O_NONBLOCK, so the runtime
// poller does the waiting.
func newPipe() (r, w *os.File, err error) {
	return pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_NONBLOCK)
}

// pump writes buf to w until d has passed, then closes w, and reports what
// it wrote. write is the way one buffer goes in.
func pump(w *os.File, buf []byte, d time.Duration, write func(*os.File, []byte) (int, error)) <-chan result {
	out := make(chan result, 1)
	go func() {
		var total int64
		var err error
		for stop := time.Now().Add(d); time.Now().Before(stop); {
			var n int
			n, err = write(w, buf)
			total += int64(n)
			if err != nil {
				break
			}
		}
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		out <- result{total, err}
	}()
	return out
}

type result struct {
	n   int64
	err error
}

// settle waits for the writer and compares its count with the reader's.
func settle(written <-chan result, read int64, readErr error) (int64, error) {
	wr := <-written
	if wr.err != nil {
		return 0, fmt.Errorf("writer: %w", wr.err)
	}
	if readErr != nil {
		return 0, fmt.Errorf("reader: %w", readErr)
	}
	if read != wr.n {
		return 0, fmt.Errorf("read %d bytes but wrote %d", read, wr.n)
	}
	return read, nil
}

func fileWrite(w *os.File, b []byte) (int, error) { return w.Write(b) }

func writeRead(capacity int) mover {
	return func(d time.Duration, size int) (int64, error) {
		r, w, err := newPipe()
		if err != nil {
			return 0, err
		}
		defer r.Close()
		if capacity > 0 {
			if _, err := pipe.SetCapacity(w, capacity); err != nil {
				w.Close()
				return 0, err
			}
		}
		written := pump(w, make([]byte, size), d, fileWrite)
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, make([]byte, size))
		return settle(written, n, err)
	}
}

// vmspliceWrite maps the (never changing) buffer into the pipe.
func vmspliceWrite(w *os.File, b []byte) (int, error) {
	return pipe.Vmsplice(w, [][]byte{b}, 0)
}

func vmspliceSplice(d time.Duration, size int) (int64, error) {
	r, w, err := newPipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	if _, err := pipe.SetCapacity(w, 1<<20); err != nil {
		w.Close()
		return 0, err
	}
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		w.Close()
		return 0, err
	}
	defer null.Close()
	// Probe once, so that an unsupported system says so before timing.
	if _, err := pipe.Vmsplice(w, nil, 0); err != nil {
		w.Close()
		return 0, err
	}
	// Written first: the pages of a buffer never written are all the
	// shared zero page, which reads faster than any real buffer.
	buf := make([]byte, size)
	for i := range buf {
		buf[i] = byte(i)
	}
	written := pump(w, buf, d, vmspliceWrite)
	return spliceToNull(r, null, written)
}

// spliceToNull drains r into null and settles with the writer.
func spliceToNull(r, null *os.File, written <-chan result) (int64, error) {
	var total int64
	for {
		n, err := pipe.Splice(null, r, 1<<20, 0)
		total += n
		if err != nil || n == 0 {
			return settle(written, total, err)
		}
	}
}

// vmspliceWriter commits buffers of a VmspliceWriter with reuse, which is
// safe here since the reader discards what it splices, writing a byte in
// each page of each buffer first, as a producer filling them would.
func vmspliceWriter(d time.Duration, size int) (int64, error) {
	r, w, err := newPipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	if _, err := pipe.SetCapacity(w, 1<<20); err != nil {
		w.Close()
		return 0, err
	}
	v, err := pipe.NewVmspliceWriter(w, size)
	if err != nil {
		w.Close()
		return 0, err
	}
	v.SetReuse(true)
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		v.Close()
		w.Close()
		return 0, err
	}
	defer null.Close()
	written := make(chan result, 1)
	go func() {
		var total int64
		var err error
		for stop := time.Now().Add(d); err == nil && time.Now().Before(stop); {
			b := v.Buffer()
			for i := 0; i < len(b); i += 4096 {
				b[i] = byte(total)
			}
			if err = v.Commit(len(b)); err == nil {
				total += int64(len(b))
			}
		}
		if cerr := v.Close(); err == nil {
			err = cerr
		}
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		written <- result{total, err}
	}()
	return spliceToNull(r, null, written)
}

// A destination for the Copy rows, and how to dispose of it.
type dst func() (io.Writer, func(), error)

func devNullDst() (io.Writer, func(), error) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

func tempFileDst() (io.Writer, func(), error) {
	f, err := os.CreateTemp("", "pipebench-*")
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close(); os.Remove(f.Name()) }, nil
}

// copyTo measures a copy function from a pipe to a destination. The pipe is
// fed with Vmsplice where the system has it, so that feeding costs little
// next to what is measured, and with Write elsewhere.
func copyTo(copyFn func(io.Writer, io.Reader) (int64, error), to dst) mover {
	return func(d time.Duration, size int) (int64, error) {
		r, w, err := newPipe()
		if err != nil {
			return 0, err
		}
		defer r.Close()
		write := fileWrite
		if _, err := pipe.Vmsplice(w, nil, 0); err == nil {
			write = vmspliceWrite
			pipe.SetCapacity(w, 1<<20) // best effort: it only speeds the feeding
		}
		out, closeOut, err := to()
		if err != nil {
			w.Close()
			return 0, err
		}
		defer closeOut()
		written := pump(w, make([]byte, size), d, write)
		// Copy in 64 MiB pieces, rewinding a file between them, so that the
		// file stays small and the page cache, not the disk, is measured.
		var total int64
		for {
			n, err := copyFn(out, io.LimitReader(r, fileSpan))
			total += n
			if err != nil || n < fileSpan {
				return settle(written, total, err)
			}
			if s, ok := out.(io.Seeker); ok {
				if _, err := s.Seek(0, io.SeekStart); err != nil {
					<-written
					return 0, err
				}
			}
		}
	}
}

// fileSpan is how much a Copy row writes before rewinding its file.
const fileSpan = 64 << 20

// twoProcesses writes to a child process, this program run again, which
// reads the pipe to EOF and prints how many bytes it got.
func twoProcesses(d time.Duration, size int) (int64, error) {
	r, w, err := newPipe()
	if err != nil {
		return 0, err
	}
	self, err := os.Executable()
	if err != nil {
		r.Close()
		w.Close()
		return 0, err
	}
	child := exec.Command(self)
	child.Env = append(os.Environ(), childEnv+"=reader", "PIPEBENCH_BUF="+strconv.Itoa(size))
	child.ExtraFiles = []*os.File{r} // descriptor 3; a Go child copes with O_NONBLOCK
	var out strings.Builder
	child.Stdout = &out
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		r.Close()
		w.Close()
		return 0, err
	}
	r.Close()
	written := pump(w, make([]byte, size), d, fileWrite)
	if err := child.Wait(); err != nil {
		<-written
		return 0, fmt.Errorf("reader process: %w", err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(out.String()), 10, 64)
	return settle(written, n, err)
}

// childReader is the reader process of twoProcesses.
func childReader() int {
	size, _ := strconv.Atoi(os.Getenv("PIPEBENCH_BUF"))
	r := os.NewFile(3, "|0")
	n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, make([]byte, max(size, 1)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(n)
	return 0
}
