// Package alloctest measures heap allocations exactly, for the tests that
// guard the hot path's promise of zero allocations per message.
package alloctest

import (
	"runtime/debug"
	"sync"
	"testing"
)

// gcMu serialises measurements: the GC setting is process-wide.
var gcMu sync.Mutex

// PerRun is testing.AllocsPerRun(runs, f) with the garbage collector off.
// A collection empties every sync.Pool, and the refill after it would be
// charged to f; with it off, a pooled hot path in steady state measures
// exactly 0, so any allocation is a finding, not noise. f must not
// allocate much: nothing is reclaimed until PerRun returns. Safe for
// concurrent use (measurements run one at a time).
func PerRun(runs int, f func()) float64 {
	gcMu.Lock()
	defer gcMu.Unlock()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	return testing.AllocsPerRun(runs, f)
}
