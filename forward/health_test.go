package forward

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestHealthFailingFor: an output that delivers, or has nothing to
// deliver, is not failing; one whose attempts fail is, from its first
// failure until an attempt succeeds; a permanent refusal (the intake
// answers) ends it too.
func TestHealthFailingFor(t *testing.T) {
	var down atomic.Bool
	var refuse atomic.Bool
	s := &recSender{fail: func(int, *Batch) error {
		switch {
		case refuse.Load():
			refuse.Store(false)
			return Permanent("refused", errors.New("HTTP 400"))
		case down.Load():
			return errors.New("connection refused")
		}
		return nil
	}}
	p, _ := newTestPipeline(t, OutputSpec{Name: "out", Encoder: lineEncoder{}, Sender: s, QueueSize: 1 << 20})
	defer stopWithin(p, time.Second)
	failingFor := func() time.Duration { return p.Health()[0].FailingFor }
	if h := p.Health(); len(h) != 1 || h[0].Name != "out" || h[0].FailingFor != 0 || h[0].Stuck {
		t.Fatalf("idle output: %+v", h)
	}
	feed(p, 0, []string{line(0)}, 1)
	waitFor(t, "the first event delivered", func() bool { return len(s.got()) == 1 })
	if d := failingFor(); d != 0 {
		t.Fatalf("delivering output failing for %v", d)
	}
	down.Store(true)
	feed(p, 0, []string{line(1)}, 1)
	waitFor(t, "the output failing", func() bool { return failingFor() > 0 })
	first := failingFor()
	waitFor(t, "the failure lasting", func() bool { return failingFor() > first })
	down.Store(false)
	waitFor(t, "the event delivered once the intake is back", func() bool { return len(s.got()) == 2 })
	waitFor(t, "the output no longer failing", func() bool { return failingFor() == 0 })

	down.Store(true)
	feed(p, 0, []string{line(2)}, 1)
	waitFor(t, "the output failing again", func() bool { return failingFor() > 0 })
	refuse.Store(true) // the next attempt is refused for good
	down.Store(false)
	waitFor(t, "a refusal ending the failure", func() bool { return failingFor() == 0 })
}

// TestHealthStuck: a delivery attempt that outlives twice its timeout
// (and the slack) marks the output stuck, until it returns.
func TestHealthStuck(t *testing.T) {
	defer func(d time.Duration) { stuckSlack = d }(stuckSlack)
	stuckSlack = 20 * time.Millisecond
	s := &recSender{gate: make(chan struct{})} // each Send waits for a token
	p, _ := newTestPipeline(t, OutputSpec{Name: "out", Encoder: lineEncoder{}, Sender: s, QueueSize: 1 << 20, Timeout: 10 * time.Millisecond})
	defer stopWithin(p, time.Second)
	feed(p, 0, []string{line(0)}, 1)
	waitFor(t, "the attempt under way", func() bool { return p.Health()[0].SendingFor > 0 })
	waitFor(t, "the attempt stuck", func() bool { return p.Health()[0].Stuck })
	if h := p.Health()[0]; h.SendingFor <= StuckAfter(10*time.Millisecond) {
		t.Fatalf("stuck after %v, want more than %v", h.SendingFor, StuckAfter(10*time.Millisecond))
	}
	s.gate <- struct{}{}
	waitFor(t, "the event delivered", func() bool { return len(s.got()) == 1 })
	if h := p.Health()[0]; h.Stuck || h.SendingFor != 0 {
		t.Fatalf("after the attempt returned: %+v", h)
	}
}

func TestStuckAfter(t *testing.T) {
	if got := StuckAfter(30 * time.Second); got != 2*time.Minute {
		t.Errorf("StuckAfter(30s) = %v, want 2m", got)
	}
	if got := StuckAfter(0); got != 5*time.Minute {
		t.Errorf("StuckAfter(0) = %v, want 5m", got)
	}
}
