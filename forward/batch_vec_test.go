package forward

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// splitEncoder writes "LEN " and the payload, as output's octet-counting
// syslog encoder does over TCP: the head in the batch, the payload from
// its block.
type splitEncoder struct{}

func (splitEncoder) Append(dst []byte, r *Record) ([]byte, error) {
	dst, body, err := splitEncoder{}.AppendSplit(dst, r)
	return append(dst, body...), err
}

func (splitEncoder) AppendSplit(dst []byte, r *Record) (head, body []byte, err error) {
	if r.NotJSON {
		return dst, nil, ErrSkipNotJSON
	}
	dst = strconv.AppendInt(dst, int64(len(r.Payload)), 10)
	return append(dst, ' '), r.Payload, nil
}

// vecSender records what a vectored batch holds, flattened from
// AppendBuffers and cut at Ends; its first Send times out after writing.
type vecSender struct {
	mu      sync.Mutex
	calls   int
	events  []string
	batches []int
	flat    int // batches that were not vectored
}

func (s *vecSender) Send(_ context.Context, b *Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if !b.Vectored() || len(b.Data) != 0 {
		s.flat++
	}
	data := bytes.Join(b.AppendBuffers(nil), nil)
	if len(data) != b.Size() {
		return fmt.Errorf("AppendBuffers gave %d bytes, Size %d", len(data), b.Size())
	}
	if s.calls == 1 {
		return fmt.Errorf("write: %w", os.ErrDeadlineExceeded) // a slow intake: the batch goes in halves
	}
	for i := range b.Len() {
		s.events = append(s.events, string(data[b.Start(i):b.Ends[i]]))
	}
	s.batches = append(s.batches, b.Len())
	return nil
}

func (s *vecSender) Close() error { return nil }

// TestVectoredBatchesKeepEveryEventThroughChunks: with a SplitEncoder the
// batcher builds vectored batches; after a timeout they go in chunks, and
// every event reaches the sender once, in order, byte for byte; the bytes
// metric counts the events' bytes.
func TestVectoredBatchesKeepEveryEventThroughChunks(t *testing.T) {
	s := &vecSender{}
	p, set := newTestPipeline(t, OutputSpec{Name: "out", Encoder: splitEncoder{}, Sender: s, QueueSize: 1 << 20,
		MaxEvents: 40, MaxWait: 20 * time.Millisecond})
	var frames, want []string
	total := 0
	for i := range 40 {
		frames = append(frames, line(i))
		a := alert(i)
		want = append(want, strconv.Itoa(len(a))+" "+a)
		total += len(want[i])
	}
	feed(p, 0, frames, 40)
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		n := len(s.events)
		s.mu.Unlock()
		if n >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.Stop(context.Background())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flat != 0 {
		t.Errorf("%d of %d batches not vectored", s.flat, s.calls)
	}
	if len(s.events) != len(want) {
		t.Fatalf("got %d events, want %d", len(s.events), len(want))
	}
	for i := range want {
		if s.events[i] != want[i] {
			t.Fatalf("event %d = %q, want %q", i, s.events[i], want[i])
		}
	}
	if len(s.batches) < 2 || s.batches[0] >= 40 {
		t.Errorf("requests of %v events after a timeout: not in chunks", s.batches)
	}
	if v := metric(set, `dtrelay_output_bytes_total{output="out"}`); v != strconv.Itoa(total) {
		t.Errorf("bytes_total = %s, want %d", v, total)
	}
}

// TestBatchAppendSplit: the vectored batch's parts, sizes and chunks.
func TestBatchAppendSplit(t *testing.T) {
	var b Batch
	raw := []byte("<1>x abc<1>x defgh")
	for _, r := range []*Record{{Raw: raw[:8], Payload: raw[5:8]}, {Raw: raw[8:], Payload: raw[13:]}, {NotJSON: true}} {
		err := b.AppendSplit(splitEncoder{}, r)
		if r.NotJSON != (err != nil) {
			t.Fatalf("record %+v: err %v", r, err)
		}
	}
	if got := string(bytes.Join(b.AppendBuffers(nil), nil)); got != "3 abc5 defgh" || b.Size() != len(got) || b.Len() != 2 {
		t.Fatalf("batch %q, size %d, len %d", got, b.Size(), b.Len())
	}
	var s Batch
	b.sub(&s, 1, 2)
	if got := string(bytes.Join(s.AppendBuffers(nil), nil)); got != "5 defgh" || s.Size() != 7 || s.Len() != 1 {
		t.Fatalf("chunk %q, size %d, ends %v", got, s.Size(), s.Ends)
	}
	b.Reset()
	if b.Vectored() || b.Size() != 0 || len(b.AppendBuffers(nil)) != 0 {
		t.Fatal("Reset left parts")
	}
	b.Data = append(b.Data, "flat"...)
	b.Ends = append(b.Ends, 4)
	if bufs := b.AppendBuffers(nil); len(bufs) != 1 || string(bufs[0]) != "flat" {
		t.Fatalf("flat batch's buffers %q", bufs)
	}
}
