package forward

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/internal/alloctest"
)

// countSender accepts every batch and counts its events.
type countSender struct{ events atomic.Int64 }

func (s *countSender) Send(_ context.Context, b *Batch) error {
	s.events.Add(int64(b.Len()))
	return nil
}
func (s *countSender) Close() error { return nil }

// sizedLine returns an RFC 3164 Darktrace line whose JSON payload is about size bytes.
func sizedLine(i, size int) string {
	a := alert(i)
	pad := max(size-len(a)-12, 0)
	return "<165>Aug  5 03:34:46 dt.example.com darktrace " + a[:len(a)-1] + `,"pad":"` + strings.Repeat("x", pad) + `"}`
}

func benchPipeline(tb testing.TB, size int) (*Pipeline, *countSender, [][]byte) {
	return benchPipelineWith(tb, size, lineEncoder{})
}

// benchPipelineWith is benchPipeline with the output's encoder enc (a
// SplitEncoder makes vectored batches).
func benchPipelineWith(tb testing.TB, size int, enc Encoder) (*Pipeline, *countSender, [][]byte) {
	s := &countSender{}
	p, err := New(Options{
		Inputs: []InputSpec{{Name: "tcp"}},
		// A small queue bounds the blocks in flight, as a batcher that keeps
		// up does: then every block comes from the free list.
		Outputs:    []OutputSpec{{Name: "out", Encoder: enc, Sender: s, QueueSize: 1 << 20}},
		MaxPayload: 256 << 10,
		Metrics:    metrics.NewSet(),
		Log:        zerolog.Nop(),
	})
	if err != nil {
		tb.Fatal(err)
	}
	var frames [][]byte
	for i := range 40 { // about one 64 KiB read of 1.5 KB alerts
		frames = append(frames, []byte(sizedLine(i, size)))
	}
	return p, s, frames
}

func oneRead(pool *ProducerPool, frames [][]byte) {
	pr := pool.Get()
	for _, f := range frames {
		pr.Frame(f)
	}
	pr.Flush()
	pool.Put(pr)
}

// TestProducerHotPathDoesNotAllocate: scan + classify + route + copy into a
// block + publish, and the batcher's encode + send, allocate nothing per
// message in steady state.
func TestProducerHotPathDoesNotAllocate(t *testing.T) {
	if alloctest.Race {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	for _, enc := range []Encoder{lineEncoder{}, splitEncoder{}} {
		for _, size := range []int{1500, 4000} {
			p, s, frames := benchPipelineWith(t, size, enc)
			pool := p.Pool(0)
			for range 1000 { // warm pools, queue and batch storage
				oneRead(pool, frames)
			}
			waitFor(t, "warm-up delivered", func() bool { return s.events.Load() == 1000*int64(len(frames)) })
			if allocs := alloctest.PerRun(200, func() { oneRead(pool, frames) }); allocs != 0 {
				t.Errorf("%T, %d-byte alerts: %.2f allocs per read of %d messages, want 0", enc, size, allocs, len(frames))
			}
			p.Stop(context.Background())
		}
	}
}

// BenchmarkPipeline measures one producer feeding the pipeline to a sender
// that accepts everything: the in-memory cost per alert from frame to batch.
func BenchmarkPipeline(b *testing.B) {
	for _, size := range []int{1500, 4000} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			p, s, frames := benchPipeline(b, size)
			pool := p.Pool(0)
			var bytes int64
			for _, f := range frames {
				bytes += int64(len(f))
			}
			b.SetBytes(bytes / int64(len(frames)))
			b.ReportAllocs()
			b.ResetTimer()
			sent := 0
			for sent < b.N {
				oneRead(pool, frames)
				sent += len(frames)
			}
			p.Stop(context.Background())
			b.ReportMetric(float64(s.events.Load())/b.Elapsed().Seconds(), "alerts/s")
		})
	}
}
