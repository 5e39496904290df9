//go:build unix

package pipe_test

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/pipe2go/pipe"
)

// BenchmarkPipeline compares a Pipeline running head -c N /dev/zero | cat |
// wc -c with sh -c running the same three commands. The bytes go from
// program to program through the kernel's pipes either way and never
// through Go, so the throughput should be the same; what differs is how the
// processes are started (sh is one process more, and forks from a smaller
// one). Each operation runs the whole pipeline once and checks wc's count.
func BenchmarkPipeline(b *testing.B) {
	needProgram(b, "sh", "head", "cat", "wc")
	for _, size := range []int{1 << 20, 64 << 20, 512 << 20} {
		n := strconv.Itoa(size)
		for _, way := range []string{"Pipeline", "sh"} {
			b.Run(fmt.Sprintf("size=%s/way=%s", sizeName(size), way), func(b *testing.B) {
				b.SetBytes(int64(size))
				for b.Loop() {
					var out []byte
					var err error
					if way == "sh" {
						out, err = exec.Command("sh", "-c", "head -c "+n+" /dev/zero | cat | wc -c").Output()
					} else {
						var p *pipe.Pipeline
						p, err = pipe.NewPipeline(pipe.Command("head", "-c", n, "/dev/zero"), pipe.Command("cat"), pipe.Command("wc", "-c"))
						if err == nil {
							out, err = p.Output()
						}
					}
					if err != nil || strings.TrimSpace(string(out)) != n {
						b.Fatalf("%s: %q, %v; want %s", way, out, err, n)
					}
				}
			})
		}
	}
}
