//go:build !linux

package pipe

import (
	"errors"
	"io"
)

// Only Linux has vmsplice(2): the writer cannot be made, and the methods it
// would use are never reached.

// vmConn is nothing here: no write end is ever used.
type vmConn = struct{}

func (v *VmspliceWriter) init(size int) error {
	return unsupported("VmspliceWriter (vmsplice(2))")
}

func (v *VmspliceWriter) release() {}

func (v *VmspliceWriter) send(b []byte) (int, bool, error) {
	return 0, false, unsupported("VmspliceWriter (vmsplice(2))")
}

func (v *VmspliceWriter) writeThrough(p []byte) (int, error) {
	return 0, unsupported("VmspliceWriter (vmsplice(2))")
}

func (v *VmspliceWriter) packets() bool { return false }

func (v *VmspliceWriter) copiedPlainly() {}

func (v *VmspliceWriter) ownPipe(r io.Reader) error { return nil }

func (v *VmspliceWriter) leftPipe(end uint64) bool { return false }

func freshPages(b []byte) error {
	return unsupported("VmspliceWriter (vmsplice(2))")
}

// wayChooser is nothing here: no commit is ever made.
type wayChooser struct{}

func (c *wayChooser) untimed(ns int64) {}

func (c *wayChooser) timing() bool { return false }

// errMapInstead is never returned here.
var errMapInstead = errors.New("map instead")

func nanotime() int64 { return 0 }
