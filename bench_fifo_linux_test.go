package pipe_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pipe2go/pipe"
	"golang.org/x/sys/unix"
)

// BenchmarkOpenFIFOWaiting measures what waiting costs: the share of a core
// the process uses while n readers or n writers wait on n FIFOs with no
// peer, as "cpu-%" (each iteration is 100 ms of waiting).
func BenchmarkOpenFIFOWaiting(b *testing.B) {
	for _, flag := range []int{os.O_RDONLY, os.O_WRONLY} {
		for _, n := range []int{1, 100, 1000} {
			name := map[int]string{os.O_RDONLY: "readers", os.O_WRONLY: "writers"}[flag]
			b.Run(fmt.Sprintf("%s=%d", name, n), func(b *testing.B) {
				dir := b.TempDir()
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				done := make(chan struct{}, n)
				for i := range n {
					path := filepath.Join(dir, fmt.Sprint(i))
					if err := pipe.Mkfifo(path, 0o600); err != nil {
						b.Fatal(err)
					}
					go func() {
						if f, err := pipe.OpenFIFO(ctx, path, flag); err == nil {
							f.Close()
						}
						done <- struct{}{}
					}()
				}
				for waitingCount("pipe.OpenFIFO(") < n {
					time.Sleep(time.Millisecond)
				}
				time.Sleep(200 * time.Millisecond) // past the longest tick
				b.ResetTimer()
				before, start := cpuTime(b), time.Now()
				for range b.N {
					time.Sleep(100 * time.Millisecond)
				}
				b.ReportMetric(100*float64(cpuTime(b)-before)/float64(time.Since(start)), "cpu-%")
				b.StopTimer()
				cancel()
				for range n {
					<-done
				}
			})
		}
	}
}

// BenchmarkOpenFIFOConnect measures, as ns/op, how long a waiting OpenFIFO
// takes to return once its peer opens: a writer's peer blocking in open(2)
// (os.OpenFile, as cat does) or opening without blocking, and a reader's
// peer, a writer opening with os.OpenFile.
func BenchmarkOpenFIFOConnect(b *testing.B) {
	for _, tc := range []struct {
		name string
		flag int
		peer func(path string) (func(), error)
	}{
		{"writer/peer=blocking", os.O_WRONLY, func(path string) (func(), error) {
			errc := make(chan error, 1)
			var f *os.File
			go func() {
				var err error
				f, err = os.OpenFile(path, os.O_RDONLY, 0)
				errc <- err
			}()
			return func() {
				if <-errc == nil {
					f.Close()
				}
			}, nil
		}},
		{"writer/peer=nonblocking", os.O_WRONLY, func(path string) (func(), error) {
			fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
			return func() { unix.Close(fd) }, err
		}},
		{"reader/peer=blocking", os.O_RDONLY, func(path string) (func(), error) {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			return func() { f.Close() }, err
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			dir := b.TempDir()
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				path := filepath.Join(dir, fmt.Sprint(i))
				if err := pipe.Mkfifo(path, 0o600); err != nil {
					b.Fatal(err)
				}
				c := make(chan time.Time, 1)
				go func() {
					f, err := pipe.OpenFIFO(context.Background(), path, tc.flag)
					c <- time.Now()
					if err != nil {
						panic(err)
					}
					f.Close()
				}()
				for waitingCount("pipe.OpenFIFO(") < 1 {
					time.Sleep(100 * time.Microsecond)
				}
				time.Sleep(time.Millisecond)
				b.StartTimer()
				start := time.Now()
				release, err := tc.peer(path)
				if err != nil {
					b.Fatal(err)
				}
				at := <-c
				b.StopTimer()
				_ = at.Sub(start) // ns/op counts the same span
				release()
				b.StartTimer()
			}
		})
	}
}
