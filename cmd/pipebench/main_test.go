package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/pipe2go/pipe"
)

func TestMain(m *testing.M) {
	// The two-process row runs this binary again as its reader.
	if os.Getenv(childEnv) == "reader" {
		os.Exit(childReader())
	}
	os.Exit(m.Run())
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-nosuchflag"},
		{"-duration=0s"},
		{"-duration=-1s"},
		{"-buf=lots"},
		{"-buf=0"},
		{"-buf=2GiB"},
		{"-rows=("},
		{"extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Errorf("run(%q) = %d; want 2", args, code)
		}
		if !strings.Contains(stderr.String(), "usage: pipebench") {
			t.Errorf("run(%q) printed no usage:\n%s", args, stderr.String())
		}
		if stdout.Len() > 0 {
			t.Errorf("run(%q) wrote to stdout: %s", args, stdout.String())
		}
	}
}

func TestJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"-json", "-duration=50ms", "-buf=64KiB", "-rows=default capacity|^Copy pipe -> /dev/null"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, stdout.String())
	}
	if rep.Facts.PipeBuf != pipe.PIPE_BUF || rep.BufSize != 64<<10 {
		t.Errorf("facts = %+v, buf = %d", rep.Facts, rep.BufSize)
	}
	var names []string
	for _, r := range rep.Rows {
		names = append(names, r.Name)
		if r.Bytes <= 0 || r.GBps <= 0 || r.Seconds <= 0 {
			t.Errorf("row %+v measured nothing", r)
		}
	}
	for _, s := range rep.Skipped {
		names = append(names, s.Name)
	}
	want := []string{"write/read, default capacity", "Copy pipe -> /dev/null"}
	if strings.Join(names, ";") != strings.Join(want, ";") {
		t.Errorf("rows %q; want %q", names, want)
	}
	if len(rep.Rows) == 2 && rep.Rows[1].Speedup <= 0 {
		t.Errorf("no speed-up against the baseline: %+v", rep.Rows[1])
	}
}

func TestTable(t *testing.T) {
	if testing.Short() {
		t.Skip("measures every row")
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-duration=30ms"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"PIPE_BUF", "pipe-max-size", "pipe-user-pages-soft", "packet mode", "transparent hugepages", "GB/s"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, spec := range rows() {
		if !strings.Contains(out, spec.name) {
			t.Errorf("output lacks row %q:\n%s", spec.name, out)
		}
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
	if n, err := settle(written, 100, nil); n != 100 || err != nil {
		t.Errorf("settle = %d, %v", n, err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int{"1": 1, "4096": 4096, "64KiB": 64 << 10, "1MiB": 1 << 20, "2M": 2 << 20} {
		if got, err := parseSize(in); got != want || err != nil {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}
