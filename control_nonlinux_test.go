//go:build !linux

package pipe_test

const linux = false
