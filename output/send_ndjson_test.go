package output

import (
	"context"
	"errors"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/internal/intaketest"
)

func newTestHTTP(t *testing.T, in *intaketest.HTTPIntake, cfg HTTPConfig) (*HTTPSender, *metrics.Set) {
	t.Helper()
	cfg.URL = in.URL() + "/v1/ingest?tenant=a"
	cfg.CAFile = in.CAFile()
	set := metrics.NewSet()
	s, err := NewHTTPSender(cfg, set, "sek", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, set
}

func TestHTTPSenderPostsNDJSON(t *testing.T) {
	for _, comp := range []string{CompressionGzip, CompressionNone} {
		t.Run(comp, func(t *testing.T) {
			in := intaketest.NewSekoiaHTTP(t, testKey)
			s, _ := newTestHTTP(t, in, HTTPConfig{Compression: comp,
				Headers: map[string]string{"Authorization": "Bearer t0ken", "X-Tenant": "acme"}})
			payloads := append(outAlerts(100, 1500), outAlert(7, 300_000)) // no Sekoia limit here
			if err := s.Send(context.Background(), outBatch(t, s.Encoder(), payloads...)); err != nil {
				t.Fatal(err)
			}
			outEqualEvents(t, in.Events(), payloads)
			reqs := in.Requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			r := reqs[0]
			if r.Path != "/v1/ingest" || r.Gzip != (comp == CompressionGzip) ||
				r.Header.Get("Authorization") != "Bearer t0ken" || r.Header.Get("X-Tenant") != "acme" ||
				r.Header.Get("Content-Type") != "application/x-ndjson" {
				t.Fatalf("request %+v", r)
			}
		})
	}
}

func TestHTTPSenderStatusRules(t *testing.T) {
	in := intaketest.NewSekoiaHTTP(t, testKey)
	in.RejectLarger(10_000)
	s, set := newTestHTTP(t, in, HTTPConfig{})
	payloads := outAlerts(20, 1000)
	in.FailNext(1, intaketest.Fault{Status: 403})
	var fix *forward.FixableError
	if err := s.Send(context.Background(), outBatch(t, s.Encoder(), payloads...)); !errors.As(err, &fix) || fix.Reason != "http_403" {
		t.Fatalf("err = %v, want fixable http_403 (retried, events kept)", err)
	}
	in.FailNext(1, intaketest.Fault{Status: 503, RetryAfter: "3"})
	var ra *forward.RetryAfterError
	if err := s.Send(context.Background(), outBatch(t, s.Encoder(), payloads...)); !errors.As(err, &ra) {
		t.Fatalf("err = %v, want retry after", err)
	}
	// 20 KB: split on 413 until each request is under the intake's 10 KB.
	b := outBatch(t, s.Encoder(), payloads...)
	if err := s.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	outEqualEvents(t, in.Events(), payloads)
	if len(b.Rejected()) != 0 {
		t.Fatalf("rejected %v", b.Rejected())
	}
	_ = set
}
