package output

import (
	"context"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/internal/intaketest"
)

// BenchmarkSekoiaHTTP measures the two Sekoia HTTPS endpoints, gzip on and
// off, with batches of 1000 Darktrace-shaped 1.5 KB events, one op per
// batch (encoding included, as the batcher does it):
//
//   - mock: against intaketest's HTTPS mock, which decodes and checks every
//     request as Sekoia would (gunzip, split lines or parse the JSON), on the
//     same cores: the relay and the intake together;
//   - discard: against an HTTPS server that only reads the body: the
//     sender's own cost.
//
// Reported: events/s and requests/s (wall clock), wire-B/event (bytes on
// the wire, after gzip) and body-B/event (before).
func BenchmarkSekoiaHTTP(b *testing.B) {
	const events, size = 1000, 1500
	payloads := outAlerts(events, size)
	for _, target := range []string{"mock", "discard"} {
		for _, ep := range []string{SekoiaEndpointPlain, SekoiaEndpointBatch} {
			for _, comp := range []string{CompressionGzip, CompressionNone} {
				b.Run(target+"/"+ep+"/"+comp, func(b *testing.B) {
					var url, ca string
					var in *intaketest.HTTPIntake
					if target == "mock" {
						in = intaketest.NewSekoiaHTTP(b, testKey)
						in.KeepEvents(false)
						url, ca = in.URL(), in.CAFile()
					} else {
						url, ca = discardIntake(b)
					}
					s, err := NewSekoiaHTTPSender(SekoiaHTTPConfig{URL: url, IntakeKey: testKey, Endpoint: ep,
						Compression: comp, TLSClientConfig: TLSClientConfig{CAFile: ca}}, metrics.NewSet(), "bench", zerolog.Nop())
					if err != nil {
						b.Fatal(err)
					}
					defer s.Close()
					enc := s.Encoder()
					batch := &forward.Batch{}
					recs := make([]*forward.Record, events)
					for i, p := range payloads {
						recs[i] = outRecord(p)
					}
					var body, wire int
					for _, r := range recs { // grow the batch once, as the batcher's steady state
						batch.Data, _ = enc.Append(batch.Data, r)
						batch.Ends = append(batch.Ends, len(batch.Data))
					}
					b.ReportAllocs()
					start := time.Now()
					for b.Loop() {
						batch.Reset()
						for _, r := range recs {
							batch.Data, _ = enc.Append(batch.Data, r)
							batch.Ends = append(batch.Ends, len(batch.Data))
						}
						if err := s.Send(context.Background(), batch); err != nil {
							b.Fatal(err)
						}
						body = len(batch.Data)
						wire = s.core.zbuf.Len()
						if comp == CompressionNone {
							wire = body
						}
					}
					secs := time.Since(start).Seconds()
					b.SetBytes(int64(body))
					b.ReportMetric(float64(b.N*events)/secs, "events/s")
					b.ReportMetric(float64(b.N)/secs, "requests/s")
					b.ReportMetric(float64(wire)/events, "wire-B/event")
					b.ReportMetric(float64(body)/events, "body-B/event")
					if in != nil && in.Count() != b.N*events {
						b.Fatalf("intake counted %d events, want %d", in.Count(), b.N*events)
					}
				})
			}
		}
	}
}
