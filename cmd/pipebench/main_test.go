package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"regexp"
	"slices"
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
		{[]string{"-rows=nomatch"}, `-rows "nomatch" matches no row; the rows are:`},
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
	code, stdout, stderr := pbRun(t, "-json", "-duration=20ms", "-buf=64KiB", "-rows="+rowsRE)
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
		"os": "string", "kernel": "string", "pipe_buf": "number",
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
	if expectRows == allRun && factErrors != nil {
		t.Errorf("Linux could not read facts: %v", factErrors)
	}
	for key, kind := range map[string]string{"buf_bytes": "number", "seconds_per_row": "number", "rows": "array",
		"copy_vs_io_copy": "array", "skipped": "array", "summary": "string"} {
		if got := jsonKind(doc[key]); got != kind {
			t.Errorf("%q is a %s; want a %s", key, got, kind)
		}
	}
	for _, r := range doc["rows"].([]any) {
		row, _ := r.(map[string]any)
		for key, kind := range map[string]string{"name": "string", "bytes": "number", "seconds": "number",
			"gb_per_s": "number", "speedup_vs_write_read": "number"} {
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
	if rep.Facts.PipeBuf != pipe.PIPE_BUF || rep.BufBytes != 64<<10 || rep.SecondsPerRow != 0.02 {
		t.Errorf("facts = %+v, buf_bytes = %d, seconds_per_row = %v", rep.Facts, rep.BufBytes, rep.SecondsPerRow)
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
		if p.Path != "pipe -> /dev/null" || p.Copy != rep.Rows[2].GBps || p.IOCopy != rep.Rows[3].GBps || p.Ratio != p.Copy/p.IOCopy {
			t.Errorf("pair %+v does not match rows %+v", p, rep.Rows[2:])
		}
	}
	if rep.Summary != summary(rep.Rows, rep.Pairs, 20*time.Millisecond) {
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
	code, out, stderr := pbRun(t, "-duration=20ms", "-buf=64KiB")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"PIPE_BUF", "pipe-max-size", "pipe-user-pages-soft", "packet mode",
		"transparent hugepages", "GB/s = 10^9 bytes/s", "64 KiB buffers, 20ms a row"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "GiB/s") {
		t.Errorf("output mentions GiB/s:\n%s", out)
	}
	measured := regexp.MustCompile(`^(\S.*?) +(\d+\.\d\d) +(\d+\.\d\dx)$`)
	skipped := regexp.MustCompile(`^(\S.*?) +- +skipped: (.+)$`)
	ratio := regexp.MustCompile(`^  Copy / io\.Copy, (.+): \d+\.\d\dx$`)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var ran []Row
	var skips []Skipped
	var ratios []string
	for i, line := range lines {
		if m := measured.FindStringSubmatch(line); m != nil {
			ran = append(ran, Row{Name: m[1], Bytes: 1, Seconds: 1, GBps: 1e-9}) // parsed for names only
		} else if m := skipped.FindStringSubmatch(line); m != nil {
			skips = append(skips, Skipped{m[1], m[2]})
		} else if m := ratio.FindStringSubmatch(line); m != nil {
			ratios = append(ratios, m[1])
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
	for _, p := range ratios {
		if !strings.Contains(last, " for "+p+" (") {
			t.Errorf("summary %q says nothing of %s", last, p)
		}
	}
}

func TestSummary(t *testing.T) {
	rows := []Row{{Name: "a", GBps: 1}, {Name: "b", GBps: 3}, {Name: "c", GBps: 2}}
	pairs := []Pair{{Path: "x", Ratio: 2}, {Path: "y", Ratio: 0.5}, {Path: "z", Ratio: 1.05}}
	want := "from one 2s run of each row: use Copy for x (2.00x io.Copy), io.Copy for y (Copy 0.50x), either for z (Copy 1.05x, within 10%); " +
		"fastest here: b, 3.00 GB/s; which way for which job, and why: BENCHMARKS.md"
	if got := summary(rows, pairs, 2*time.Second); got != want {
		t.Errorf("summary =\n%s\nwant\n%s", got, want)
	}
	if got := summary(nil, nil, time.Second); got != "nothing measured here (every row skipped); which way for which job, and why: BENCHMARKS.md" {
		t.Errorf("summary with no rows = %q", got)
	}
}

func TestPairOf(t *testing.T) {
	m := map[string]float64{"Copy p": 4}
	if _, ok := pairOf("Copy p", m); ok {
		t.Error("a pair with one row measured")
	}
	m["io.Copy p"] = 2
	p, ok := pairOf("io.Copy p", m)
	if !ok || p != (Pair{Path: "p", Copy: 4, IOCopy: 2, Ratio: 2}) {
		t.Errorf("pairOf = %+v, %v", p, ok)
	}
	if _, ok := pairOf("write/read", m); ok {
		t.Error("a pair for a row that is not Copy's")
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
