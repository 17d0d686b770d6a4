package forward

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/spool"
)

func openSpool(t *testing.T, dir string, consumers ...string) *spool.Spool {
	t.Helper()
	s, err := spool.Open(spool.Options{Dir: dir, MaxSize: 64 << 20, SegmentSize: 1 << 20,
		FsyncInterval: 50 * time.Millisecond, Consumers: consumers, Metrics: metrics.NewSet()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newSpooledPipeline(t *testing.T, sp *spool.Spool, specs ...OutputSpec) (*Pipeline, *metrics.Set) {
	t.Helper()
	set := metrics.NewSet()
	p, err := New(Options{
		Inputs:     []InputSpec{{Name: "tcp"}},
		Outputs:    specs,
		MaxPayload: 256 << 10,
		Spool:      sp,
		Metrics:    set,
		Log:        zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, set
}

func frames(from, to int) ([]string, string) {
	var f, want []string
	for i := from; i < to; i++ {
		f = append(f, line(i))
		want = append(want, alert(i)+"\n")
	}
	return f, strings.Join(want, "")
}

// TestSpoolDeadOutputDoesNotStallOthers: with a spool, an output that fails
// overflows to disk instead of stopping intake; the healthy output gets
// everything, and once the dead one recovers it catches up from the spool,
// in order, exactly once.
func TestSpoolDeadOutputDoesNotStallOthers(t *testing.T) {
	sp := openSpool(t, t.TempDir(), "good", "dead")
	defer sp.Close()
	down := true
	good := &recSender{}
	dead := &recSender{fail: func(int, *Batch) error {
		if down {
			return errors.New("connection refused")
		}
		return nil
	}}
	p, _ := newSpooledPipeline(t, sp,
		OutputSpec{Name: "good", Encoder: NDJSONEncoder{}, Sender: good, QueueSize: firstBlockSize, MaxEvents: 50},
		OutputSpec{Name: "dead", Encoder: NDJSONEncoder{}, Sender: dead, QueueSize: firstBlockSize, MaxEvents: 50})
	in, want := frames(0, 2000)
	done := make(chan struct{})
	go func() { feed(p, 0, in, 7); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("intake stalled behind the dead output")
	}
	waitFor(t, "the healthy output", func() bool { return len(good.got()) == 2000 })
	dead.mu.Lock()
	down = false
	dead.mu.Unlock()
	waitFor(t, "the recovered output", func() bool { return len(dead.got()) >= 2000 })
	if lost := p.Stop(context.Background()); lost != 0 {
		t.Fatalf("lost %d", lost)
	}
	for name, s := range map[string]*recSender{"good": good, "dead": dead} {
		if got := strings.Join(s.got(), ""); got != want {
			t.Errorf("%s output: %d events, not every event once and in order", name, len(s.got()))
		}
	}
}

// TestSpoolReplaysAfterRestart: events an output could not deliver before
// Stop are delivered by the next pipeline on the same spool; what was
// delivered is not sent again.
func TestSpoolReplaysAfterRestart(t *testing.T) {
	dir := t.TempDir()
	sp := openSpool(t, dir, "out")
	first := &recSender{}
	first.fail = func(int, *Batch) error {
		if len(first.events) >= 200 { // the intake dies after 200 events
			return errors.New("connection reset")
		}
		return nil
	}
	p, _ := newSpooledPipeline(t, sp, OutputSpec{Name: "out", Encoder: NDJSONEncoder{}, Sender: first, QueueSize: 1 << 20, MaxEvents: 100})
	in, want := frames(0, 1000)
	feed(p, 0, in, 10)
	waitFor(t, "200 events", func() bool { return len(first.got()) >= 200 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if lost := p.Stop(ctx); lost != 0 {
		t.Fatalf("Stop reported %d lost; the spool keeps them", lost)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("Stop waited %v on a failing intake", time.Since(start))
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}

	sp = openSpool(t, dir, "out")
	defer sp.Close()
	second := &recSender{}
	p, _ = newSpooledPipeline(t, sp, OutputSpec{Name: "out", Encoder: NDJSONEncoder{}, Sender: second, QueueSize: 1 << 20, MaxEvents: 100})
	more, want2 := frames(1000, 1100)
	feed(p, 0, more, 10)
	waitFor(t, "replay and new events", func() bool { return len(first.got())+len(second.got()) >= 1100 })
	p.Stop(context.Background())
	// Every event, in order of first arrival; delivered again only what a
	// block not yet acknowledged held (a disk block is at most 32 KiB).
	seen := map[string]bool{}
	var order []string
	dups := 0
	for _, e := range append(first.got(), second.got()...) {
		if seen[e] {
			dups++
			continue
		}
		seen[e] = true
		order = append(order, e)
	}
	if strings.Join(order, "") != want+want2 {
		t.Fatalf("across the restart: %d + %d events, not every event in order", len(first.got()), len(second.got()))
	}
	if maxDups := diskBlockSize / len(alert(0)); dups > maxDups {
		t.Fatalf("%d events delivered twice, more than one disk block (%d)", dups, maxDups)
	}
}
