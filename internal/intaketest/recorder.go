package intaketest

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// recorder holds what a mock received. Its methods are safe for concurrent
// use.
type recorder struct {
	mu       sync.Mutex
	events   [][]byte
	count    int
	drop     bool // count events without keeping them
	problems []string
	allow    bool
	changed  chan struct{} // closed and replaced at each change
}

func newRecorder(tb testing.TB, name string) *recorder {
	r := &recorder{changed: make(chan struct{})}
	tb.Cleanup(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.problems) > 0 && !r.allow {
			tb.Errorf("%s intake saw %d problem(s), first: %s", name, len(r.problems), r.problems[0])
		}
	})
	return r
}

// add records accepted events (already copied by the caller).
func (r *recorder) add(events ...[]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.count += len(events)
	if !r.drop {
		r.events = append(r.events, events...)
	}
	r.signal()
}

// problem records a failed check.
func (r *recorder) problem(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
	r.signal()
}

// signal wakes the waiters; r.mu is held.
func (r *recorder) signal() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// wait waits until cond (called with r.mu held) is true or timeout passes,
// and returns cond's last result.
func (r *recorder) wait(timeout time.Duration, cond func() bool) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		r.mu.Lock()
		ok, ch := cond(), r.changed
		r.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-t.C:
			r.mu.Lock()
			defer r.mu.Unlock()
			return cond()
		}
	}
}

func (r *recorder) snapshot() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([][]byte, len(r.events))
	for i, e := range r.events {
		out[i] = append([]byte(nil), e...)
	}
	return out
}

// Methods shared by the mocks through embedding.

// Events returns copies of the events received so far, in order. For the
// HTTP mock an event is one line of /plain/batch or NDJSON, or one string
// of /batch's "jsons"; for the syslog mock it is the MSG part of an RFC 5424
// message, or the whole message when it is not RFC 5424.
func (r *recorder) Events() [][]byte { return r.snapshot() }

// Count returns the number of events received so far (also counted after
// KeepEvents(false)).
func (r *recorder) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count
}

// WaitEvents waits until at least n events were received or timeout
// passes, and reports whether they were.
func (r *recorder) WaitEvents(n int, timeout time.Duration) bool {
	return r.wait(timeout, func() bool { return r.count >= n })
}

// KeepEvents(false) makes the mock count events without keeping them
// (benchmarks); Events then returns what was kept before.
func (r *recorder) KeepEvents(keep bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.drop = !keep
}

// Problems returns the failed checks so far.
func (r *recorder) Problems() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.problems...)
}

// AllowProblems keeps failed checks from failing the test (a test that
// sends bad input on purpose); Problems still lists them.
func (r *recorder) AllowProblems() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.allow = true
}
