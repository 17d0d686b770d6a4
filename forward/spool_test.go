package forward

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
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
		OutputSpec{Name: "good", Encoder: lineEncoder{}, Sender: good, QueueSize: firstBlockSize, MaxEvents: 50},
		OutputSpec{Name: "dead", Encoder: lineEncoder{}, Sender: dead, QueueSize: firstBlockSize, MaxEvents: 50})
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
	p, _ := newSpooledPipeline(t, sp, OutputSpec{Name: "out", Encoder: lineEncoder{}, Sender: first, QueueSize: 1 << 20, MaxEvents: 100})
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
	p, _ = newSpooledPipeline(t, sp, OutputSpec{Name: "out", Encoder: lineEncoder{}, Sender: second, QueueSize: 1 << 20, MaxEvents: 100})
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

// TestSpoolBacklogFollowsRenamedAndReorderedOutputs: routed events left in
// the spool for two outputs reach the right ones after a restart that
// renames one (spool.Options.Rename) and swaps their order; the output
// masks kept in spooled records refer to the old order.
func TestSpoolBacklogFollowsRenamedAndReorderedOutputs(t *testing.T) {
	dir := t.TempDir()
	down := func(int, *Batch) error { return errors.New("connection refused") }
	sp := openSpool(t, dir, "x", "y")
	set := metrics.NewSet()
	p, err := New(Options{
		Inputs:  []InputSpec{{Name: "a"}, {Name: "b"}},
		Outputs: []OutputSpec{{Name: "x", Encoder: lineEncoder{}, Sender: &recSender{fail: down}, QueueSize: 1 << 20}, {Name: "y", Encoder: lineEncoder{}, Sender: &recSender{fail: down}, QueueSize: 1 << 20}},
		Routes:  []RouteSpec{{Match: Match{Inputs: []int{0}}, Outputs: []int{0}}, {Match: Match{Inputs: []int{1}}, Outputs: []int{1}}},
		Spool:   sp, MaxPayload: 256 << 10, Metrics: set, Log: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	forX, wantX := frames(0, 300)
	forY, wantY := frames(300, 600)
	feed(p, 0, forX, 10)
	feed(p, 1, forY, 10)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	p.Stop(ctx)
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}

	sp, err = spool.Open(spool.Options{Dir: dir, MaxSize: 64 << 20, SegmentSize: 1 << 20, FsyncInterval: 50 * time.Millisecond,
		Consumers: []string{"y", "z"}, Rename: map[string]string{"x": "z"}, Metrics: metrics.NewSet(), Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	y, z := &recSender{}, &recSender{}
	p, err = New(Options{
		Inputs:  []InputSpec{{Name: "a"}, {Name: "b"}},
		Outputs: []OutputSpec{{Name: "y", Encoder: lineEncoder{}, Sender: y, QueueSize: 1 << 20}, {Name: "z", Encoder: lineEncoder{}, Sender: z, QueueSize: 1 << 20}},
		Routes:  []RouteSpec{{Match: Match{Inputs: []int{0}}, Outputs: []int{1}}, {Match: Match{Inputs: []int{1}}, Outputs: []int{0}}},
		Spool:   sp, MaxPayload: 256 << 10, Metrics: metrics.NewSet(), Log: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the backlogs", func() bool { return len(y.got()) >= 300 && len(z.got()) >= 300 })
	p.Stop(context.Background())
	if got := strings.Join(z.got(), ""); got != wantX {
		t.Errorf("renamed output z: %d events, not x's backlog in order", len(z.got()))
	}
	if got := strings.Join(y.got(), ""); got != wantY {
		t.Errorf("moved output y: %d events, not its own backlog in order", len(y.got()))
	}
}

// TestSpoolMarksBatchesBeforeSending: an output delivering from memory
// marks in the spool how far it was handed events before its Send starts,
// so that a crash during (or after) the Send counts those events as
// redelivered at the next start; spool.Inspect shows them handed out.
func TestSpoolMarksBatchesBeforeSending(t *testing.T) {
	dir := t.TempDir()
	sp := openSpool(t, dir, "out")
	defer sp.Close()
	out := &holdSender{gate: make(chan struct{})}
	p, _ := newSpooledPipeline(t, sp, OutputSpec{Name: "out", Encoder: lineEncoder{}, Sender: out, QueueSize: 1 << 20, MaxEvents: 100})
	in, _ := frames(0, 100)
	waitFor(t, "the output on memory", func() bool { return !p.sources[0].overflow.Load() })
	feed(p, 0, in, 100)
	waitFor(t, "a Send under way", func() bool { return out.sending.Load() > 0 })
	if err := sp.Sync(); err != nil {
		t.Fatal(err)
	}
	rep, err := spool.Inspect(dir)
	if err != nil || len(rep.Consumers) != 1 {
		t.Fatalf("Inspect: %v %+v", err, rep)
	}
	if h, n := rep.Consumers[0].Handed, out.sending.Load(); h < n {
		t.Fatalf("%d events handed out in the spool while a Send of %d is under way", h, n)
	}
	close(out.gate)
	p.Stop(context.Background())
}

// holdSender holds every Send until gate is closed; sending is the size of
// the first batch it holds.
type holdSender struct {
	gate    chan struct{}
	sending atomic.Int64
}

func (s *holdSender) Send(ctx context.Context, b *Batch) error {
	s.sending.CompareAndSwap(0, int64(b.Len()))
	select {
	case <-s.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *holdSender) Close() error { return nil }
