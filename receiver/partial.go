package receiver

import (
	"sync"
	"sync/atomic"
)

// DefaultMaxPartialBytes is the cap of a PartialBudget made with a size of
// zero or less, and of an input started without one (256 MiB).
const DefaultMaxPartialBytes = 256 << 20

// PartialBudget caps the bytes that the connections sharing it (every tcp
// and tls input of a process) hold in partial frames: frames split across
// reads, waiting in a connection's scratch buffer for their end. An
// octet-counted frame holds its declared size as soon as its count is read,
// so without a cap 1000 connections each announcing a 16 MiB frame would pin
// 16 GiB. When a read takes the total above the cap, the connection holding
// the largest partial frame is closed (and counted on its input); more are
// closed until the total is back under the cap.
//
// The cost per read is one comparison; an atomic add only when the bytes a
// connection holds change, and a lock only above the cap. A PartialBudget is
// safe for concurrent use and lives as long as the inputs using it.
type PartialBudget struct {
	max    int64
	total  atomic.Int64 // bytes held, all connections
	doomed atomic.Int64 // bytes held by connections being closed for the cap

	mu    sync.Mutex
	holds map[*partialHold]struct{}
}

// NewPartialBudget returns a budget of maxBytes (DefaultMaxPartialBytes if
// maxBytes <= 0).
func NewPartialBudget(maxBytes int64) *PartialBudget {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxPartialBytes
	}
	return &PartialBudget{max: maxBytes, holds: map[*partialHold]struct{}{}}
}

// Max returns the cap in bytes.
func (b *PartialBudget) Max() int64 { return b.max }

// Held returns the bytes currently held in partial frames.
func (b *PartialBudget) Held() int64 { return b.total.Load() }

// partialHold is one connection's account. last belongs to the
// connection's reader; held is what the budget reads; doomed is guarded by
// the budget's mutex.
type partialHold struct {
	last   int64
	held   atomic.Int64
	doomed int64
	// over closes the connection for the cap; it is called without the
	// budget's lock and must not block.
	over func(held int64)
}

// register adds h, whose connection holds nothing yet.
func (b *PartialBudget) register(h *partialHold) {
	b.mu.Lock()
	b.holds[h] = struct{}{}
	b.mu.Unlock()
}

// release removes h when its connection is gone. It is called by the
// connection's reader, after its last set.
func (b *PartialBudget) release(h *partialHold) {
	b.mu.Lock()
	delete(b.holds, h)
	if h.doomed != 0 {
		b.doomed.Add(-h.doomed)
		h.doomed = 0
	}
	b.mu.Unlock()
	if h.last != 0 {
		b.total.Add(-h.last)
		h.last = 0
	}
}

// set records that h's connection now holds n bytes in a partial frame.
// Only the connection's reader calls it, once per read.
func (b *PartialBudget) set(h *partialHold, n int64) {
	if n == h.last {
		return
	}
	d := n - h.last
	h.last = n
	h.held.Store(n)
	if t := b.total.Add(d); d > 0 && t-b.doomed.Load() > b.max {
		b.overflow()
	}
}

// overflow closes the connections holding the largest partial frames until
// what the others hold fits the cap.
func (b *PartialBudget) overflow() {
	for {
		b.mu.Lock()
		if b.total.Load()-b.doomed.Load() <= b.max {
			b.mu.Unlock()
			return
		}
		var victim *partialHold
		var most int64
		for h := range b.holds {
			if n := h.held.Load(); h.doomed == 0 && n > most {
				victim, most = h, n
			}
		}
		if victim == nil {
			b.mu.Unlock()
			return
		}
		victim.doomed = most
		b.doomed.Add(most)
		b.mu.Unlock()
		victim.over(most)
	}
}
