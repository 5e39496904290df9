package pipe_test

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// waitBlocked waits until some goroutine is blocked, parked in the runtime
// poller ("IO wait") or sleeping in a system call, with frame (such as
// "pipe.Splice(") on its stack. A test that closes or times out a call
// must first see it blocked, or it may test the call's start instead.
func waitBlocked(t testing.TB, frame string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			header, _, _ := strings.Cut(g, "\n")
			if (strings.Contains(header, "[IO wait") || strings.Contains(header, "[syscall")) && strings.Contains(g, frame) {
				return
			}
		}
	}
	t.Fatalf("no goroutine blocked in %s within 10s", frame)
}
