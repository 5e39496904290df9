package pipe_test

import (
	"bufio"
	"go/build/constraint"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The systems Go builds for that this package names, and the tags each sets.
var goosTags = map[string][]string{
	"aix": {"aix", "unix"}, "android": {"android", "linux", "unix"},
	"darwin": {"darwin", "unix"}, "ios": {"ios", "darwin", "unix"},
	"dragonfly": {"dragonfly", "unix"}, "freebsd": {"freebsd", "unix"},
	"netbsd": {"netbsd", "unix"}, "openbsd": {"openbsd", "unix"},
	"linux": {"linux", "unix"}, "solaris": {"solaris", "unix"},
	"illumos": {"illumos", "solaris", "unix"},
	"windows": {"windows"}, "plan9": {"plan9"}, "js": {"js"}, "wasip1": {"wasip1"},
}

// suffixSets are the file-name suffixes of constants.go's table, each as a
// build constraint.
var suffixSets = map[string]string{
	"_unix_nonlinux": "unix && !linux",
	"_unix":          "unix",
	"_nonlinux":      "!linux",
	"_other":         "!unix",
	"_bsd":           "darwin || dragonfly || freebsd || netbsd || openbsd",
	"_syscall":       "unix && !aix && !darwin",
	"_forklock":      "aix || darwin",
	"_ospipe":        "plan9 || windows",
	"_nopipes":       "!unix && !plan9 && !windows",
}

// TestFileNamesTellTheSystems: for every Go file of the module, the systems
// that build it (its name under Go's rule and its //go:build line) are the
// set its suffix names in constants.go's table, so that a reader can tell
// them from the name.
func TestFileNamesTellTheSystems(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	more, err := filepath.Glob(filepath.Join("cmd", "*", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, more...)
	if len(files) < 20 {
		t.Fatalf("found %d Go files; run from the module's root", len(files))
	}
	for _, path := range files {
		expr, err := buildLine(path)
		if err != nil {
			t.Fatal(err)
		}
		if expr != nil && !onlyOSTags(expr) {
			continue // race_test.go and the like: not about systems
		}
		stem := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(path), ".go"), "_test")
		want := "" // every system
		named := ""
		for suffix, set := range suffixSets {
			if strings.HasSuffix(stem, suffix) && len(suffix) > len(named) {
				named, want = suffix, set
			}
		}
		var goosName string
		if i := strings.LastIndexByte(stem, '_'); i >= 0 {
			if _, ok := goosTags[stem[i+1:]]; ok {
				goosName = stem[i+1:]
			}
		}
		if goosName != "" {
			if named != "" {
				t.Errorf("%s: named for %s and for %s", path, goosName, named)
				continue
			}
			want = goosName
		}
		var wantExpr constraint.Expr
		if want != "" {
			if wantExpr, err = constraint.Parse("//go:build " + want); err != nil {
				t.Fatal(err)
			}
		}
		for goos, tags := range goosTags {
			has := func(tag string) bool {
				for _, t := range tags {
					if t == tag {
						return true
					}
				}
				return false
			}
			builds := (goosName == "" || has(goosName)) && (expr == nil || expr.Eval(has))
			wanted := wantExpr == nil || wantExpr.Eval(has)
			if builds != wanted {
				t.Errorf("%s: builds on %s: %v; its name says %v (//go:build %v)", path, goos, builds, wanted, expr)
			}
		}
	}
}

// buildLine returns the file's //go:build constraint, or nil.
func buildLine(path string) (constraint.Expr, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if strings.HasPrefix(line, "package ") {
			break
		}
		if constraint.IsGoBuild(line) {
			return constraint.Parse(line)
		}
	}
	return nil, s.Err()
}

// onlyOSTags reports whether every tag in x names a system or unix.
func onlyOSTags(x constraint.Expr) bool {
	ok := true
	x.Eval(func(tag string) bool {
		if _, known := goosTags[tag]; !known && tag != "unix" {
			ok = false
		}
		return false
	})
	return ok
}
