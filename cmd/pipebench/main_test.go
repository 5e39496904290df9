package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pipe2go/pipe"
)

func TestMain(m *testing.M) {
	// The two-process row runs this binary again as its reader.
	if os.Getenv(childEnv) == "reader" {
		os.Exit(childReader())
	}
	os.Exit(m.Run())
}

// What the rows of this platform must do (expect_*_test.go).
const (
	allRun = iota
	allSkipped
	eitherWay
)

// pbRun runs pipebench with args and returns its exit code and output.
func pbRun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func rowNames() []string {
	var names []string
	for _, spec := range rows() {
		names = append(names, spec.name)
	}
	return names
}

func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string // in stderr
	}{
		{[]string{"-nosuchflag"}, "flag provided but not defined"},
		{[]string{"-duration=0s"}, "-duration must be at least 10ms, not 0s"},
		{[]string{"-duration=-1s"}, "-duration must be at least 10ms, not -1s"},
		{[]string{"-duration=9ms"}, "-duration must be at least 10ms, not 9ms"},
		{[]string{"-buf=lots"}, `"lots" is not a size`},
		{[]string{"-buf=-4KiB"}, `"-4KiB" is not a size`},
		{[]string{"-buf=0"}, `"0" is out of range: buffers from 4 KiB to 256 MiB are accepted`},
		{[]string{"-buf=4"}, `"4" is out of range: buffers from 4 KiB to 256 MiB are accepted`},
		{[]string{"-buf=4095"}, `"4095" is out of range`},
		{[]string{"-buf=257MiB"}, `"257MiB" is out of range`},
		{[]string{"-buf=1GiB"}, `"1GiB" is out of range: buffers from 4 KiB to 256 MiB are accepted`},
		{[]string{"-buf=99999999999999999999"}, "is not a size"},
		{[]string{"-buf=8589934592G"}, "is out of range"}, // would overflow when multiplied
		{[]string{"-rows=("}, "-rows: error parsing regexp"},
		{[]string{"-rows=nomatch"}, `-rows "nomatch" matches no row (the rows are listed below)`},
		{[]string{"-repeat=0"}, "-repeat must be at least 1, not 0"},
		{[]string{"-repeat=-3"}, "-repeat must be at least 1, not -3"},
		{[]string{"-repeat=many"}, `invalid value "many" for flag -repeat`},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		code, stdout, stderr := pbRun(t, tc.args...)
		if code != 2 {
			t.Errorf("run(%q) = %d; want 2", tc.args, code)
		}
		if !strings.Contains(stderr, tc.msg) {
			t.Errorf("run(%q): stderr lacks %q:\n%s", tc.args, tc.msg, stderr)
		}
		if !strings.Contains(stderr, "usage: pipebench") {
			t.Errorf("run(%q) printed no usage:\n%s", tc.args, stderr)
		}
		if stdout != "" {
			t.Errorf("run(%q) wrote to stdout: %s", tc.args, stdout)
		}
	}
}

func TestNoMatchListsRows(t *testing.T) {
	_, _, stderr := pbRun(t, "-rows=nomatch")
	for _, name := range rowNames() {
		if !strings.Contains(stderr, "\t"+name+"\n") {
			t.Errorf("the message lacks row %q:\n%s", name, stderr)
		}
	}
}

// TestBufRange checks that the bounds the messages and help state are the
// ones parseSize applies.
func TestBufRange(t *testing.T) {
	for in, want := range map[string]int{
		"4096": 4096, "4KiB": 4 << 10, "4K": 4 << 10, "64KiB": 64 << 10,
		"1MiB": 1 << 20, "2M": 2 << 20, "256MiB": 256 << 20, "268435456": 256 << 20,
	} {
		if got, err := parseSize(in); got != want || err != nil {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"4095", "268435457", "257MiB", "1GiB", "1G", "3K"} {
		if n, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d; want an error", in, n)
		}
	}
	if bufRange != "from 4 KiB to 256 MiB" {
		t.Errorf("bufRange = %q", bufRange)
	}
	code, _, stderr := pbRun(t, "-h")
	if code != 0 || !strings.Contains(stderr, "KiB or MiB, from 4 KiB to 256 MiB") {
		t.Errorf("-h: exit %d, help does not state the -buf range:\n%s", code, stderr)
	}
	for _, want := range []string{"GB/s (10^9 bytes per second)", "GB/s, 10^9 bytes per second"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("help lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "GiB/s") {
		t.Errorf("help mentions GiB/s:\n%s", stderr)
	}
}

// checkRows checks a row list and a skip list against the rows asked for
// and what this platform must do.
func checkRows(t *testing.T, want []string, ran []Row, skipped []Skipped) {
	t.Helper()
	var got []string
	for _, r := range ran {
		got = append(got, r.Name)
		if r.Bytes <= 0 || r.Seconds <= 0 || r.GBps <= 0 {
			t.Errorf("row %+v measured nothing", r)
		}
		if d := r.GBps - float64(r.Bytes)/r.Seconds/1e9; d > 1e-9 || d < -1e-9 {
			t.Errorf("row %+v: gb_per_s is not bytes/seconds/10^9", r)
		}
	}
	for _, s := range skipped {
		got = append(got, s.Name)
		if s.Reason == "" {
			t.Errorf("row %q skipped without a reason", s.Name)
		}
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("rows %q; want %q", got, want)
	}
	switch expectRows {
	case allRun:
		if len(skipped) > 0 {
			t.Errorf("rows skipped on this platform: %+v", skipped)
		}
	case allSkipped:
		if len(ran) > 0 {
			t.Errorf("rows ran on a platform without pipes: %+v", ran)
		}
	}
}

func TestJSON(t *testing.T) {
	rowsRE := `^(write/read, default capacity|write/read, two processes|(io\.)?Copy pipe -> /dev/null)$`
	code, stdout, stderr := pbRun(t, "-json", "-duration=20ms", "-repeat=3", "-buf=64KiB", "-rows="+rowsRE)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Contains(stdout, `\u003e`) || !strings.Contains(stdout, `"Copy pipe -> /dev/null"`) {
		t.Errorf("row names are HTML-escaped:\n%s", stdout)
	}

	// The schema, through untyped decoding: numbers are numbers, and so on.
	var doc map[string]any
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, stdout)
	}
	facts, _ := doc["facts"].(map[string]any)
	factErrors, _ := doc["fact_errors"].(map[string]any)
	kinds := map[string]string{ // the facts and their JSON kinds
		"go_version": "string", "cpu_model": "string", "cpu_count": "number", "os": "string", "kernel": "string", "pipe_buf": "number",
		"default_capacity": "number", "pipe_max_size": "number",
		"pipe_user_pages_soft": "number", "pipe_user_pages_hard": "number",
		"packet_mode": "bool", "transparent_hugepage": "string",
	}
	if len(facts) != len(kinds) {
		t.Errorf("facts %v; want the keys of %v", facts, kinds)
	}
	for key, kind := range kinds {
		v, present := facts[key]
		if !present {
			t.Errorf("fact %q missing", key)
			continue
		}
		reason, _ := factErrors[key].(string)
		switch {
		case v == nil:
			if reason == "" {
				t.Errorf("fact %q is null without a reason in fact_errors", key)
			}
		case key == "packet_mode" && v == false:
			if reason == "" {
				t.Errorf("packet_mode false without a reason in fact_errors")
			}
		case jsonKind(v) != kind:
			t.Errorf("fact %q = %#v, a %s; want a %s", key, v, jsonKind(v), kind)
		case reason != "":
			t.Errorf("fact %q = %v, yet fact_errors says %q", key, v, reason)
		}
	}
	for key, reason := range factErrors {
		if _, ok := kinds[key]; !ok || jsonKind(reason) != "string" {
			t.Errorf("fact_errors[%q] = %#v: not a fact's reason", key, reason)
		}
	}
	if expectRows == allRun {
		// Linux has every fact; /proc/cpuinfo has "model name" lines on
		// x86 but not on every architecture (arm64 has none).
		for key, reason := range factErrors {
			if key != "cpu_model" || runtime.GOARCH == "amd64" || runtime.GOARCH == "386" {
				t.Errorf("Linux could not read fact %q: %v", key, reason)
			}
		}
	}
	for key, kind := range map[string]string{"buf_bytes": "number", "seconds_per_run": "number", "runs_per_row": "number", "rows": "array",
		"copy_vs_io_copy": "array", "skipped": "array", "summary": "string"} {
		if got := jsonKind(doc[key]); got != kind {
			t.Errorf("%q is a %s; want a %s", key, got, kind)
		}
	}
	for _, r := range doc["rows"].([]any) {
		row, _ := r.(map[string]any)
		for key, kind := range map[string]string{"name": "string", "bytes": "number", "seconds": "number",
			"gb_per_s": "number", "min_gb_per_s": "number", "max_gb_per_s": "number", "runs_gb_per_s": "array",
			"speedup_vs_write_read": "number"} {
			if got := jsonKind(row[key]); got != kind {
				t.Errorf("row %v: %q is a %s; want a %s", row, key, got, kind)
			}
		}
	}

	// The values, through the program's own types.
	var rep Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Facts.PipeBuf != pipe.PIPE_BUF || rep.BufBytes != 64<<10 || rep.SecondsPerRun != 0.02 || rep.Repeat != 3 {
		t.Errorf("facts = %+v, buf_bytes = %d, seconds_per_run = %v, runs_per_row = %d", rep.Facts, rep.BufBytes, rep.SecondsPerRun, rep.Repeat)
	}
	checkMachine(t, rep.Facts, rep.FactErrors)
	for _, r := range rep.Rows {
		if len(r.Runs) != 3 || r.Min != slices.Min(r.Runs) || r.Max != slices.Max(r.Runs) || !slices.Contains(r.Runs, r.GBps) ||
			r.Min > r.GBps || r.GBps > r.Max {
			t.Errorf("row %+v: not the median of 3 runs with their range", r)
		}
	}
	checkRows(t, []string{"write/read, default capacity", "write/read, two processes",
		"Copy pipe -> /dev/null", "io.Copy pipe -> /dev/null"}, rep.Rows, rep.Skipped)
	if len(rep.Rows) > 0 && rep.Rows[0].Name == "write/read, default capacity" {
		for _, r := range rep.Rows {
			if want := r.GBps / rep.Rows[0].GBps; r.Speedup != want {
				t.Errorf("row %q: speed-up %v; want %v", r.Name, r.Speedup, want)
			}
		}
	}
	wantPairs := 0
	if len(rep.Rows) == 4 {
		wantPairs = 1
	}
	if len(rep.Pairs) != wantPairs {
		t.Fatalf("pairs %+v with rows %+v", rep.Pairs, rep.Rows)
	}
	if wantPairs == 1 {
		p := rep.Pairs[0]
		if p.Path != "pipe -> /dev/null" || p.Copy != rep.Rows[2].GBps || p.IOCopy != rep.Rows[3].GBps || p.Ratio != p.Copy/p.IOCopy ||
			p.SamePath != copyDefers(copyPath{endPipe, endNull}) || p.Verdict != verdict(rep.Rows[2], rep.Rows[3], p.SamePath) {
			t.Errorf("pair %+v does not match rows %+v", p, rep.Rows[2:])
		}
	}
	if rep.Summary != summary(rep.Rows, rep.Pairs, 20*time.Millisecond, 3) {
		t.Errorf("summary %q", rep.Summary)
	}
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "?"
}

// TestTable runs every row briefly and checks the text output: the facts,
// a line per row, a ratio line after each Copy/io.Copy pair, and the
// summary line last.
func TestTable(t *testing.T) {
	code, out, stderr := pbRun(t, "-duration=20ms", "-repeat=3", "-buf=64KiB")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	f, errs := facts()
	model := "unknown (" + errs["cpu_model"] + ")"
	if f.CPUModel != nil {
		model = *f.CPUModel
	}
	for _, want := range []string{"\ngo version             " + runtime.Version() + "\n",
		"\ncpu model              " + model + "\n",
		"\ncpus                   " + strconv.Itoa(runtime.NumCPU()) + " (runtime.NumCPU",
		"PIPE_BUF", "pipe-max-size", "pipe-user-pages-soft", "packet mode",
		"transparent hugepages", "GB/s = 10^9 bytes/s", "64 KiB buffers, 3 runs of 20ms a row"} {
		if !strings.Contains("\n"+out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "GiB/s") {
		t.Errorf("output mentions GiB/s:\n%s", out)
	}
	measured := regexp.MustCompile(`^(\S.*?) +(\d+\.\d\d) +(\d+\.\d\d)-(\d+\.\d\d) +(\d+\.\d\dx)$`)
	skipped := regexp.MustCompile(`^(\S.*?) +- +skipped: (.+)$`)
	ratio := regexp.MustCompile(`^  Copy / io\.Copy, (.+?): (Copy|io\.Copy|either|within noise|same path) \(.*\d\.\d\dx.*\)$`)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var ran []Row
	var skips []Skipped
	var ratios []string
	for i, line := range lines {
		if m := measured.FindStringSubmatch(line); m != nil {
			ran = append(ran, Row{Name: m[1], Bytes: 1, Seconds: 1, GBps: 1e-9}) // parsed for names only
			if lo, mid, hi := m[3], m[2], m[4]; !(atof(t, lo) <= atof(t, mid) && atof(t, mid) <= atof(t, hi)) {
				t.Errorf("row %q: median %s outside its range %s-%s", m[1], mid, lo, hi)
			}
		} else if m := skipped.FindStringSubmatch(line); m != nil {
			skips = append(skips, Skipped{m[1], m[2]})
		} else if m := ratio.FindStringSubmatch(line); m != nil {
			ratios = append(ratios, m[1])
			if same := m[2] == string(VerdictSamePath); same != copyDefers(pathNamed(t, m[1])) {
				t.Errorf("%q: same path %v; Copy hands it to io.Copy: %v", line, same, !same)
			}
			prev := lines[i-1] // the pair's second row comes just before
			if !strings.HasPrefix(prev, "io.Copy "+m[1]+" ") {
				t.Errorf("ratio line %q follows %q", line, prev)
			}
		}
	}
	checkRows(t, rowNames(), ran, skips)
	var wantRatios []string
	if expectRows == allRun {
		wantRatios = []string{"pipe -> /dev/null", "pipe -> file", "file -> pipe"}
	}
	if expectRows != eitherWay && !slices.Equal(ratios, wantRatios) {
		t.Errorf("ratio lines for %q; want %q:\n%s", ratios, wantRatios, out)
	}
	last := lines[len(lines)-1]
	if !strings.HasSuffix(last, "which way for which job, and why: BENCHMARKS.md") {
		t.Errorf("last line %q does not point to BENCHMARKS.md", last)
	}
	if len(ran) > 0 && !strings.HasPrefix(last, "from 3 runs of 20ms of each row, medians: ") {
		t.Errorf("last line %q does not say how many runs", last)
	}
	for _, p := range ratios {
		if !strings.Contains(last, p+": ") {
			t.Errorf("summary %q says nothing of %s", last, p)
		}
	}
}

func atof(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// pathNamed returns the copyPath of the Copy row for path.
func pathNamed(t *testing.T, path string) copyPath {
	t.Helper()
	for _, spec := range rows() {
		if spec.path != nil && spec.path.String() == path {
			return *spec.path
		}
	}
	t.Fatalf("no Copy row for %q", path)
	return copyPath{}
}

func TestSummary(t *testing.T) {
	rows := []Row{{Name: "a", GBps: 1}, {Name: "b", GBps: 3}, {Name: "c", GBps: 2}}
	pairs := []Pair{{Path: "x", Ratio: 2, Verdict: VerdictCopy}, {Path: "y", Ratio: 0.5, Verdict: VerdictIOCopy},
		{Path: "z", Ratio: 1.05, Verdict: VerdictEither}, {Path: "n", Ratio: 1.5, Verdict: VerdictNoise},
		{Path: "s", Ratio: 0.8, SamePath: true, Verdict: VerdictSamePath}, {Path: "f", Ratio: 3, Verdict: VerdictTooFew}}
	want := "from 5 runs of 2s of each row, medians: x: Copy (2.00x io.Copy, ranges apart); y: io.Copy (Copy 0.50x, ranges apart); " +
		"z: either (Copy 1.05x: ranges apart, medians within 10%); n: within noise (Copy 1.50x, ranges overlap); " +
		"s: same path (Copy hands it to io.Copy; Copy 0.80x is noise); f: too few runs (Copy 3.00x; a verdict needs -repeat 3); " +
		"fastest here: b, 3.00 GB/s; which way for which job, and why: BENCHMARKS.md"
	if got := summary(rows, pairs, 2*time.Second, 5); got != want {
		t.Errorf("summary =\n%s\nwant\n%s", got, want)
	}
	if got := summary(rows[:1], nil, time.Second, 1); got != "from 1 run of 1s of each row, medians: fastest here: a, 1.00 GB/s; which way for which job, and why: BENCHMARKS.md" {
		t.Errorf("summary of one run = %q", got)
	}
	if got := summary(nil, nil, time.Second, 3); got != "nothing measured here (every row skipped); which way for which job, and why: BENCHMARKS.md" {
		t.Errorf("summary with no rows = %q", got)
	}
}

// runsOf returns a Row summarizing runs at these speeds.
func runsOf(name string, gbps ...float64) Row {
	var runs []Row
	for _, g := range gbps {
		runs = append(runs, Row{Name: name, Bytes: int64(g * 1e9), Seconds: 1, GBps: g})
	}
	return summarize(runs)
}

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		runs          []float64
		med, min, max float64
	}{
		{[]float64{3}, 3, 3, 3},
		{[]float64{5, 1, 3}, 3, 1, 5},
		{[]float64{4, 1, 3, 2}, 2, 1, 4}, // even: the slower middle run
		{[]float64{2, 9, 2, 7, 1}, 2, 1, 9},
	} {
		r := runsOf("r", tc.runs...)
		if r.GBps != tc.med || r.Min != tc.min || r.Max != tc.max || !slices.Equal(r.Runs, tc.runs) ||
			r.Bytes != int64(tc.med*1e9) || r.Seconds != 1 || r.Name != "r" {
			t.Errorf("summarize(%v) = %+v; want median %v, range %v-%v, runs in order", tc.runs, r, tc.med, tc.min, tc.max)
		}
	}
}

// TestVerdict checks the rule: a pairing Copy hands to io.Copy is the same
// path whatever the numbers; otherwise overlapping ranges give no verdict,
// and only ranges apart pick a side.
func TestVerdict(t *testing.T) {
	for _, tc := range []struct {
		name     string
		c, ioc   Row
		samePath bool
		want     Verdict
	}{
		{"apart, Copy far ahead", runsOf("c", 10, 11, 12), runsOf("i", 5, 6, 7), false, VerdictCopy},
		{"apart, io.Copy far ahead", runsOf("c", 3, 3.1, 3.2), runsOf("i", 4, 4.1, 4.2), false, VerdictIOCopy},
		{"apart, within 10%", runsOf("c", 3.3, 3.31, 3.32), runsOf("i", 3.1, 3.12, 3.2), false, VerdictEither},
		{"apart by exactly 10%", runsOf("c", 1.1, 1.1, 1.1), runsOf("i", 1, 1, 1), false, VerdictCopy},
		{"medians 30% apart, ranges overlap", runsOf("c", 2, 13, 14), runsOf("i", 9, 10, 11), false, VerdictNoise},
		{"one run of one row inside the other's range", runsOf("c", 5, 6, 7), runsOf("i", 6.5, 8, 9), false, VerdictNoise},
		{"ranges touching", runsOf("c", 7, 8, 9), runsOf("i", 5, 6, 7), false, VerdictNoise},
		{"one noisy run flips the old rule", runsOf("c", 3.0, 3.4, 3.1), runsOf("i", 3.2, 2.8, 3.3), false, VerdictNoise},
		{"same path, ranges apart", runsOf("c", 10, 11, 12), runsOf("i", 5, 6, 7), true, VerdictSamePath},
		{"same path, ranges overlap", runsOf("c", 3, 3.1, 3.2), runsOf("i", 3, 3.1, 3.2), true, VerdictSamePath},
		{"same path, one run", runsOf("c", 3), runsOf("i", 1), true, VerdictSamePath},
		{"two runs, apart", runsOf("c", 10, 11), runsOf("i", 5, 6), false, VerdictTooFew},
		{"one run", runsOf("c", 10), runsOf("i", 5), false, VerdictTooFew},
	} {
		if got := verdict(tc.c, tc.ioc, tc.samePath); got != tc.want {
			t.Errorf("%s: verdict(%v, %v, %v) = %q; want %q", tc.name, tc.c.Runs, tc.ioc.Runs, tc.samePath, got, tc.want)
		}
	}
}

func TestPairOf(t *testing.T) {
	p := copyPath{endPipe, endNull}
	group := copyRows(p)
	c, ioc := runsOf("Copy pipe -> /dev/null", 8, 9, 10), runsOf("io.Copy pipe -> /dev/null", 2, 3, 4)
	got, ok := pairOf(group, []Row{c, ioc})
	want := Pair{Path: "pipe -> /dev/null", Copy: 9, IOCopy: 3, Ratio: 3, SamePath: copyDefers(p), Verdict: verdict(c, ioc, copyDefers(p))}
	if !ok || got != want {
		t.Errorf("pairOf = %+v, %v; want %+v", got, ok, want)
	}
	if _, ok := pairOf(group, []Row{c}); ok {
		t.Error("a pair with one row measured")
	}
	if _, ok := pairOf(group[:1], []Row{c}); ok {
		t.Error("a pair of one row")
	}
	wr := rows()[:2]
	if _, ok := pairOf(wr, []Row{runsOf(wr[0].name, 1), runsOf(wr[1].name, 1)}); ok {
		t.Error("a pair of rows that are not Copy's")
	}
}

func TestInTurn(t *testing.T) {
	names := func(groups [][]rowSpec) (out [][]string) {
		for _, g := range groups {
			var n []string
			for _, s := range g {
				n = append(n, s.name)
			}
			out = append(out, n)
		}
		return out
	}
	all := rows()
	got := names(inTurn(all))
	var want [][]string
	for _, s := range all {
		if s.path == nil {
			want = append(want, []string{s.name})
		} else if strings.HasPrefix(s.name, "Copy ") {
			want = append(want, []string{s.name, "io.Copy " + s.path.String()})
		}
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("inTurn(rows()) = %q; want %q", got, want)
	}
	// Half a pair runs alone, and so do rows of different paths.
	odd := []rowSpec{all[6], all[9], all[10]} // Copy pipe -> /dev/null, io.Copy pipe -> file, Copy file -> pipe
	want = [][]string{{all[6].name}, {all[9].name}, {all[10].name}}
	if got := names(inTurn(odd)); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("inTurn(%q) = %q", want, got)
	}
}

// TestMeasureTakesTurns checks that the rows of a group take turns, the
// first of a round going last in the next, run repeat times, and that a row skipped on any run is reported skipped.
func TestMeasureTakesTurns(t *testing.T) {
	var order []string
	step := func(name string, gbps float64, skipAt int) rowSpec {
		runs := 0
		return rowSpec{name: name, move: func(time.Duration, int) (int64, time.Duration, error) {
			order = append(order, name)
			runs++
			if runs == skipAt {
				return 0, 0, skipError{errors.New("limit")}
			}
			return int64(gbps * 1e9), time.Second, nil
		}}
	}
	ran, skipped, err := measure([]rowSpec{step("a", 2, 0), step("b", 1, 2)}, time.Second, 4096, 3)
	if err != nil {
		t.Fatal(err)
	}
	// Round 2 starts with b, whose second run skips; a runs alone after.
	if want := []string{"a", "b", "b", "a", "a"}; !slices.Equal(order, want) {
		t.Errorf("runs in order %q; want %q", order, want)
	}
	if len(ran) != 1 || ran[0].Name != "a" || !slices.Equal(ran[0].Runs, []float64{2, 2, 2}) {
		t.Errorf("ran %+v", ran)
	}
	if len(skipped) != 1 || skipped[0] != (Skipped{"b", "limit"}) {
		t.Errorf("skipped %+v", skipped)
	}
	fail := rowSpec{name: "f", move: func(time.Duration, int) (int64, time.Duration, error) { return 0, 0, errors.New("boom") }}
	if _, _, err := measure([]rowSpec{fail}, time.Second, 4096, 3); err == nil || err.Error() != "f: boom" {
		t.Errorf("measure of a failing row: %v", err)
	}
}

// TestHelpListsRows checks that -h lists every row's name on a line of its
// own, for -rows, and names the pairings Copy hands to io.Copy.
func TestHelpListsRows(t *testing.T) {
	code, stdout, stderr := pbRun(t, "-h")
	if code != 0 || stdout != "" {
		t.Fatalf("-h: exit %d, stdout %q", code, stdout)
	}
	_, list, ok := strings.Cut(stderr, "\nrows (-rows matches these names):\n")
	if !ok {
		t.Fatalf("-h lists no rows:\n%s", stderr)
	}
	for _, name := range rowNames() {
		if !strings.HasPrefix(list, "\t"+name+"\n") {
			t.Fatalf("-h: row %q is not next in the list:\n%s", name, stderr)
		}
		list = strings.TrimPrefix(list, "\t"+name+"\n")
		if !regexp.MustCompile(`^` + regexp.QuoteMeta(name) + `$`).MatchString(name) {
			t.Errorf("row %q: the anchored, quoted name does not match it", name)
		}
	}
	var same []string
	for _, p := range []copyPath{{endPipe, endNull}, {endPipe, endFile}, {endFile, endPipe}} {
		if copyDefers(p) {
			same = append(same, p.String())
		}
	}
	wantSame := ""
	if len(same) > 0 {
		wantSame = "\nCopy hands these to io.Copy (verdict \"same path\"): " + strings.Join(same, ", ") + "\n"
	}
	if list != wantSame {
		t.Errorf("-h after the rows: %q; want %q", list, wantSame)
	}
}

// TestCopyRows checks that every Copy or io.Copy row is one of a pair built
// by copyRows, whose ends are those its mover measures.
func TestCopyRows(t *testing.T) {
	for _, spec := range rows() {
		isCopy := strings.HasPrefix(spec.name, "Copy ") || strings.HasPrefix(spec.name, "io.Copy ")
		if isCopy != (spec.path != nil) {
			t.Errorf("row %q: path %v", spec.name, spec.path)
			continue
		}
		if spec.path != nil && !strings.HasSuffix(spec.name, "Copy "+spec.path.String()) {
			t.Errorf("row %q copies %v", spec.name, spec.path)
		}
	}
	_, _, err := copyMover(io.Copy, copyPath{endNull, endPipe})(time.Millisecond, 4096)
	if err == nil || !strings.Contains(err.Error(), "/dev/null -> pipe") {
		t.Errorf("a mover for a path no row has: %v", err)
	}
}

func TestSettleCatchesMismatch(t *testing.T) {
	written := make(chan result, 1)
	written <- result{n: 100}
	if _, err := settle(written, 99, nil); err == nil {
		t.Error("a short read was not reported")
	}
	written <- result{n: 100, err: errors.New("boom")}
	if _, err := settle(written, 100, nil); err == nil {
		t.Error("a writer error was not reported")
	}
	written <- result{n: 100}
	if _, err := settle(written, 100, errors.New("boom")); err == nil {
		t.Error("a reader error was not reported")
	}
	written <- result{n: 100}
	if n, err := settle(written, 100, nil); n != 100 || err != nil {
		t.Errorf("settle = %d, %v", n, err)
	}
}

// sizes records the length of the buffer each Read is given.
type sizes struct {
	r         io.Reader
	asks, got []int
}

func (s *sizes) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.asks, s.got = append(s.asks, len(p)), append(s.got, n)
	return n, err
}

// TestReadsAreTheRowsSize checks that the rows' reader asks for -buf bytes
// in every Read (io.CopyBuffer into io.Discard would ask for 8 KiB), and
// gets all of a full 64 KiB pipe in one.
func TestReadsAreTheRowsSize(t *testing.T) {
	const size, total = 256 << 10, 4 << 20
	r, w, err := newPipe()
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := w.Write(make([]byte, 64<<10)); err != nil { // a full default pipe
		t.Fatal(err)
	}
	go func() {
		w.Write(make([]byte, total-64<<10))
		w.Close()
	}()
	rec := &sizes{r: r}
	n, err := readAll(rec, size)()
	if n != total || err != nil {
		t.Fatalf("readAll = %d, %v; want %d", n, err, total)
	}
	for i, k := range rec.asks {
		if k != size {
			t.Fatalf("Read %d of %d asked for %d bytes; want %d", i, len(rec.asks), k, size)
		}
	}
	if rec.got[0] != 64<<10 {
		t.Errorf("the first Read, of a full 64 KiB pipe, got %d bytes", rec.got[0])
	}
}
