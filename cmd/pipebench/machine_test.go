package main

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// checkMachine checks the Go version, CPU model and CPU count facts.
func checkMachine(t *testing.T, f Facts, errs map[string]string) {
	t.Helper()
	if f.GoVersion != runtime.Version() || f.CPUCount != runtime.NumCPU() || f.CPUCount < 1 {
		t.Errorf("go_version %q, cpu_count %d; want %q, %d", f.GoVersion, f.CPUCount, runtime.Version(), runtime.NumCPU())
	}
	want, err := cpuModel("/proc/cpuinfo")
	switch {
	case f.CPUModel == nil && (errs["cpu_model"] == "" || err == nil || errs["cpu_model"] != err.Error()):
		t.Errorf("cpu_model null, fact_errors says %q; reading it again: %v, %v", errs["cpu_model"], want, err)
	case f.CPUModel != nil && (want == nil || *f.CPUModel != *want || *f.CPUModel == "" || errs["cpu_model"] != ""):
		t.Errorf("cpu_model %q (fact_errors %q); reading it again: %v, %v", *f.CPUModel, errs["cpu_model"], want, err)
	}
	if runtime.GOOS == "linux" && (runtime.GOARCH == "amd64" || runtime.GOARCH == "386") && f.CPUModel == nil {
		t.Errorf("x86 Linux without a CPU model: %s", errs["cpu_model"])
	}
}

func TestCPUModel(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	x86 := write("x86", "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel\t\t: 1\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu\n\n"+
		"processor\t: 1\nmodel name\t: AMD EPYC 7B13\n")
	two := write("two", "processor\t: 0\nmodel name\t: Big Core\n\nprocessor\t: 1\nmodel name\t: Little Core\n\nprocessor\t: 2\nmodel name\t: Big Core\n")
	arm64 := write("arm64", "processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n")
	empty := write("empty", "processor\t: 0\nmodel name\t:\n")
	for _, tc := range []struct{ path, want string }{{x86, "AMD EPYC 7B13"}, {two, "Big Core + Little Core"}} {
		if got, err := cpuModel(tc.path); err != nil || *got != tc.want {
			t.Errorf("cpuModel(%s) = %v, %v; want %q", filepath.Base(tc.path), got, err, tc.want)
		}
	}
	for _, p := range []string{arm64, empty} {
		if got, err := cpuModel(p); got != nil || err == nil || !strings.Contains(err.Error(), `has no "model name" line`) {
			t.Errorf("cpuModel(%s) = %v, %v; want no model, and why", filepath.Base(p), got, err)
		}
	}
	if got, err := cpuModel(filepath.Join(dir, "none")); got != nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("cpuModel of a missing file = %v, %v", got, err)
	}
}

// TestPrintFactsMachine checks the text header's Go version, CPU model
// (known and unknown) and count.
func TestPrintFactsMachine(t *testing.T) {
	model := "Some CPU 3000"
	f := Facts{GoVersion: "go1.99", CPUModel: &model, CPUCount: 7, OS: "linux/amd64"}
	var b bytes.Buffer
	printFacts(&b, f, map[string]string{})
	for _, want := range []string{"go version             go1.99\n", "cpu model              Some CPU 3000\n",
		"cpus                   7 (runtime.NumCPU: the CPUs this process may run on)\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("header lacks %q:\n%s", want, b.String())
		}
	}
	f.CPUModel = nil
	b.Reset()
	printFacts(&b, f, map[string]string{"cpu_model": "/proc/cpuinfo has no \"model name\" line"})
	if want := "cpu model              unknown (/proc/cpuinfo has no \"model name\" line)\n"; !strings.Contains(b.String(), want) {
		t.Errorf("header lacks %q:\n%s", want, b.String())
	}
}
