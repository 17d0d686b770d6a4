package forward

import (
	"context"
	"fmt"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/internal/alloctest"
	"github.com/dtrelay/dtrelay/spool"
)

func benchSpooledPipeline(tb testing.TB, size int) (*Pipeline, *countSender, [][]byte) {
	sp, err := spool.Open(spool.Options{Dir: tb.TempDir(), MaxSize: 4 << 30, Consumers: []string{"out"},
		Metrics: metrics.NewSet(), Log: zerolog.Nop()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { sp.Close() })
	s := &countSender{}
	p, err := New(Options{
		Inputs:     []InputSpec{{Name: "tcp"}},
		Outputs:    []OutputSpec{{Name: "out", Encoder: lineEncoder{}, Sender: s, QueueSize: 1 << 20}},
		MaxPayload: 256 << 10,
		Spool:      sp,
		Metrics:    metrics.NewSet(),
		Log:        zerolog.Nop(),
	})
	if err != nil {
		tb.Fatal(err)
	}
	var frames [][]byte
	for i := range 40 {
		frames = append(frames, []byte(sizedLine(i, size)))
	}
	return p, s, frames
}

// TestSpoolHotPathDoesNotAllocate: with a spool, publishing (append,
// queue) and delivering from memory (encode, mark, send, acknowledge)
// allocate nothing per message in steady state.
func TestSpoolHotPathDoesNotAllocate(t *testing.T) {
	if alloctest.Race {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	p, s, frames := benchSpooledPipeline(t, 1500)
	pool := p.Pool(0)
	for range 1000 {
		oneRead(pool, frames)
	}
	waitFor(t, "warm-up delivered", func() bool { return s.events.Load() == 1000*int64(len(frames)) })
	allocs := testing.AllocsPerRun(200, func() { oneRead(pool, frames) })
	if perMsg := allocs / float64(len(frames)); perMsg > 0.05 {
		t.Errorf("%.1f allocs per read of %d messages (%.3f per message), want 0", allocs, len(frames), perMsg)
	}
	p.Stop(context.Background())
}

// BenchmarkPipelineSpool is BenchmarkPipeline with a spool: every block is
// appended to it, delivered from memory, marked before each batch is sent
// (spool.Reader.Mark) and acknowledged.
func BenchmarkPipelineSpool(b *testing.B) {
	for _, size := range []int{1500, 4000} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			p, s, frames := benchSpooledPipeline(b, size)
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
