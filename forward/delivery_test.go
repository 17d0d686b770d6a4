package forward

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
)

// TestDeliveryWithSpoolDoesNotWaitForOutputs (issue 13 item 3): with a
// spool, a tracked input's Publish is done once its events are in the spool
// (synced), even though an output is down; the events reach that output
// when it is back.
func TestDeliveryWithSpoolDoesNotWaitForOutputs(t *testing.T) {
	dead := &recSender{gate: make(chan struct{})}
	fine := &recSender{}
	sp := openSpool(t, t.TempDir(), "dead", "fine")
	p, err := New(Options{
		Inputs: []InputSpec{{Name: "api", Track: true}},
		Outputs: []OutputSpec{
			{Name: "dead", Encoder: lineEncoder{}, Sender: dead, QueueSize: 1 << 20},
			{Name: "fine", Encoder: lineEncoder{}, Sender: fine, QueueSize: 1 << 20},
		},
		MaxPayload: 256 << 10, Spool: sp, Metrics: metrics.NewSet(), Log: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		pr := p.Pool(0).Get()
		for i := range 100 {
			pr.Frame([]byte(line(round*100 + i)))
		}
		d := pr.Publish()
		p.Pool(0).Put(pr)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := d.Wait(ctx)
		cancel()
		if err != nil {
			t.Fatalf("round %d: Delivery = %v with the events in the spool", round, err)
		}
	}
	waitFor(t, "the healthy output's events", func() bool { return len(fine.got()) == 300 })
	if n := len(dead.got()); n != 0 {
		t.Fatalf("the dead output delivered %d", n)
	}
	close(dead.gate)
	waitFor(t, "the dead output's events once it is back", func() bool { return len(dead.got()) == 300 })
	p.Stop(context.Background())
	sp.Close()
}

// TestDeliveryWithoutSpoolWaitsForEveryOutput: without a spool, the
// Delivery stays pending while one routed output has not taken the events,
// and Publish returns at once (the producer may go on).
func TestDeliveryWithoutSpoolWaitsForEveryOutput(t *testing.T) {
	slow := &recSender{gate: make(chan struct{})}
	p, _ := newTestPipeline(t, OutputSpec{Name: "slow", Encoder: lineEncoder{}, Sender: slow, QueueSize: 1 << 20, MaxEvents: 1})
	pr := p.Pool(2).Get()
	pr.Frame([]byte(line(1)))
	d1 := pr.Publish()
	pr.Frame([]byte(line(2)))
	d2 := pr.Publish()
	p.Pool(2).Put(pr)
	if err := d1.Err(); !errors.Is(err, ErrPending) {
		t.Fatalf("Err before delivery = %v, want ErrPending", err)
	}
	slow.gate <- struct{}{}
	if err := d1.Wait(context.Background()); err != nil {
		t.Fatalf("first Delivery = %v", err)
	}
	select {
	case <-d2.Done():
		t.Fatal("second Delivery done before its event was delivered")
	case <-time.After(50 * time.Millisecond):
	}
	close(slow.gate)
	if err := d2.Wait(context.Background()); err != nil || len(slow.got()) != 2 {
		t.Fatalf("second Delivery = %v with %d events delivered", err, len(slow.got()))
	}
	if err := (Delivery{}).Err(); err != nil {
		t.Errorf("empty Delivery: %v", err)
	}
	p.Stop(context.Background())
}
