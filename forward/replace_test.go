package forward

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/parser"
	"github.com/dtrelay/dtrelay/spool"
)

// closeCounter is a recSender that counts its Send and Close calls.
type closeCounter struct {
	*recSender
	entered, closed atomic.Int32
}

func (c *closeCounter) Send(ctx context.Context, b *Batch) error {
	c.entered.Add(1)
	return c.recSender.Send(ctx, b)
}

func (c *closeCounter) Close() error { c.closed.Add(1); return nil }

// tagEncoder writes the payload behind a tag, so that which encoder
// encoded an event shows in what the sender got.
type tagEncoder struct{ tag string }

func (e tagEncoder) Append(dst []byte, r *Record) ([]byte, error) {
	if r.NotJSON {
		return dst, ErrSkipNotJSON
	}
	return append(append(dst, e.tag...), r.Payload...), nil
}

// exactlyOnce fails unless got, with each tag cut off, is want as a
// multiset.
func exactlyOnce(t *testing.T, got []string, want []string) {
	t.Helper()
	var g []string
	for _, s := range got {
		for _, tag := range []string{"old:", "new:"} {
			if len(s) > len(tag) && s[:len(tag)] == tag {
				s = s[len(tag):]
				break
			}
		}
		g = append(g, s)
	}
	slices.Sort(g)
	w := slices.Clone(want)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Fatalf("delivered %d events, want each of %d once", len(g), len(w))
	}
}

func linesFrom(n, from int) (lines, payloads []string) {
	for i := from; i < from+n; i++ {
		lines, payloads = append(lines, line(i)), append(payloads, alert(i))
	}
	return lines, payloads
}

// TestReplaceOutputHandsOverTheQueue: what the old sender is sending when
// the output is replaced goes with it, the queued rest with the new one,
// each event once; the old sender is closed; the new settings apply.
func TestReplaceOutputHandsOverTheQueue(t *testing.T) {
	oldS := &closeCounter{recSender: &recSender{gate: make(chan struct{})}}
	p, _ := newTestPipeline(t, OutputSpec{Name: "out", Encoder: tagEncoder{"old:"}, Sender: oldS, QueueSize: 1 << 20, MaxEvents: 10})
	lines, want := linesFrom(200, 0)
	feed(p, 0, lines, 20)
	waitFor(t, "the first batch at the old sender", func() bool { return oldS.entered.Load() == 1 })
	newS := &recSender{}
	done, err := p.ReplaceOutput(0, OutputSpec{Name: "out", Encoder: tagEncoder{"new:"}, Sender: newS, QueueSize: 1 << 20, MaxEvents: 50})
	if err != nil {
		t.Fatal(err)
	}
	oldS.gate <- struct{}{} // the batch it holds
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the replacement was not applied")
	}
	close(oldS.gate)
	waitFor(t, "every event", func() bool { return len(oldS.got())+len(newS.got()) >= len(want) })
	if n := stopWithin(p, 5*time.Second); n != 0 {
		t.Fatalf("%d undelivered", n)
	}
	if len(oldS.got()) != 10 {
		t.Errorf("the old sender sent %d events, want its one batch of 10", len(oldS.got()))
	}
	for _, e := range oldS.got() {
		if e[:4] != "old:" {
			t.Fatalf("old sender got %q", e)
		}
	}
	for _, e := range newS.got() {
		if e[:4] != "new:" {
			t.Fatalf("new sender got %q, encoded by the old encoder", e)
		}
	}
	exactlyOnce(t, append(oldS.got(), newS.got()...), want)
	if oldS.closed.Load() != 1 {
		t.Errorf("old sender closed %d times, want once", oldS.closed.Load())
	}
	if m := slices.Max(newS.batches); m > 50 || m <= 10 {
		t.Errorf("new sender's largest batch %d: max_events 50 not applied", m)
	}
}

// TestReplaceOutputRescuesAFailingOutput: an output retrying against an
// intake that is gone takes its new address at once (no waiting out the
// backoff), and the batch it was retrying goes there, re-encoded, once.
func TestReplaceOutputRescuesAFailingOutput(t *testing.T) {
	dead := &closeCounter{recSender: &recSender{fail: func(int, *Batch) error { return errors.New("connection refused") }}}
	p, set := newTestPipeline(t, OutputSpec{Name: "out", Encoder: tagEncoder{"old:"}, Sender: dead, QueueSize: 1 << 20, MaxEvents: 30})
	lines, want := linesFrom(100, 0)
	feed(p, 0, lines, 10)
	// Let the backoff grow past what the test waits below.
	waitFor(t, "retries", func() bool { return metricInt(t, set, `dtrelay_output_retries_total{output="out"}`) >= 3 })
	alive := &recSender{}
	if _, err := p.ReplaceOutput(0, OutputSpec{Name: "out", Encoder: tagEncoder{"new:"}, Sender: alive, QueueSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every event at the new intake", func() bool { return len(alive.got()) >= len(want) })
	if n := stopWithin(p, 5*time.Second); n != 0 {
		t.Fatalf("%d undelivered", n)
	}
	for _, e := range alive.got() {
		if e[:4] != "new:" {
			t.Fatalf("new sender got %q, encoded by the old encoder", e)
		}
	}
	exactlyOnce(t, alive.got(), want)
	if dead.closed.Load() != 1 {
		t.Errorf("old sender closed %d times", dead.closed.Load())
	}
}

// TestReplaceOutputKeepsAcks: events the old sender's intake acknowledged
// before it failed are not sent again by the new one.
func TestReplaceOutputKeepsAcks(t *testing.T) {
	old := &ackSender{perAttempt: 4}
	p, _ := newTestPipeline(t, OutputSpec{Name: "out", Encoder: lineEncoder{}, Sender: old, QueueSize: 1 << 20, MaxEvents: 50})
	lines, want := linesFrom(20, 0)
	feed(p, 0, lines, 20)
	waitFor(t, "some acks", func() bool { old.mu.Lock(); defer old.mu.Unlock(); return len(old.took) >= 8 })
	alive := &recSender{}
	if _, err := p.ReplaceOutput(0, OutputSpec{Name: "out", Encoder: lineEncoder{}, Sender: alive, QueueSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	got := func() []string {
		old.mu.Lock()
		defer old.mu.Unlock()
		var all []string
		for _, e := range append(slices.Clone(old.took), alive.got()...) {
			all = append(all, e[:len(e)-1]) // the LF
		}
		return all
	}
	waitFor(t, "every event", func() bool { return len(got()) >= len(want) })
	if n := stopWithin(p, 5*time.Second); n != 0 {
		t.Fatalf("%d undelivered", n)
	}
	exactlyOnce(t, got(), want)
}

// TestReplaceOutputWithASpool: the spool's source wakes for a replacement
// too (an idle output takes it at once); after Stop one is refused.
func TestReplaceOutputWithASpool(t *testing.T) {
	var down atomic.Bool
	old := downSender(&down)
	sp, p, _ := spoolPipeline(t, spool.Options{Dir: t.TempDir(), MaxSize: 64 << 20, FsyncInterval: 10 * time.Millisecond},
		OutputSpec{Name: "out", Encoder: lineEncoder{}, Sender: old, QueueSize: 1 << 20})
	lines, want := linesFrom(50, 0)
	feed(p, 0, lines, 10)
	waitFor(t, "the first events", func() bool { return len(old.got()) == 50 })
	// Idle: the batcher waits for blocks; the replacement must not wait
	// for the next one.
	next := &closeCounter{recSender: &recSender{}}
	done, err := p.ReplaceOutput(0, OutputSpec{Name: "out", Encoder: lineEncoder{}, Sender: next, QueueSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("an idle spooled output did not take its replacement")
	}
	lines2, want2 := linesFrom(50, 50)
	feed(p, 0, lines2, 10)
	waitFor(t, "the next events", func() bool { return len(next.got()) == 50 })
	unused := &closeCounter{recSender: &recSender{}}
	if n := stopWithin(p, 5*time.Second); n != 0 {
		t.Fatalf("%d undelivered", n)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.ReplaceOutput(0, OutputSpec{Name: "out", Encoder: lineEncoder{}, Sender: unused}); !errors.Is(err, ErrStopped) {
		t.Fatalf("ReplaceOutput after Stop: %v, want ErrStopped", err)
	}
	exactlyOnce(t, append(lineless(old.got()), lineless(next.got())...), append(want, want2...))
	if next.closed.Load() != 1 {
		t.Errorf("the replacement's sender closed %d times at Stop", next.closed.Load())
	}
}

func lineless(es []string) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e[:len(e)-1]
	}
	return out
}

// TestSetRoutesAndSetInput: new routes apply to what is produced next; an
// input added at a new index feeds the pipeline under the new routes.
func TestSetRoutesAndSetInput(t *testing.T) {
	a, b := &recSender{}, &recSender{}
	p, _ := newTestPipeline(t,
		OutputSpec{Name: "a", Encoder: lineEncoder{}, Sender: a, QueueSize: 1 << 20},
		OutputSpec{Name: "b", Encoder: lineEncoder{}, Sender: b, QueueSize: 1 << 20})
	if err := p.SetRoutes([]RouteSpec{{Outputs: []int{0}}}, RouterOptions{}); err != nil {
		t.Fatal(err)
	}
	l1, w1 := linesFrom(10, 0)
	feed(p, 0, l1, 5)
	pp, err := p.SetInput(3, InputSpec{Name: "new"}, 256<<10)
	if err != nil {
		t.Fatal(err)
	}
	if p.Pool(3) != pp {
		t.Fatal("Pool(3) is not the new input's")
	}
	if err := p.SetRoutes([]RouteSpec{{Match: Match{Inputs: []int{3}, Kinds: []parser.Kind{parser.KindModelBreach}}, Outputs: []int{1}}}, RouterOptions{}); err != nil {
		t.Fatal(err)
	}
	l2, w2 := linesFrom(10, 10)
	feed(p, 3, l2, 5)
	feed(p, 0, l1, 5) // input 0 has no route now: filtered
	if _, err := p.SetInput(5, InputSpec{Name: "gap"}, 0); err == nil {
		t.Fatal("SetInput past the end accepted")
	}
	if n := stopWithin(p, 5*time.Second); n != 0 {
		t.Fatalf("%d undelivered", n)
	}
	exactlyOnce(t, lineless(a.got()), w1)
	exactlyOnce(t, lineless(b.got()), w2)
	if err := p.SetRoutes([]RouteSpec{{Outputs: []int{2}}}, RouterOptions{}); err == nil {
		t.Fatal("a route to a missing output accepted")
	}
}

// TestSetRoutesKeepsDeduplication: a reload that keeps a de-duplicating
// route (name, outputs, window) or output keeps what it remembers, so an
// alert seen before is not sent again; one that changes the route's
// outputs starts afresh.
func TestSetRoutesKeepsDeduplication(t *testing.T) {
	a, b := &recSender{}, &recSender{}
	p, _ := newTestPipeline(t,
		OutputSpec{Name: "a", Encoder: lineEncoder{}, Sender: a, QueueSize: 1 << 20},
		OutputSpec{Name: "b", Encoder: lineEncoder{}, Sender: b, QueueSize: 1 << 20})
	d := &DedupSpec{Window: time.Hour}
	routes := func(outs ...int) []RouteSpec { return []RouteSpec{{Name: "siem", Outputs: outs, Dedup: d}} }
	opts := RouterOptions{OutputDedup: []*DedupSpec{nil, d}}
	if err := p.SetRoutes(routes(0, 1), opts); err != nil {
		t.Fatal(err)
	}
	l, w := linesFrom(10, 0)
	feed(p, 0, l, 5)
	if err := p.SetRoutes(routes(0, 1), opts); err != nil { // the same again: a reload
		t.Fatal(err)
	}
	feed(p, 0, l, 5) // duplicates: sent nowhere
	if err := p.SetRoutes(routes(0), RouterOptions{OutputDedup: []*DedupSpec{nil, d}}); err != nil {
		t.Fatal(err)
	}
	feed(p, 0, l, 5) // the route changed: a fresh set, a gets them again
	if n := stopWithin(p, 5*time.Second); n != 0 {
		t.Fatalf("%d undelivered", n)
	}
	exactlyOnce(t, lineless(b.got()), w)
	exactlyOnce(t, lineless(a.got()), append(slices.Clone(w), w...))
}
