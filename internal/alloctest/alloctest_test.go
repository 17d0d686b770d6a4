package alloctest

import (
	"runtime/debug"
	"sync"
	"testing"
)

var sink []byte

func TestPerRun(t *testing.T) {
	if n := PerRun(100, func() { sink = make([]byte, 64) }); n != 1 {
		t.Errorf("one allocation per run measured as %v", n)
	}
	// A pooled buffer: exactly 0.
	pool := sync.Pool{New: func() any { return new([64 << 10]byte) }}
	pool.Put(pool.Get())
	if n := PerRun(1000, func() { b := pool.Get().(*[64 << 10]byte); b[0]++; pool.Put(b) }); n != 0 {
		t.Errorf("a pooled buffer measured as %v allocations per run", n)
	}
	old := debug.SetGCPercent(100)
	if old != 100 {
		t.Errorf("GC percent left at %d, want it restored to 100", old)
	}
}
