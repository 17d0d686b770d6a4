package forward

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/parser"
)

// TestOldestPendingAndDeliveryLatency (issue 15): while the intake holds
// the first batch, dtrelay_output_oldest_pending_seconds is the age of its
// oldest record (a later read waits in the queue behind it); once all is
// delivered it is 0, dtrelay_output_delivery_latency_seconds has one
// observation per accepted event (not the one the intake rejected), and
// the last success timestamp is set.
func TestOldestPendingAndDeliveryLatency(t *testing.T) {
	s := &recSender{gate: make(chan struct{}), fail: func(call int, b *Batch) error {
		if call == 1 {
			b.Reject(1, "rejected_400")
		}
		return nil
	}}
	p, set := newTestPipeline(t, OutputSpec{Name: "out", Encoder: lineEncoder{}, Sender: s, QueueSize: 1 << 20, MaxEvents: 100})
	num := func(name string) float64 {
		t.Helper()
		v, err := strconv.ParseFloat(metric(set, name), 64)
		if err != nil {
			t.Fatalf("%s: %q: %v", name, metric(set, name), err)
		}
		return v
	}
	const oldest = `dtrelay_output_oldest_pending_seconds{output="out"}`
	if v := num(oldest); v != 0 {
		t.Fatalf("oldest pending before any alert = %v, want 0", v)
	}
	if v := num(`dtrelay_output_last_success_timestamp_seconds{output="out"}`); v != 0 {
		t.Fatalf("last success before any = %v, want 0", v)
	}
	start := time.Now()
	feed(p, 0, []string{line(0), line(1), line(2), line(3), line(4)}, 5)
	waitFor(t, "the first batch under way", func() bool { return p.outputs[0].oldest.Load() != 0 })
	feed(p, 0, []string{line(5), line(6), line(7)}, 3)
	time.Sleep(30 * time.Millisecond)
	v := num(oldest)
	if held := time.Since(start).Seconds(); v < 0.03 || v > held {
		t.Fatalf("oldest pending = %v while the batch is held, want between 0.03 and %v", v, held)
	}
	close(s.gate) // every Send passes now
	waitFor(t, "7 events delivered", func() bool { return num(`dtrelay_output_events_total{output="out"}`) == 7 })
	if v := num(oldest); v != 0 {
		t.Errorf("oldest pending once delivered = %v, want 0", v)
	}
	if v := num(`dtrelay_output_delivery_latency_seconds_count{output="out"}`); v != 7 {
		t.Errorf("delivery latency observations = %v, want 7 (8 events, 1 rejected)", v)
	}
	if v := num(`dtrelay_output_delivery_latency_seconds_bucket{output="out",le="+Inf"}`); v != 7 {
		t.Errorf("delivery latency +Inf bucket = %v, want 7", v)
	}
	if v := num(`dtrelay_output_delivery_latency_seconds_bucket{output="out",le="0.025"}`); v > 3 {
		t.Errorf("%v events under 25 ms, but the 4 accepted of the first batch were held for 30 ms", v)
	}
	if v := num(`dtrelay_output_last_success_timestamp_seconds{output="out"}`); v < float64(start.Unix()) {
		t.Errorf("last success = %v, before the test", v)
	}
	p.Stop(context.Background())
}

// TestQueueOldestReceived: the reception time of the first record of the
// head block that is routed to the output, 0 for an empty queue.
func TestQueueOldestReceived(t *testing.T) {
	q := newQueue(1 << 20)
	if got := q.oldestReceived(1); got != 0 {
		t.Fatalf("empty queue: %d", got)
	}
	var h parser.Header
	var a parser.Alert
	b := getBlock(4096)
	b.appendRecord([]byte("<165>x {}"), &h, &a, false, 0, 0b10, 100) // for output 2 only
	b.appendRecord([]byte("<165>y {}"), &h, &a, false, 0, 0b11, 200)
	b.appendRecord([]byte("<165>z {}"), &h, &a, false, 0, 0b01, 300)
	b2 := getBlock(4096)
	b2.appendRecord([]byte("<165>w {}"), &h, &a, false, 0, 0b01, 50)
	q.push(b, false)
	q.push(b2, false)
	if got := q.oldestReceived(0b01); got != 200 {
		t.Errorf("output 1: %d, want 200", got)
	}
	if got := q.oldestReceived(0b10); got != 100 {
		t.Errorf("output 2: %d, want 100", got)
	}
	q.pop(0)
	if got := q.oldestReceived(0b01); got != 50 {
		t.Errorf("after a pop: %d, want 50", got)
	}
}

// BenchmarkObserveDelivery: the batcher's cost per accepted event of the
// delivery latency histogram (issue 15), over batches of 1000 records.
func BenchmarkObserveDelivery(b *testing.B) {
	set := metrics.NewSet()
	o := newOutput(OutputSpec{Name: "out", QueueSize: 1 << 20}, 0, set, zerolog.Nop())
	var h parser.Header
	var a parser.Alert
	blk := getBlock(1 << 20)
	now := time.Now().UnixNano()
	for i := range 1000 {
		o.refs = append(o.refs, recRef{blk, len(blk.buf)})
		blk.appendRecord([]byte("<165>x {}"), &h, &a, false, 0, 1, now-int64(i)*int64(time.Millisecond))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		o.observeDelivery(0, 1000, nil, now)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/event")
}
