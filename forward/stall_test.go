package forward

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/spool"
)

// TestStallShownPerProducer: two readers (event loops, TLS connections)
// waiting on one full queue show as 2 blocked, and the seconds count both
// waits as they go on.
func TestStallShownPerProducer(t *testing.T) {
	s := &recSender{gate: make(chan struct{})}
	p, set := newTestPipeline(t, OutputSpec{Name: "out", Encoder: lineEncoder{}, Sender: s, QueueSize: firstBlockSize, MaxEvents: 1})
	const blocked, seconds = `dtrelay_input_blocked{input="tcp"}`, `dtrelay_input_backpressure_seconds_total{input="tcp"}`
	feed(p, 0, []string{line(0)}, 1) // fills the queue
	var wg sync.WaitGroup
	for i := 1; i <= 2; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); feed(p, 0, []string{line(i)}, 1) }()
	}
	waitFor(t, "both producers shown blocked", func() bool { return metric(set, blocked) == "2" })
	s0, t0 := metricFloat(t, set, seconds), time.Now()
	waitFor(t, "0.2 s of backpressure", func() bool { return metricFloat(t, set, seconds) >= s0+0.2 })
	elapsed, grew := time.Since(t0).Seconds(), metricFloat(t, set, seconds)-s0
	if grew < 1.5*elapsed || grew > 2*elapsed+0.01 {
		t.Fatalf("seconds grew %.3f in %.3fs with 2 producers blocked, want about twice that", grew, elapsed)
	}
	close(s.gate)
	wg.Wait()
	waitFor(t, "all delivered", func() bool { return len(s.got()) == 3 })
	if v := metric(set, blocked); v != "0" {
		t.Fatalf("blocked = %q after the stall", v)
	}
}

// TestSpoolFullShowsBlocked: with a spool, intake waits when the spool is
// full (when_full: block); the stall shows while it lasts and ends when the
// output comes back and frees the spool.
func TestSpoolFullShowsBlocked(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	spec := OutputSpec{Name: "out", Encoder: lineEncoder{}, Sender: downSender(&down), QueueSize: 16 << 10, MaxEvents: 100}
	sp, p, set := spoolPipeline(t, spool.Options{Dir: t.TempDir(), MaxSize: 64 << 10, SegmentSize: 16 << 10, FsyncInterval: time.Hour}, spec)
	defer sp.Close()
	const blocked, seconds = `dtrelay_input_blocked{input="tcp"}`, `dtrelay_input_backpressure_seconds_total{input="tcp"}`
	const n = 1000 // ~250 KiB, several times the spool
	in, _ := frames(0, n)
	fed := make(chan struct{})
	go func() { feed(p, 0, in, 10); close(fed) }()
	waitFor(t, "intake waiting on the full spool", func() bool { return sp.Stats().Blocked == 1 })
	waitFor(t, "the producer shown blocked", func() bool { return metric(set, blocked) == "1" })
	first := metricFloat(t, set, seconds)
	waitFor(t, "the seconds growing during the stall", func() bool { return metricFloat(t, set, seconds) >= first+0.05 })
	down.Store(false)
	select {
	case <-fed:
	case <-time.After(20 * time.Second):
		t.Fatal("intake still blocked after the output came back")
	}
	if v := metric(set, blocked); v != "0" {
		t.Fatalf("blocked = %q after the stall", v)
	}
	p.Stop(t.Context())
}
