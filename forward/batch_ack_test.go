package forward

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
)

// ackSender acknowledges events one by one as a RELP intake does: each
// attempt takes the events not yet acked, acks up to perAttempt of them,
// and fails while any is left; timeout makes the failure a slow send,
// which halves the batcher's next chunk.
type ackSender struct {
	mu         sync.Mutex
	perAttempt int
	timeout    bool
	offered    [][]string // per attempt: the events not yet acked
	took       []string   // every event acked, in order
}

func (s *ackSender) Send(ctx context.Context, b *Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var offered []string
	acked := 0
	for i := 0; i < b.Len(); i++ {
		if b.Acked(i) {
			continue
		}
		offered = append(offered, string(b.Event(i)))
		if acked < s.perAttempt {
			b.Ack(i)
			s.took = append(s.took, string(b.Event(i)))
			acked++
		}
	}
	s.offered = append(s.offered, offered)
	if len(offered) > acked {
		if s.timeout {
			return fmt.Errorf("session broke: %w", os.ErrDeadlineExceeded)
		}
		return errors.New("session broke")
	}
	return nil
}

func (s *ackSender) Close() error { return nil }

// TestAckMarksOutliveAFailedSend: the events a Sender acked during a Send
// that failed are not offered again when the batcher retries, whole or in
// halved chunks, and a new batch starts with no marks (issue 12: a broken
// RELP session resends only what it had unacknowledged).
func TestAckMarksOutliveAFailedSend(t *testing.T) {
	for _, timeout := range []bool{false, true} {
		t.Run(fmt.Sprintf("timeout=%v", timeout), func(t *testing.T) {
			s := &ackSender{perAttempt: 3, timeout: timeout}
			p, set := newTestPipeline(t, OutputSpec{Name: "out", Encoder: lineEncoder{}, Sender: s, QueueSize: 1 << 20, MaxEvents: 10})
			var lines []string
			for i := range 20 {
				lines = append(lines, line(i))
			}
			feed(p, 0, lines, 20)
			waitFor(t, "every event acked", func() bool {
				s.mu.Lock()
				defer s.mu.Unlock()
				return len(s.took) == 20
			})
			if n := stopWithin(p, 0); n != 0 {
				t.Fatalf("%d events undelivered", n)
			}
			var want []string
			for i := range 20 {
				want = append(want, alert(i)+"\n")
			}
			if !slices.Equal(s.took, want) {
				t.Fatalf("acked %d events, not each once in order:\n%q", len(s.took), s.took)
			}
			// Each attempt is offered only what earlier ones left: in all,
			// the offers hold every event once per attempt it waited through,
			// and never one already acked.
			seen := map[string]bool{}
			for i, o := range s.offered {
				for _, e := range o {
					if seen[e] {
						t.Fatalf("attempt %d offered %q, already acked", i+1, e)
					}
				}
				for _, e := range o[:min(3, len(o))] {
					seen[e] = true
				}
			}
			if v := metric(set, `dtrelay_output_events_total{output="out"}`); v != "20" {
				t.Fatalf("events_total = %s, want 20", v)
			}
		})
	}
}
