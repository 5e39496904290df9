//go:build js || wasip1

package main

// js and wasip1 have no pipes: each row must be skipped, with its reason.
const expectRows = allSkipped
