//go:build race

package alloctest

// Race reports whether the race detector is on: it allocates where the
// code does not, so the allocation guards and timing tests skip under it.
const Race = true
