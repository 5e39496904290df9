//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package pipe

// PIPE_BUF is the largest write darwin and the BSDs keep atomic: a write of
// up to PIPE_BUF bytes to a pipe is never interleaved with other writers'
// data, and when non-blocking it is written whole or fails with EAGAIN.
// Larger writes may be split.
const PIPE_BUF = 512
