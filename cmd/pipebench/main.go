// Command pipebench prints the pipe facts of this machine and measures how
// fast each way of moving data through a pipe goes here.
//
// Usage:
//
//	go run ./cmd/pipebench [-duration 300ms] [-repeat 5] [-buf 256KiB] [-rows regexp] [-json]
//
// It prints the Go version, the CPU model and count, and the kernel's pipe
// limits (PIPE_BUF, default and maximum capacity, per-user page limits,
// packet mode, transparent huge pages), then one row per way of moving
// data, each as soon as it is measured, in GB/s (10^9 bytes per second):
// Write/Read with the default capacity, with a 1 MiB pipe and between two
// processes; Vmsplice + Splice to /dev/null, and VmspliceWriter + Splice to
// /dev/null with fresh pages (the default) and with reuse; Copy and io.Copy
// from a pipe to /dev/null, from a pipe to a file and from a file to a pipe.
// -h lists the rows' names, for -rows.
//
// Each row runs -repeat times, for -duration each, and shows its median
// run and its range (slowest to fastest run), and its speed-up over the
// first row. A Copy row and its io.Copy row take turns, each going first
// every other round, so that both meet the same load. Each such pair gets
// a verdict: "same path" where pipe.Copy hands the pairing to io.Copy whole
// (any difference is then noise); otherwise "within noise" while the two
// ranges overlap, and only once they are apart "Copy" or "io.Copy" (medians
// 10% or more apart) or "either" (less). Two rows that do not differ, n
// runs each, have ranges apart by chance in 2 of the C(2n, n) equally
// likely orders of their runs: 1 in 10 for 3 runs, 1 in 126 for 5; with
// fewer than 3 runs there is no verdict ("too few runs"). A last line sums
// up, pointing to BENCHMARKS.md for the reasons. A run's time covers the
// transfer only, not its setup (pipes, buffers, files, starting a child
// process). Every transfer checks that the bytes read equal the bytes
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
	"slices"
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

// Row is one measured way of moving data: its median run, and the range.
type Row struct {
	Name    string    `json:"name"`
	Bytes   int64     `json:"bytes"`    // moved in the median run
	Seconds float64   `json:"seconds"`  // of the median run's transfer alone
	GBps    float64   `json:"gb_per_s"` // the median run's GB/s: 10^9 bytes per second
	Min     float64   `json:"min_gb_per_s"`
	Max     float64   `json:"max_gb_per_s"`
	Runs    []float64 `json:"runs_gb_per_s"` // each run's GB/s, in the order run
	Speedup float64   `json:"speedup_vs_write_read,omitempty"`
}

// Verdict says which of a Copy/io.Copy pair to use, if the runs tell.
type Verdict string

const (
	VerdictCopy     Verdict = "Copy"         // Copy's range above io.Copy's, medians 10% or more apart
	VerdictIOCopy   Verdict = "io.Copy"      // io.Copy's range above Copy's, medians 10% or more apart
	VerdictEither   Verdict = "either"       // ranges apart, medians less than 10% apart
	VerdictNoise    Verdict = "within noise" // ranges overlap
	VerdictSamePath Verdict = "same path"    // Copy hands this pairing to io.Copy whole
	VerdictTooFew   Verdict = "too few runs" // fewer than minRunsForVerdict runs of a row
)

// minRunsForVerdict is the fewest runs of each row that a verdict other
// than "same path" needs: with 2, two rows that do not differ would have
// ranges apart 1 time in 3.
const minRunsForVerdict = 3

// Pair compares the rows "Copy <Path>" and "io.Copy <Path>".
type Pair struct {
	Path     string  `json:"path"`
	Copy     float64 `json:"copy_gb_per_s"`    // median
	IOCopy   float64 `json:"io_copy_gb_per_s"` // median
	Ratio    float64 `json:"ratio"`            // Copy's median GB/s over io.Copy's
	SamePath bool    `json:"same_path"`        // Copy hands this pairing to io.Copy whole
	Verdict  Verdict `json:"verdict"`
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
	SecondsPerRun float64           `json:"seconds_per_run"`
	Repeat        int               `json:"runs_per_row"`
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
	duration := fs.Duration("duration", 300*time.Millisecond, "how long to move data in each run of a row, at least 10ms")
	repeat := fs.Int("repeat", 5, "how many times to run each row, at least 1; verdicts need 3")
	bufFlag := fs.String("buf", "256KiB", "size of each write and read: bytes, or a number with KiB or MiB, "+bufRange)
	filter := fs.String("rows", "", "run only the rows whose name matches this regular expression (listed below)")
	asJSON := fs.Bool("json", false, "print the facts and rows (speeds in GB/s, 10^9 bytes per second) as one JSON document")
	fs.Usage = func() { usage(fs, stderr) }
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
	if *repeat < 1 {
		return bad("-repeat must be at least 1, not %d", *repeat)
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
	for _, spec := range rows() {
		if match.MatchString(spec.name) {
			specs = append(specs, spec)
		}
	}
	if len(specs) == 0 {
		return bad("-rows %q matches no row (the rows are listed below)", *filter)
	}

	rep := Report{BufBytes: size, SecondsPerRun: duration.Seconds(), Repeat: *repeat, Rows: []Row{}, Pairs: []Pair{}, Skipped: []Skipped{}}
	rep.Facts, rep.FactErrors = facts()
	if !*asJSON {
		printFacts(stdout, rep.Facts, rep.FactErrors)
		fmt.Fprintf(stdout, "\n%s buffers, %s of %v a row, a Copy row and its io.Copy row in turn; GB/s = 10^9 bytes/s, of the median run; time of the transfer alone\n",
			sizeName(size), plural(*repeat, "run"), *duration)
		fmt.Fprintf(stdout, "%-32s %8s %13s %14s\n", "way", "GB/s", "min-max", "vs write/read")
	}
	var base float64 // GB/s of the baseline row, once measured
	baseline := rows()[0].name
	for _, group := range inTurn(specs) {
		ran, skipped, err := measure(group, *duration, size, *repeat)
		if err != nil {
			fmt.Fprintf(stderr, "pipebench: %v\n", err)
			return 1
		}
		for _, s := range skipped {
			rep.Skipped = append(rep.Skipped, s)
			if !*asJSON {
				fmt.Fprintf(stdout, "%-32s %8s   skipped: %s\n", s.Name, "-", s.Reason)
			}
		}
		for _, row := range ran {
			if row.Name == baseline {
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
				fmt.Fprintf(stdout, "%-32s %8.2f %13s %14s\n", row.Name, row.GBps, fmt.Sprintf("%.2f-%.2f", row.Min, row.Max), speedup)
			}
		}
		if p, ok := pairOf(group, ran); ok {
			rep.Pairs = append(rep.Pairs, p)
			if !*asJSON {
				fmt.Fprintf(stdout, "  Copy / io.Copy, %s: %s\n", p.Path, describe(p))
			}
		}
	}
	rep.Summary = summary(rep.Rows, rep.Pairs, *duration, *repeat)
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

// usage prints the help: the flags, then the rows' names one to a line, to
// write -rows expressions from, and the pairings Copy hands to io.Copy.
func usage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintf(w, "usage: pipebench [flags]\n\nMeasures ways of moving data through pipes on this machine, in GB/s (10^9 bytes per second).\n\n")
	fs.PrintDefaults()
	fmt.Fprintf(w, "\nrows (-rows matches these names):\n")
	var same []string
	for _, spec := range rows() {
		fmt.Fprintf(w, "\t%s\n", spec.name)
		if spec.path != nil && copyDefers(*spec.path) && !slices.Contains(same, spec.path.String()) {
			same = append(same, spec.path.String())
		}
	}
	if len(same) > 0 {
		fmt.Fprintf(w, "\nCopy hands these to io.Copy (verdict \"same path\"): %s\n", strings.Join(same, ", "))
	}
}

// inTurn groups specs into what runs in turn: a Copy row with the io.Copy
// row of the same path that follows it, every other row alone.
func inTurn(specs []rowSpec) [][]rowSpec {
	var groups [][]rowSpec
	for i := 0; i < len(specs); i++ {
		if i+1 < len(specs) && specs[i].path != nil && specs[i+1].path != nil && *specs[i].path == *specs[i+1].path {
			groups = append(groups, specs[i:i+2])
			i++
			continue
		}
		groups = append(groups, specs[i:i+1])
	}
	return groups
}

// measure runs each row of group repeat times, the rows taking turns (the
// first of one round is the last of the next, so that neither always runs
// after the other), and returns a Row for each that ran every time, and
// the others as skipped (with the reason of their first skip). A row that
// fails otherwise stops it all with its error.
func measure(group []rowSpec, d time.Duration, size, repeat int) ([]Row, []Skipped, error) {
	runs := make([][]Row, len(group))
	skip := make([]error, len(group))
	for round := range repeat {
		for k := range group {
			i := k
			if round%2 == 1 {
				i = len(group) - 1 - k // who goes first alternates
			}
			spec := group[i]
			if skip[i] != nil {
				continue
			}
			n, elapsed, err := spec.move(d, size)
			var se skipError
			if errors.Is(err, errors.ErrUnsupported) || errors.As(err, &se) {
				skip[i] = err
				continue
			}
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", spec.name, err)
			}
			secs := elapsed.Seconds()
			runs[i] = append(runs[i], Row{Name: spec.name, Bytes: n, Seconds: secs, GBps: float64(n) / secs / 1e9})
		}
	}
	var ran []Row
	var skipped []Skipped
	for i, spec := range group {
		if skip[i] != nil {
			skipped = append(skipped, Skipped{spec.name, skip[i].Error()})
			continue
		}
		ran = append(ran, summarize(runs[i]))
	}
	return ran, skipped, nil
}

// summarize makes one Row of the runs of a row: the median run (of an even
// count, the slower of the middle two, so that the bytes and seconds are
// those of a real run), with the range and every run's GB/s.
func summarize(runs []Row) Row {
	sorted := slices.SortedFunc(slices.Values(runs), func(a, b Row) int { return cmpFloat(a.GBps, b.GBps) })
	r := sorted[(len(sorted)-1)/2]
	r.Min, r.Max = sorted[0].GBps, sorted[len(sorted)-1].GBps
	r.Runs = make([]float64, len(runs))
	for i, run := range runs {
		r.Runs[i] = run.GBps
	}
	return r
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// pairOf returns the comparison of a group that is a Copy/io.Copy pair
// and whose rows both ran.
func pairOf(group []rowSpec, ran []Row) (Pair, bool) {
	if len(group) != 2 || len(ran) != 2 || group[0].path == nil {
		return Pair{}, false
	}
	c, ioc := ran[0], ran[1]
	path := *group[0].path
	if c.Name != "Copy "+path.String() || ioc.Name != "io.Copy "+path.String() || ioc.GBps <= 0 {
		return Pair{}, false
	}
	same := copyDefers(path)
	return Pair{Path: path.String(), Copy: c.GBps, IOCopy: ioc.GBps, Ratio: c.GBps / ioc.GBps,
		SamePath: same, Verdict: verdict(c, ioc, same)}, true
}

// verdict judges a Copy row c against its io.Copy row ioc. A pairing Copy
// hands to io.Copy is the same path, whatever the runs say. Otherwise only
// ranges that do not overlap give a verdict, so that a difference within
// the run-to-run spread never picks a side.
func verdict(c, ioc Row, samePath bool) Verdict {
	switch {
	case samePath:
		return VerdictSamePath
	case len(c.Runs) < minRunsForVerdict || len(ioc.Runs) < minRunsForVerdict:
		return VerdictTooFew
	case c.Min <= ioc.Max && ioc.Min <= c.Max:
		return VerdictNoise
	case c.GBps >= 1.1*ioc.GBps:
		return VerdictCopy
	case ioc.GBps >= 1.1*c.GBps:
		return VerdictIOCopy
	}
	return VerdictEither
}

// describe says a pair's verdict with the ratio of its medians.
func describe(p Pair) string {
	switch p.Verdict {
	case VerdictCopy:
		return fmt.Sprintf("Copy (%.2fx io.Copy, ranges apart)", p.Ratio)
	case VerdictIOCopy:
		return fmt.Sprintf("io.Copy (Copy %.2fx, ranges apart)", p.Ratio)
	case VerdictEither:
		return fmt.Sprintf("either (Copy %.2fx: ranges apart, medians within 10%%)", p.Ratio)
	case VerdictNoise:
		return fmt.Sprintf("within noise (Copy %.2fx, ranges overlap)", p.Ratio)
	case VerdictSamePath:
		return fmt.Sprintf("same path (Copy hands it to io.Copy; Copy %.2fx is noise)", p.Ratio)
	case VerdictTooFew:
		return fmt.Sprintf("too few runs (Copy %.2fx; a verdict needs -repeat %d)", p.Ratio, minRunsForVerdict)
	}
	return fmt.Sprintf("%s (Copy %.2fx)", p.Verdict, p.Ratio)
}

// summary says in one line what the measured rows show: the verdict of
// each Copy/io.Copy pair, the fastest row, and where the reasons are.
func summary(rows []Row, pairs []Pair, d time.Duration, repeat int) string {
	const more = "which way for which job, and why: BENCHMARKS.md"
	if len(rows) == 0 {
		return "nothing measured here (every row skipped); " + more
	}
	var parts []string
	for _, p := range pairs {
		parts = append(parts, p.Path+": "+describe(p)+"; ")
	}
	fastest := rows[0]
	for _, r := range rows[1:] {
		if r.GBps > fastest.GBps {
			fastest = r
		}
	}
	return fmt.Sprintf("from %s of %v of each row, medians: %sfastest here: %s, %.2f GB/s; %s",
		plural(repeat, "run"), d, strings.Join(parts, ""), fastest.Name, fastest.GBps, more)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
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
