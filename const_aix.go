package pipe

// PIPE_BUF is the largest write AIX keeps atomic: a write of up to PIPE_BUF
// bytes to a pipe is never interleaved with other writers' data, and when
// non-blocking it is written whole or fails with EAGAIN. Larger writes may
// be split.
const PIPE_BUF = 32768
