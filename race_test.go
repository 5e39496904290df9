//go:build race

package pipe_test

// raceEnabled tells whether the race detector instruments this test binary,
// which slows Go code several times: CPU bounds allow for it.
const raceEnabled = true
