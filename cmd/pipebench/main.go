// Command pipebench prints the pipe facts of this machine and measures how
// fast each way of moving data through a pipe goes here.
//
// Usage:
//
//	go run ./cmd/pipebench [-duration 1.5s] [-buf 256KiB] [-rows regexp] [-json]
//
// It prints the kernel's pipe limits (PIPE_BUF, default and maximum capacity,
// per-user page limits, packet mode, transparent huge pages), then one row per
// way of moving data, each as soon as it is measured, in GB/s (10^9 bytes per
// second): Write/Read with the default capacity, with a 1 MiB pipe and
// between two processes; Vmsplice + Splice to /dev/null, and VmspliceWriter
// + Splice to /dev/null with fresh pages (the default) and with reuse; Copy and io.Copy from a pipe to /dev/null, from a pipe to a
// file and from a file to a pipe. Each row says its speed-up over the first,
// each Copy/io.Copy pair the ratio of the two, and a last line sums up what
// the rows show, pointing to BENCHMARKS.md for the reasons. A row's time
// covers the transfer only, not its setup (pipes, buffers, files, starting a
// child process). Every transfer checks that the bytes read equal the bytes
// written.
//
// With -json it prints the facts and rows as one JSON document instead:
// facts typed (numbers, booleans, strings), null where a fact could not be
// read, with the reason under the same key in fact_errors. On systems
// without some facility it runs the rows it can and lists the ones it
// skipped, with the reason.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

func main() {
	if os.Getenv(childEnv) == "reader" {
		os.Exit(childReader())
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Row is one measured way of moving data.
type Row struct {
	Name    string  `json:"name"`
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`  // of the transfer alone
	GBps    float64 `json:"gb_per_s"` // GB/s: 10^9 bytes per second
	Speedup float64 `json:"speedup_vs_write_read,omitempty"`
}

// Pair compares the rows "Copy <Path>" and "io.Copy <Path>".
type Pair struct {
	Path   string  `json:"path"`
	Copy   float64 `json:"copy_gb_per_s"`
	IOCopy float64 `json:"io_copy_gb_per_s"`
	Ratio  float64 `json:"ratio"` // Copy's GB/s over io.Copy's
}

// Skipped is a row this system cannot run.
type Skipped struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// Report is what -json prints.
type Report struct {
	Facts         Facts             `json:"facts"`
	FactErrors    map[string]string `json:"fact_errors,omitempty"` // why a null fact is null
	BufBytes      int               `json:"buf_bytes"`
	SecondsPerRow float64           `json:"seconds_per_row"`
	Rows          []Row             `json:"rows"`
	Pairs         []Pair            `json:"copy_vs_io_copy"`
	Skipped       []Skipped         `json:"skipped"`
	Summary       string            `json:"summary"`
}

// The accepted -buf range. Below a page each row measures system calls
// rather than throughput; above 256 MiB the buffers (two or three per row)
// only cost memory.
const (
	minBuf = 4 << 10
	maxBuf = 256 << 20
)

// minDuration is the shortest -duration: below it a row may end before
// its first buffer has gone through, and measure nothing.
const minDuration = 10 * time.Millisecond

var bufRange = fmt.Sprintf("from %s to %s", sizeName(minBuf), sizeName(maxBuf))

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pipebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 1500*time.Millisecond, "how long to move data in each row, at least 10ms")
	bufFlag := fs.String("buf", "256KiB", "size of each write and read: bytes, or a number with KiB or MiB, "+bufRange)
	filter := fs.String("rows", "", "run only the rows whose name matches this regular expression")
	asJSON := fs.Bool("json", false, "print the facts and rows (speeds in GB/s, 10^9 bytes per second) as one JSON document")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: pipebench [flags]\n\nMeasures ways of moving data through pipes on this machine, in GB/s (10^9 bytes per second).\n\n")
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
	if *duration < minDuration {
		return bad("-duration must be at least %v, not %v", minDuration, *duration)
	}
	size, err := parseSize(*bufFlag)
	if err != nil {
		return bad("-buf: %v", err)
	}
	match, err := regexp.Compile(*filter)
	if err != nil {
		return bad("-rows: %v", err)
	}
	var specs []rowSpec
	var names []string
	for _, spec := range rows() {
		names = append(names, spec.name)
		if match.MatchString(spec.name) {
			specs = append(specs, spec)
		}
	}
	if len(specs) == 0 {
		return bad("-rows %q matches no row; the rows are:\n\t%s", *filter, strings.Join(names, "\n\t"))
	}

	rep := Report{BufBytes: size, SecondsPerRow: duration.Seconds(), Rows: []Row{}, Pairs: []Pair{}, Skipped: []Skipped{}}
	rep.Facts, rep.FactErrors = facts()
	if !*asJSON {
		printFacts(stdout, rep.Facts, rep.FactErrors)
		fmt.Fprintf(stdout, "\n%s buffers, %v a row; GB/s = 10^9 bytes/s; time of the transfer alone\n", sizeName(size), *duration)
		fmt.Fprintf(stdout, "%-32s %8s %14s\n", "way", "GB/s", "vs write/read")
	}
	var base float64 // GB/s of the baseline row, once measured
	baseline := rows()[0].name
	measured := map[string]float64{}
	for _, spec := range specs {
		n, elapsed, err := spec.move(*duration, size)
		var skip skipError
		if errors.Is(err, errors.ErrUnsupported) || errors.As(err, &skip) {
			rep.Skipped = append(rep.Skipped, Skipped{spec.name, err.Error()})
			if !*asJSON {
				fmt.Fprintf(stdout, "%-32s %8s   skipped: %v\n", spec.name, "-", err)
			}
			continue
		}
		if err != nil {
			fmt.Fprintf(stderr, "pipebench: %s: %v\n", spec.name, err)
			return 1
		}
		secs := elapsed.Seconds()
		row := Row{Name: spec.name, Bytes: n, Seconds: secs, GBps: float64(n) / secs / 1e9}
		if spec.name == baseline {
			base = row.GBps
		}
		if base > 0 {
			row.Speedup = row.GBps / base
		}
		rep.Rows = append(rep.Rows, row)
		measured[row.Name] = row.GBps
		if !*asJSON {
			speedup := "-"
			if row.Speedup > 0 {
				speedup = fmt.Sprintf("%.2fx", row.Speedup)
			}
			fmt.Fprintf(stdout, "%-32s %8.2f %14s\n", row.Name, row.GBps, speedup)
		}
		if p, ok := pairOf(row.Name, measured); ok {
			rep.Pairs = append(rep.Pairs, p)
			if !*asJSON {
				fmt.Fprintf(stdout, "  Copy / io.Copy, %s: %.2fx\n", p.Path, p.Ratio)
			}
		}
	}
	rep.Summary = summary(rep.Rows, rep.Pairs, *duration)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false) // "->" in row names stays readable
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stderr, "pipebench:", err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stdout, "\n%s\n", rep.Summary)
	return 0
}

// pairOf returns the comparison that the row just measured completes, if
// both rows of its Copy/io.Copy pair have been measured.
func pairOf(name string, measured map[string]float64) (Pair, bool) {
	path, ok := strings.CutPrefix(name, "io.Copy ")
	if !ok {
		if path, ok = strings.CutPrefix(name, "Copy "); !ok {
			return Pair{}, false
		}
	}
	c, okC := measured["Copy "+path]
	ioc, okIO := measured["io.Copy "+path]
	if !okC || !okIO || ioc <= 0 {
		return Pair{}, false
	}
	return Pair{Path: path, Copy: c, IOCopy: ioc, Ratio: c / ioc}, true
}

// summary says in one line what the measured rows show: which of each
// Copy/io.Copy pair to use, the fastest row, and where the reasons are. It
// says that each row ran once for d: on a busy machine a ratio near 1 can
// flip between runs.
func summary(rows []Row, pairs []Pair, d time.Duration) string {
	const more = "which way for which job, and why: BENCHMARKS.md"
	if len(rows) == 0 {
		return "nothing measured here (every row skipped); " + more
	}
	var parts []string
	for _, p := range pairs {
		switch {
		case p.Ratio >= 1.1:
			parts = append(parts, fmt.Sprintf("Copy for %s (%.2fx io.Copy)", p.Path, p.Ratio))
		case p.Ratio <= 1/1.1:
			parts = append(parts, fmt.Sprintf("io.Copy for %s (Copy %.2fx)", p.Path, p.Ratio))
		default:
			parts = append(parts, fmt.Sprintf("either for %s (Copy %.2fx, within 10%%)", p.Path, p.Ratio))
		}
	}
	fastest := rows[0]
	for _, r := range rows[1:] {
		if r.GBps > fastest.GBps {
			fastest = r
		}
	}
	use := ""
	if len(parts) > 0 {
		use = "use " + strings.Join(parts, ", ") + "; "
	}
	return fmt.Sprintf("from one %v run of each row: %sfastest here: %s, %.2f GB/s; %s", d, use, fastest.Name, fastest.GBps, more)
}

// parseSize reads "65536", "64KiB", "1MiB" or "1GiB" (K, M and G mean the
// same), within the accepted -buf range.
func parseSize(s string) (int, error) {
	mult := 1
	num := s
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}} {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size: give bytes, or a number with KiB or MiB, %s", s, bufRange)
	}
	if n > maxBuf/mult || n*mult < minBuf {
		return 0, fmt.Errorf("%q is out of range: buffers %s are accepted", s, bufRange)
	}
	return n * mult, nil
}

func sizeName(n int) string {
	switch {
	case n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
