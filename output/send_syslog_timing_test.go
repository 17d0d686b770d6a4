package output

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/internal/alloctest"
	"github.com/dtrelay/dtrelay/internal/intaketest"
)

// BenchmarkSyslogSender measures a syslog output (format sekoia,
// octet-counting) writing batches of 1000 1.5 KB events to a sink that reads
// and discards, over TCP and TLS: write + wait for every byte to be
// acknowledged (SIOCOUTQ), encoding included.
func BenchmarkSyslogSender(b *testing.B) {
	const events, size = 1000, 1500
	payloads := outAlerts(events, size)
	for _, useTLS := range []bool{false, true} {
		b.Run(map[bool]string{false: "tcp", true: "tls"}[useTLS], func(b *testing.B) {
			in := intaketest.NewSyslogWith(b, intaketest.SyslogOptions{TLS: useTLS, Discard: true})
			cfg := SyslogConfig{Address: in.Addr(), TLS: useTLS,
				SyslogEncoderConfig: SyslogEncoderConfig{Format: FormatSekoia, IntakeKey: testKey}}
			if useTLS {
				cfg.CAFile = in.CAFile()
			}
			s, err := NewSyslogSender(cfg, metrics.NewSet(), "bench", zerolog.Nop())
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
			}
			secs := time.Since(start).Seconds()
			b.SetBytes(int64(len(batch.Data)))
			b.ReportMetric(float64(b.N*events)/secs, "events/s")
		})
	}
}

// TestSyslogSenderVectoredAllocations: writing a vectored batch (writev from
// the records' bytes) costs no allocation per event, and no more per Send
// than writing a flat one (the count per Send is exact: the ack polls
// allocate nothing, so it does not depend on how many there were).
func TestSyslogSenderVectoredAllocations(t *testing.T) {
	if alloctest.Race {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	in := intaketest.NewSyslogWith(t, intaketest.SyslogOptions{Discard: true})
	s, _ := newTestSyslog(t, nil, SyslogConfig{Address: in.Addr(),
		SyslogEncoderConfig: SyslogEncoderConfig{Format: FormatSekoia, IntakeKey: testKey}})
	flatEnc, _ := NewSyslogEncoder(s.cfg.SyslogEncoderConfig)
	perSend := func(enc forward.Encoder, events int) float64 {
		b := outBatch(t, enc, outAlerts(events, 1500)...)
		send := func() {
			if err := s.Send(context.Background(), b); err != nil {
				t.Fatal(err)
			}
		}
		send() // connect, grow the sender's slices
		return alloctest.PerRun(20, send)
	}
	flat := perSend(flatEnc, 1000)
	v10, v1000 := perSend(s.Encoder(), 10), perSend(s.Encoder(), 1000)
	if v10 != v1000 || v1000 != flat {
		t.Fatalf("allocations per Send: vectored %v (10 events), %v (1000 events); flat %v", v10, v1000, flat)
	}
	t.Logf("allocations per Send: vectored %v, flat %v", v1000, flat)
}

// BenchmarkSyslogSenderBatch measures one batch of 1000 4 KB events through
// a plain-TCP syslog output as the batcher builds it: flat (encoded into
// Data, then one write: the payloads copied twice) or vectored (heads in
// the batch, one writev from the records: copied once, by the kernel).
// Encoding, writing and the wait for the acknowledgements are included;
// the sink reads and discards on the same cores.
func BenchmarkSyslogSenderBatch(b *testing.B) {
	const events = 1000
	for _, tc := range []struct {
		mode string
		size int
	}{{"flat", 1500}, {"vectored", 1500}, {"flat", 4000}, {"vectored", 4000}} {
		mode, payloads := tc.mode, outAlerts(events, tc.size)
		b.Run("tcp/"+mode+"/"+strconv.Itoa(tc.size), func(b *testing.B) {
			in := intaketest.NewSyslogWith(b, intaketest.SyslogOptions{Discard: true})
			cfg := SyslogConfig{Address: in.Addr(),
				SyslogEncoderConfig: SyslogEncoderConfig{Format: FormatSekoia, IntakeKey: testKey}}
			s, err := NewSyslogSender(cfg, metrics.NewSet(), "bench", zerolog.Nop())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			enc := s.Encoder()
			if mode == "flat" {
				enc, _ = NewSyslogEncoder(cfg.SyslogEncoderConfig)
			}
			recs := make([]*forward.Record, events)
			for i, p := range payloads {
				recs[i] = outRecord(p)
			}
			batch := &forward.Batch{}
			fill := func() {
				batch.Reset()
				for _, r := range recs {
					if se, ok := enc.(forward.SplitEncoder); ok {
						_ = batch.AppendSplit(se, r)
					} else {
						batch.Data, _ = enc.Append(batch.Data, r)
						batch.Ends = append(batch.Ends, len(batch.Data))
					}
				}
			}
			fill() // grow the batch once, as the batcher's steady state
			b.SetBytes(int64(batch.Size()))
			b.ReportAllocs()
			for b.Loop() {
				fill()
				if err := s.Send(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
		})
	}
}
