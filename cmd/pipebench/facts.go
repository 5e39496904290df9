package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/pipe2go/pipe"
)

// Facts are the facts of this machine and build that the rows depend on,
// typed. A fact that could not be read is null in JSON, and FactErrors in
// the Report says why, under the same key.
type Facts struct {
	GoVersion       string  `json:"go_version"`           // runtime.Version()
	CPUModel        *string `json:"cpu_model"`            // /proc/cpuinfo's "model name"
	CPUCount        int     `json:"cpu_count"`            // runtime.NumCPU(): the CPUs this process may run on
	OS              string  `json:"os"`                   // GOOS/GOARCH
	Kernel          *string `json:"kernel"`               // /proc/sys/kernel/osrelease
	PipeBuf         int     `json:"pipe_buf"`             // bytes written atomically
	DefaultCapacity *int    `json:"default_capacity"`     // bytes, of a new pipe
	PipeMaxSize     *int    `json:"pipe_max_size"`        // bytes, the largest capacity without CAP_SYS_RESOURCE
	UserPagesSoft   *int    `json:"pipe_user_pages_soft"` // pages, 0: no limit
	UserPagesHard   *int    `json:"pipe_user_pages_hard"` // pages, 0: no limit
	PacketMode      bool    `json:"packet_mode"`          // whether pipe2(O_DIRECT) works; if not, FactErrors says why
	HugePages       *string `json:"transparent_hugepage"` // the bracketed mode of /sys/kernel/mm/transparent_hugepage/enabled
}

// facts reads the facts, and the errors of those it could not read keyed by
// their JSON names.
func facts() (Facts, map[string]string) {
	errs := map[string]string{}
	note := func(key string, err error) {
		if err != nil {
			errs[key] = err.Error()
		}
	}
	f := Facts{
		GoVersion: runtime.Version(),
		CPUCount:  runtime.NumCPU(),
		OS:        runtime.GOOS + "/" + runtime.GOARCH,
		PipeBuf:   pipe.PIPE_BUF,
	}
	var err error
	f.CPUModel, err = cpuModel("/proc/cpuinfo")
	note("cpu_model", err)
	f.Kernel, err = readString("/proc/sys/kernel/osrelease")
	note("kernel", err)
	f.PipeMaxSize, err = readInt("/proc/sys/fs/pipe-max-size")
	note("pipe_max_size", err)
	f.UserPagesSoft, err = readInt("/proc/sys/fs/pipe-user-pages-soft")
	note("pipe_user_pages_soft", err)
	f.UserPagesHard, err = readInt("/proc/sys/fs/pipe-user-pages-hard")
	note("pipe_user_pages_hard", err)
	f.HugePages, err = thpMode()
	note("transparent_hugepage", err)
	f.DefaultCapacity, err = defaultCapacity()
	note("default_capacity", err)

	if r, w, err := pipe.Pipe2(pipe.O_CLOEXEC | pipe.O_DIRECT); err != nil {
		note("packet_mode", err)
	} else {
		f.PacketMode = true
		_ = r.Close() // a fresh pipe nobody used: nothing to report
		_ = w.Close()
	}
	if len(errs) == 0 {
		errs = nil
	}
	return f, errs
}

func defaultCapacity() (*int, error) {
	r, w, err := pipe.Pipe2(pipe.O_CLOEXEC)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	defer w.Close()
	c, err := pipe.Capacity(r)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

func readString(name string) (*string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	s := strings.TrimSpace(string(b))
	return &s, nil
}

func readInt(name string) (*int, error) {
	s, err := readString(name)
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(*s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &n, nil
}

// cpuModel returns the "model name" of the CPUs listed in name, a Linux
// /proc/cpuinfo, the distinct ones joined by " + ". Where there is no such
// file, or no such line (Linux on arm64 has none), the model is unknown and
// the error says why.
func cpuModel(name string) (*string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var models []string
	for line := range strings.Lines(string(b)) {
		key, value, ok := strings.Cut(line, ":")
		value = strings.TrimSpace(value)
		if ok && strings.TrimSpace(key) == "model name" && value != "" && !slices.Contains(models, value) {
			models = append(models, value)
		}
	}
	if len(models) == 0 {
		return nil, fmt.Errorf("%s has no \"model name\" line", name)
	}
	m := strings.Join(models, " + ")
	return &m, nil
}

// thpMode returns the bracketed choice of the transparent huge page setting.
func thpMode() (*string, error) {
	const name = "/sys/kernel/mm/transparent_hugepage/enabled"
	s, err := readString(name)
	if err != nil {
		return nil, err
	}
	i, j := strings.Index(*s, "["), strings.Index(*s, "]")
	if i < 0 || j < i {
		return nil, fmt.Errorf("%s: no [mode] in %q", name, *s)
	}
	mode := (*s)[i+1 : j]
	return &mode, nil
}

func printFacts(w io.Writer, f Facts, errs map[string]string) {
	str := func(key string, v *string) string {
		if v == nil {
			return "unknown (" + errs[key] + ")"
		}
		return *v
	}
	num := func(key string, v *int, unit string) string {
		if v == nil {
			return "unknown (" + errs[key] + ")"
		}
		return strconv.Itoa(*v) + " " + unit
	}
	packet := "yes"
	if !f.PacketMode {
		packet = "no (" + errs["packet_mode"] + ")"
	}
	fmt.Fprintf(w, "go version             %s\n", f.GoVersion)
	fmt.Fprintf(w, "cpu model              %s\n", str("cpu_model", f.CPUModel))
	fmt.Fprintf(w, "cpus                   %d (runtime.NumCPU: the CPUs this process may run on)\n", f.CPUCount)
	fmt.Fprintf(w, "os                     %s\n", f.OS)
	fmt.Fprintf(w, "kernel                 %s\n", str("kernel", f.Kernel))
	fmt.Fprintf(w, "PIPE_BUF               %d bytes\n", f.PipeBuf)
	fmt.Fprintf(w, "default capacity       %s\n", num("default_capacity", f.DefaultCapacity, "bytes"))
	fmt.Fprintf(w, "pipe-max-size          %s\n", num("pipe_max_size", f.PipeMaxSize, "bytes (largest capacity without CAP_SYS_RESOURCE)"))
	fmt.Fprintf(w, "pipe-user-pages-soft   %s\n", num("pipe_user_pages_soft", f.UserPagesSoft, "pages (0: no limit)"))
	fmt.Fprintf(w, "pipe-user-pages-hard   %s\n", num("pipe_user_pages_hard", f.UserPagesHard, "pages (0: no limit)"))
	fmt.Fprintf(w, "packet mode (O_DIRECT) %s\n", packet)
	fmt.Fprintf(w, "transparent hugepages  %s\n", str("transparent_hugepage", f.HugePages))
}
