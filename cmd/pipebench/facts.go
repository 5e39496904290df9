package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/pipe2go/pipe"
)

// Facts are the machine's pipe facts, typed. A fact that could not be read
// is null in JSON, and FactErrors in the Report says why, under the same
// key.
type Facts struct {
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
	f := Facts{OS: runtime.GOOS + "/" + runtime.GOARCH, PipeBuf: pipe.PIPE_BUF}
	var err error
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
