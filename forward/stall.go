package forward

import (
	"sync"
	"sync/atomic"
	"time"
	"weak"
)

// Backpressure as it happens. A producer waiting for room downstream (a
// full queue, or with a spool a full or failing spool) stops its event
// loop or TLS connection reading. Each Producer has a stallClock holding
// when its current wait began; a metrics scrape walks an input's clocks,
// so a stall shows while it lasts:
//
//	dtrelay_input_blocked{input}                    producers waiting now
//	dtrelay_input_backpressure_seconds_total{input} waits ended, plus the time so far of those going on
//
// A producer counts as blocked once it has waited stallVisibleAfter. The
// hot path pays nothing without a spool (the clock is read only when a push
// has to wait); with a spool, whose every publish is a write to its file,
// a publish is timed as a whole and counts when it lasts stallVisibleAfter.

// stallVisibleAfter is how long a wait lasts before it shows as blocked,
// and the shortest spooled publish counted as a wait.
const stallVisibleAfter = time.Millisecond

var monoBase = time.Now()

// monoNow is a monotonic clock in nanoseconds, never 0.
func monoNow() int64 { return int64(time.Since(monoBase)) + 1 }

// stallClock is one Producer's. since is when its current wait began
// (monoNow), 0 while it is not waiting; it is written by the producer's
// goroutine and read by scrapes.
type stallClock struct {
	since atomic.Int64
	st    *stalls
}

// begin marks the start of a wait and returns its time.
func (c *stallClock) begin() int64 {
	t := monoNow()
	c.since.Store(t)
	return t
}

// end closes the wait begun at start, counting it if it lasted at least
// least nanoseconds.
func (c *stallClock) end(start, least int64) {
	d := monoNow() - start
	c.since.Store(0) // before the total grows: a scrape in between sees less, never twice
	if d >= least {
		c.st.ended.Add(d)
	}
}

// stalls gathers the stall clocks of one input's producers. Producers come
// and go with their sync.Pool: the list holds them weakly and forgets the
// collected ones. Safe for concurrent use.
type stalls struct {
	ended atomic.Int64 // nanoseconds of the waits that ended

	mu     sync.Mutex
	clocks []weak.Pointer[stallClock]
	last   float64 // the seconds last reported: they never go back
}

// clock returns a new clock registered in s.
func (s *stalls) clock() *stallClock {
	c := &stallClock{st: s}
	s.mu.Lock()
	s.prune()
	s.clocks = append(s.clocks, weak.Make(c))
	s.mu.Unlock()
	return c
}

// prune drops the clocks of collected producers; s.mu is held.
func (s *stalls) prune() {
	live := s.clocks[:0]
	for _, w := range s.clocks {
		if w.Value() != nil {
			live = append(live, w)
		}
	}
	clear(s.clocks[len(live):])
	s.clocks = live
}

// read returns how many producers are blocked now and the seconds spent
// blocked so far, waits in progress included.
func (s *stalls) read() (blocked int, seconds float64) {
	now := monoNow()
	s.mu.Lock()
	defer s.mu.Unlock()
	total := s.ended.Load()
	for _, w := range s.clocks {
		c := w.Value()
		if c == nil {
			continue
		}
		if since := c.since.Load(); since != 0 && now-since >= int64(stallVisibleAfter) {
			blocked++
			total += now - since
		}
	}
	s.last = max(s.last, float64(total)/1e9)
	return blocked, s.last
}
