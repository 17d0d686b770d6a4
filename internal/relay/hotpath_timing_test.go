package relay

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/internal/alloctest"
	"github.com/dtrelay/dtrelay/output"
	"github.com/dtrelay/dtrelay/parser"
	"github.com/dtrelay/dtrelay/parser/parsertest"
	"github.com/dtrelay/dtrelay/receiver"
	"github.com/dtrelay/dtrelay/spool"
)

// nullSender accepts every batch.
type nullSender struct{ n atomic.Int64 }

func (s *nullSender) Send(_ context.Context, b *forward.Batch) error {
	s.n.Add(int64(b.Len()))
	return nil
}
func (s *nullSender) Close() error { return nil }

// hotPath is the per-message work (realistic model breaches and AI Analyst
// events, half each) of an event loop: framing, header scan,
// classification, routing and the copy into a block, published once per
// read; the batcher encodes into a NDJSON batch for a sender that
// accepts it.
type hotPath struct {
	framer *receiver.Framer
	pool   *forward.ProducerPool
	pipe   *forward.Pipeline
	sent   *nullSender
	read   []byte // one read's worth of LF-framed RFC 3164 lines
	frames int
	srcs   *sourceTable
}

// newHotPathSpool is newHotPath with every block also appended to sp.
func newHotPathSpool(tb testing.TB, size int, sp *spool.Spool) *hotPath {
	return newHotPathWith(tb, size, sp, nil)
}

// darktraceRoutes are Darktrace-aware routes of issue 17 (models,
// categories, scores, sources, tags, not, drop), which make the producer
// read the model name and category; dedup adds a de-duplicating route.
func darktraceRoutes(dedup bool) []forward.RouteSpec {
	rs := []forward.RouteSpec{
		{Name: "noise", Match: forward.Match{Models: []string{"System::*"}}, Not: &forward.Match{Categories: []string{"critical"}}, Drop: true},
		{Name: "audit", Match: forward.Match{Tags: []string{"darktrace_audit"}}, Outputs: []int{0}},
		{Name: "siem", Match: forward.Match{Categories: []string{"critical", "suspicious", "compliance"}, ScoreRange: true, MinScore: 0.2, MaxScore: 1,
			Sources: []string{"*"}}, Outputs: []int{0}},
		{Name: "rest", Match: forward.Match{Models: []string{"Anomalous*", "Compromise::*"}}, Outputs: []int{0}},
	}
	if dedup {
		rs[2].Dedup = &forward.DedupSpec{Window: 10 * time.Minute, MaxKeys: 1 << 20}
	}
	return rs
}

// newHotPathWith is newHotPathSpool with routes.
func newHotPathWith(tb testing.TB, size int, sp *spool.Spool, routes []forward.RouteSpec) *hotPath {
	return newHotPathSources(tb, size, sp, routes, true)
}

// newHotPathSources is newHotPathWith, with the relay's source table or
// without it.
func newHotPathSources(tb testing.TB, size int, sp *spool.Spool, routes []forward.RouteSpec, sources bool) *hotPath {
	s := &nullSender{}
	set := metrics.NewSet()
	var srcs *sourceTable
	var obs forward.SourceObserver
	if sources {
		srcs = newSourceTable(1000, set, zerolog.Nop(), func(uint64) []string { return nil })
		obs = srcs
	}
	p, err := forward.New(forward.Options{
		Spool:  sp,
		Routes: routes,
		Inputs: []forward.InputSpec{{Name: "tcp"}},
		// A small queue bounds the blocks in flight, as a busy relay's
		// batcher keeping up does: then every block comes from the free list.
		Outputs:    []forward.OutputSpec{{Name: "out", Encoder: output.NDJSONEncoder{}, Sender: s, QueueSize: 1 << 20}},
		MaxPayload: 256 << 10,
		Metrics:    set,
		Log:        zerolog.Nop(),
		// The relay's per-source table, as Start wires it (issue 15).
		Sources: obs,
	})
	if err != nil {
		tb.Fatal(err)
	}
	var sb strings.Builder
	n := 0
	kinds := []parser.Kind{parser.KindModelBreach, parser.KindAIAnalyst}
	for sb.Len() < 64<<10 { // gnet reads up to 64 KiB at a time
		a := parsertest.Alert(nil, kinds[n%2], uint64(n), size)
		sb.Write(parsertest.Frame(nil, parsertest.RFC3164, "darktrace", a))
		sb.WriteByte('\n')
		n++
	}
	return &hotPath{framer: receiver.NewFramer(256 << 10), pool: p.Pool(0), pipe: p, sent: s, read: []byte(sb.String()), frames: n, srcs: srcs}
}

func (h *hotPath) oneRead() {
	pr := h.pool.Get()
	h.framer.Feed(h.read, pr)
	pr.Flush()
	h.pool.Put(pr)
}

// TestHotPathAllocations: framing + scan + classification + routing + ring
// push (and the batcher behind it) allocate nothing per message, also with
// Darktrace-aware routes and de-duplication (issue 17).
func TestHotPathAllocations(t *testing.T) {
	if alloctest.Race {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	for _, tc := range []struct {
		size   int
		routes []forward.RouteSpec
	}{{1500, nil}, {4000, nil}, {1500, darktraceRoutes(false)}, {4000, darktraceRoutes(true)}} {
		size := tc.size
		h := newHotPathWith(t, size, nil, tc.routes)
		for range 1000 {
			h.oneRead()
		}
		if allocs := alloctest.PerRun(100, h.oneRead); allocs != 0 {
			t.Errorf("%d-byte alerts: %.2f allocations per read of %d messages, want 0", size, allocs, h.frames)
		}
		// The per-source table was fed: one sender, every message counted.
		if st := h.srcs.statuses(); len(st) != 1 || st[0].Alerts["model_breach"]+st[0].Alerts["ai_analyst"] < uint64(1000*h.frames) {
			t.Errorf("%d-byte alerts: sources %+v, want one with at least %d alerts", size, st, 1000*h.frames)
		}
		h.pipe.Stop(context.Background())
	}
}

// BenchmarkFrameParseSpool is BenchmarkFrameParse with a spool: every block
// is appended to disk (fsync every second) before it is queued.
func BenchmarkFrameParseSpool(b *testing.B) {
	for _, size := range []int{1500, 4000} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			sp, err := spool.Open(spool.Options{Dir: b.TempDir(), MaxSize: 4 << 30, Consumers: []string{"out"}, Metrics: metrics.NewSet()})
			if err != nil {
				b.Fatal(err)
			}
			h := newHotPathSpool(b, size, sp)
			b.SetBytes(int64(len(h.read) / h.frames))
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; done += h.frames {
				h.oneRead()
			}
			b.StopTimer()
			h.pipe.Stop(context.Background())
			sp.Close()
		})
	}
}

// BenchmarkFrameParse is the receive hot path per alert: framing, header
// scan, JSON validation and classification, routing, copy into a block,
// publish per read, and NDJSON encoding by the batcher; routes=darktrace
// adds issue 17's matchers, routes=dedup a de-duplicating route too.
func BenchmarkFrameParse(b *testing.B) {
	for _, tc := range []struct {
		name   string
		routes []forward.RouteSpec
	}{{"none", nil}, {"darktrace", darktraceRoutes(false)}, {"dedup", darktraceRoutes(true)}} {
		for _, size := range []int{1500, 4000} {
			name := fmt.Sprintf("size=%d", size)
			if tc.routes != nil {
				name += "/routes=" + tc.name
			}
			b.Run(name, func(b *testing.B) {
				h := newHotPathWith(b, size, nil, tc.routes)
				b.SetBytes(int64(len(h.read) / h.frames))
				b.ReportAllocs()
				b.ResetTimer()
				done := 0
				for ; done < b.N; done += h.frames {
					h.oneRead()
				}
				b.StopTimer()
				h.pipe.Stop(context.Background())
				b.ReportMetric(float64(h.sent.n.Load())/float64(done), "forwarded/alert")
			})
		}
	}
}

// BenchmarkFrameParseSources is BenchmarkFrameParse (1500 bytes, no
// routes) without and with the per-source table, in one binary: the cost
// of counting by source (issue 15).
func BenchmarkFrameParseSources(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("sources=%v", on), func(b *testing.B) {
			h := newHotPathSources(b, 1500, nil, nil, on)
			b.SetBytes(int64(len(h.read) / h.frames))
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; done += h.frames {
				h.oneRead()
			}
			b.StopTimer()
			h.pipe.Stop(context.Background())
		})
	}
}
