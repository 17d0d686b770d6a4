package forward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/parser"
)

// recSender records delivered events; fail, when set, decides each attempt.
type recSender struct {
	mu      sync.Mutex
	events  []string
	batches []int
	calls   int
	fail    func(call int, b *Batch) error
	gate    chan struct{} // when set, each Send waits for a token
}

func (s *recSender) Send(ctx context.Context, b *Batch) error {
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.fail != nil {
		if err := s.fail(s.calls, b); err != nil {
			return err
		}
	}
	for i := 0; i < b.Len(); i++ {
		s.events = append(s.events, string(b.Event(i)))
	}
	s.batches = append(s.batches, b.Len())
	return nil
}

func (s *recSender) Close() error { return nil }

func (s *recSender) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.events...)
}

// lineEncoder writes each JSON payload and LF, as output.NDJSONEncoder
// does: the pipeline's tests need an encoder, not a wire format. Payloads
// over max bytes (when > 0) are skipped as oversize.
type lineEncoder struct{ max int }

func (e lineEncoder) Append(dst []byte, r *Record) ([]byte, error) {
	if r.NotJSON {
		return dst, ErrSkipNotJSON
	}
	if e.max > 0 && len(r.Payload) > e.max {
		return dst, ErrSkipOversize
	}
	return append(append(dst, r.Payload...), '\n'), nil
}

// stopWithin stops p, giving up on deliveries after d: a failed test must
// not wait on an output retrying forever.
func stopWithin(p *Pipeline, d time.Duration) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return p.Stop(ctx)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func alert(i int) string {
	return fmt.Sprintf(`{"pbid":%d,"model":{"name":"Anomalous Connection::Test %d"},"score":0.9,"time":1700000000000,"triggeredComponents":[]}`, i, i)
}

func line(i int) string { return "<165>Aug  5 03:34:46 dt.example.com darktrace " + alert(i) }

func newTestPipeline(t *testing.T, specs ...OutputSpec) (*Pipeline, *metrics.Set) {
	t.Helper()
	set := metrics.NewSet()
	p, err := New(Options{
		Inputs:     []InputSpec{{Name: "tcp"}, {Name: "udp", Datagram: true}, {Name: "api", Track: true}},
		Outputs:    specs,
		MaxPayload: 256 << 10,
		Metrics:    set,
		Log:        zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, set
}

// feed sends frames through input in reads of perRead frames.
func feed(p *Pipeline, input int, frames []string, perRead int) {
	pool := p.Pool(input)
	for i := 0; i < len(frames); i += perRead {
		pr := pool.Get()
		for _, f := range frames[i:min(i+perRead, len(frames))] {
			pr.Frame([]byte(f))
		}
		pr.Flush()
		pool.Put(pr)
	}
}

func metric(set *metrics.Set, name string) string {
	var b bytes.Buffer
	set.WritePrometheus(&b)
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(l, name+" ") {
			return strings.TrimPrefix(l, name+" ")
		}
	}
	return ""
}

func TestPipelineDeliversEveryPayloadInOrder(t *testing.T) {
	s := &recSender{}
	p, set := newTestPipeline(t, OutputSpec{Name: "out", Encoder: lineEncoder{}, Sender: s, QueueSize: 1 << 20, MaxEvents: 7})
	var frames, want []string
	for i := range 500 {
		frames = append(frames, line(i))
		want = append(want, alert(i)+"\n")
	}
	feed(p, 0, frames, 13)
	if lost := p.Stop(context.Background()); lost != 0 {
		t.Fatalf("lost %d", lost)
	}
	got := s.got()
	if strings.Join(got, "") != strings.Join(want, "") {
		t.Fatalf("delivered %d events, not byte-identical and in order", len(got))
	}
	for _, n := range s.batches {
		if n > 7 {
			t.Fatalf("batch of %d events, max_events is 7", n)
		}
	}
	if v := metric(set, `dtrelay_output_events_total{output="out"}`); v != "500" {
		t.Fatalf("events_total = %q", v)
	}
	if v := metric(set, `dtrelay_input_alerts_total{input="tcp",kind="model_breach"}`); v != "500" {
		t.Fatalf("alerts_total = %q", v)
	}
}

func TestBatchFlushesOnMaxBytesAndMaxWait(t *testing.T) {
	s := &recSender{}
	p, _ := newTestPipeline(t, OutputSpec{Name: "out", Encoder: lineEncoder{}, Sender: s, QueueSize: 1 << 20,
		MaxEvents: 1000, MaxBytes: 3 * len(alert(100)), MaxWait: 50 * time.Millisecond})
	defer p.Stop(context.Background())
	var frames []string
	for i := 100; i < 110; i++ {
		frames = append(frames, line(i))
	}
	feed(p, 0, frames, 10)
	waitFor(t, "10 events", func() bool { return len(s.got()) == 10 })
	for _, n := range s.batches {
		if n > 3 {
			t.Fatalf("batches %v: max_bytes not honoured", s.batches)
		}
	}
	// One more event waits max_wait, not forever.
	start := time.Now()
	feed(p, 0, []string{line(200)}, 1)
	waitFor(t, "the lone event", func() bool { return len(s.got()) == 11 })
	if time.Since(start) < 40*time.Millisecond {
		t.Fatalf("lone event sent after %v, before max_wait", time.Since(start))
	}
}

func TestTransientFailuresAreRetriedAndPermanentOnesCounted(t *testing.T) {
	s := &recSender{fail: func(call int, b *Batch) error {
		switch call {
		case 1, 2:
			return errors.New("connection refused")
		case 3:
			return RetryAfter(10*time.Millisecond, errors.New("HTTP 429"))
		case 4:
			return Permanent("http_401", errors.New("HTTP 401"))
		}
		return nil
	}}
	p, set := newTestPipeline(t, OutputSpec{Name: "out", Encoder: lineEncoder{}, Sender: s, QueueSize: 1 << 20, MaxEvents: 1})
	feed(p, 0, []string{line(1)}, 1)
	waitFor(t, "first event after retries", func() bool {
		return len(s.got()) == 0 && metric(set, `dtrelay_output_dropped_total{output="out",reason="http_401"}`) == "1"
	})
	feed(p, 0, []string{line(2)}, 1)
	waitFor(t, "second event", func() bool { return len(s.got()) == 1 })
	p.Stop(context.Background())
	if v := metric(set, `dtrelay_output_retries_total{output="out"}`); v != "3" {
		t.Fatalf("retries_total = %q, want 3", v)
	}
}

// TestFullQueueBlocksProducerUntilDelivered: a producer waits on a full
// queue until its output delivers, and the stall shows while it lasts
// (issue 10 item 6): dtrelay_input_blocked is 1 and the backpressure
// seconds grow during it, then the gauge is back to 0.
func TestFullQueueBlocksProducerUntilDelivered(t *testing.T) {
	s := &recSender{gate: make(chan struct{})}
	// Queue holds one 16 KiB block: the second read's publish must wait.
	p, set := newTestPipeline(t, OutputSpec{Name: "out", Encoder: lineEncoder{}, Sender: s, QueueSize: firstBlockSize, MaxEvents: 1})
	const blocked, seconds = `dtrelay_input_blocked{input="tcp"}`, `dtrelay_input_backpressure_seconds_total{input="tcp"}`
	if v := metric(set, blocked); v != "0" {
		t.Fatalf("blocked = %q before any stall", v)
	}
	feed(p, 0, []string{line(1)}, 1)
	done := make(chan struct{})
	go func() {
		feed(p, 0, []string{line(2)}, 1)
		close(done)
	}()
	waitFor(t, "the producer shown blocked", func() bool { return metric(set, blocked) == "1" })
	first := metricFloat(t, set, seconds)
	waitFor(t, "the backpressure seconds growing during the stall", func() bool {
		return metricFloat(t, set, seconds) >= first+0.05
	})
	select {
	case <-done:
		t.Fatal("producer did not wait on a full queue")
	default:
	}
	s.gate <- struct{}{} // deliver the first event: its block is released
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("producer still blocked after the queue drained")
	}
	if v := metric(set, blocked); v != "0" {
		t.Fatalf("blocked = %q after the stall", v)
	}
	during := metricFloat(t, set, seconds)
	s.gate <- struct{}{}
	waitFor(t, "both events", func() bool { return len(s.got()) == 2 })
	p.Stop(context.Background())
	if after := metricFloat(t, set, seconds); after < during || after < 0.05 {
		t.Fatalf("backpressure seconds %v after the stall, %v during it", after, during)
	}
}

func metricFloat(t *testing.T, set *metrics.Set, name string) float64 {
	t.Helper()
	var v float64
	if _, err := fmt.Sscan(metric(set, name), &v); err != nil {
		t.Fatalf("%s = %q: %v", name, metric(set, name), err)
	}
	return v
}

// TestDatagramInputDropsWhenFullAndCounts: a datagram input never waits; what
// does not fit the queue is dropped and counted dropped_full, and the queue's
// byte budget holds datagrams by their size (issue 10 item 11: one 16 KiB
// block each made a 64 MiB queue hold only 4096 datagrams).
func TestDatagramInputDropsWhenFullAndCounts(t *testing.T) {
	const queue, sent = 64 << 10, 100
	s := &recSender{gate: make(chan struct{})}
	p, set := newTestPipeline(t, OutputSpec{Name: "out", Encoder: lineEncoder{}, Sender: s, QueueSize: queue, MaxEvents: 1})
	var frames []string
	for i := range sent {
		f := line(i)
		frames = append(frames, f+strings.Repeat(" ", 1500-len(f))) // ~1.5 KB datagrams
	}
	feed(p, 1, frames, 1) // one datagram per read
	dropped := 0
	fmt.Sscan(metric(set, `dtrelay_input_discarded_total{input="udp",reason="dropped_full"}`), &dropped)
	queued := sent - dropped
	if held := queued * (recHeaderSize + 1500); held < queue*8/10 || held > queue {
		t.Fatalf("the %d-byte queue held %d datagrams (%d bytes of records); want over 80%% of its budget", queue, queued, held)
	}
	close(s.gate)
	waitFor(t, "the queued datagrams", func() bool { return len(s.got()) == queued })
	p.Stop(context.Background())
	if got := len(s.got()); got+dropped != sent {
		t.Fatalf("delivered %d + dropped %d != sent %d", got, dropped, sent)
	}
	t.Logf("%d-byte queue: %d of %d 1.5 KB datagrams queued, %d dropped_full", queue, queued, sent, dropped)
}

func TestStopCountsWhatCouldNotBeDelivered(t *testing.T) {
	s := &recSender{fail: func(int, *Batch) error { return errors.New("down") }}
	p, set := newTestPipeline(t, OutputSpec{Name: "out", Encoder: lineEncoder{}, Sender: s, QueueSize: 1 << 20, MaxEvents: 2})
	feed(p, 0, []string{line(1), line(2), line(3)}, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if lost := p.Stop(ctx); lost != 3 {
		t.Fatalf("Stop reported %d undelivered, want 3", lost)
	}
	if v := metric(set, `dtrelay_output_dropped_total{output="out",reason="shutdown"}`); v != "3" {
		t.Fatalf("dropped shutdown = %q", v)
	}
}

func TestNotJSONGoesOnlyToOutputsThatCarryIt(t *testing.T) {
	js, orig := &recSender{}, &recSender{}
	p, set := newTestPipeline(t,
		OutputSpec{Name: "json", Encoder: lineEncoder{}, Sender: js, QueueSize: 1 << 20},
		OutputSpec{Name: "orig", Encoder: rawEncoder{}, Sender: orig, QueueSize: 1 << 20, NotJSON: true})
	feed(p, 0, []string{line(1), "<13>Aug  5 03:34:46 host darktrace not json at all", line(2)}, 3)
	p.Stop(context.Background())
	if got := js.got(); len(got) != 2 {
		t.Fatalf("json output got %d events, want 2", len(got))
	}
	if got := orig.got(); len(got) != 3 || got[1] != "<13>Aug  5 03:34:46 host darktrace not json at all" {
		t.Fatalf("original output got %q", got)
	}
	if v := metric(set, `dtrelay_input_not_json_total{input="tcp"}`); v != "1" {
		t.Fatalf("not_json = %q", v)
	}
}

type rawEncoder struct{}

func (rawEncoder) Append(dst []byte, r *Record) ([]byte, error) { return append(dst, r.Raw...), nil }

func TestRoutesFilterByKindPriorityAndInput(t *testing.T) {
	r, err := NewRouter([]RouteSpec{
		{Match: Match{Kinds: []parser.Kind{parser.KindModelBreach}, MinPriority: parser.PriorityMedium}, Outputs: []int{0}},
		{Match: Match{Inputs: []int{1}}, Outputs: []int{1}},
		{Match: Match{Kinds: []parser.Kind{parser.KindTest}}, Outputs: []int{2}},
	}, RouterOptions{Outputs: 3, NotJSON: []int{1}})
	if err != nil {
		t.Fatal(err)
	}
	f := func(kind parser.Kind, prio parser.Priority, input int, notJSON bool, want uint64) {
		t.Helper()
		if got := r.Route(&RouteInput{Kind: kind, Priority: prio, Input: input, NotJSON: notJSON}); got != want {
			t.Errorf("Route(%v, %v, %d, %v) = %b, want %b", kind, prio, input, notJSON, got, want)
		}
	}
	f(parser.KindModelBreach, parser.PriorityHigh, 0, false, 0b001)
	f(parser.KindModelBreach, parser.PriorityLow, 0, false, 0)
	f(parser.KindModelBreach, parser.PriorityMedium, 1, false, 0b011)
	f(parser.KindTest, parser.PriorityNone, 0, false, 0b100)
	f(parser.KindUnknown, parser.PriorityNone, 1, true, 0b010)
	f(parser.KindUnknown, parser.PriorityNone, 0, true, 0)

	all, _ := NewRouter(nil, RouterOptions{Outputs: 2})
	if got := all.Route(&RouteInput{Kind: parser.KindAudit, Input: 5}); got != 0b11 {
		t.Errorf("no routes: got %b, want every output", got)
	}
}

// TestFlushWaitReturnsOnceDelivered: FlushWait blocks until the intake has
// the events, and reports ErrNotDelivered when the pipeline stops first.
func TestFlushWaitReturnsOnceDelivered(t *testing.T) {
	s := &recSender{gate: make(chan struct{})}
	p, set := newTestPipeline(t, OutputSpec{Name: "out", Encoder: lineEncoder{}, Sender: s, QueueSize: 1 << 20})
	pr := p.Pool(2).Get()
	pr.Frame([]byte(line(1)))
	res := make(chan error, 1)
	go func() { res <- pr.FlushWait(context.Background()) }()
	select {
	case err := <-res:
		t.Fatalf("FlushWait returned %v before the intake had the event", err)
	case <-time.After(50 * time.Millisecond):
	}
	s.gate <- struct{}{}
	if err := <-res; err != nil || len(s.got()) != 1 {
		t.Fatalf("FlushWait = %v with %d events delivered", err, len(s.got()))
	}
	p.Pool(2).Put(pr)

	// The intake never answers: Stop gives up and FlushWait says so.
	pr = p.Pool(2).Get()
	pr.Frame([]byte(line(2)))
	go func() { res <- pr.FlushWait(context.Background()) }()
	waitFor(t, "the event queued", func() bool { return metric(set, `dtrelay_output_queue_bytes{output="out"}`) != "0" })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	p.Stop(ctx)
	if err := <-res; !errors.Is(err, ErrNotDelivered) {
		t.Fatalf("FlushWait after an abandoned stop = %v, want ErrNotDelivered", err)
	}
}

// TestFlushWaitCoversEveryBlockOfTheRead: events of one FlushWait spread
// over several blocks routed to different outputs are all waited for.
func TestFlushWaitCoversEveryBlockOfTheRead(t *testing.T) {
	slow, fast := &recSender{gate: make(chan struct{})}, &recSender{}
	r := []RouteSpec{
		{Match: Match{Kinds: []parser.Kind{parser.KindModelBreach}}, Outputs: []int{0}},
		{Match: Match{Kinds: []parser.Kind{parser.KindTest}}, Outputs: []int{1}},
	}
	p, err := New(Options{
		Inputs: []InputSpec{{Name: "api", Track: true}},
		Outputs: []OutputSpec{
			{Name: "slow", Encoder: lineEncoder{}, Sender: slow, QueueSize: 1 << 20},
			{Name: "fast", Encoder: lineEncoder{}, Sender: fast, QueueSize: 1 << 20},
		},
		Routes: r, MaxPayload: 256 << 10, Metrics: metrics.NewSet(), Log: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	pr := p.Pool(0).Get()
	for i := range 200 { // more than a 16 KiB block of model breaches
		pr.Frame([]byte(line(i)))
	}
	pr.Frame([]byte(`{"pbid":9,"model":{"name":"Unrestricted Test Model"},"score":1,"triggeredComponents":[]}`))
	res := make(chan error, 1)
	go func() { res <- pr.FlushWait(context.Background()) }()
	waitFor(t, "the test alert delivered", func() bool { return len(fast.got()) == 1 })
	select {
	case err := <-res:
		t.Fatalf("FlushWait returned %v while the slow output still had events", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(slow.gate)
	if err := <-res; err != nil || len(slow.got()) != 200 {
		t.Fatalf("FlushWait = %v with %d of 200 events at the slow output", err, len(slow.got()))
	}
	p.Stop(context.Background())
}
