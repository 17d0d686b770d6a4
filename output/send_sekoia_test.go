package output

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/internal/alloctest"
	"github.com/dtrelay/dtrelay/internal/intaketest"
	"github.com/dtrelay/dtrelay/internal/retry"
)

const testKey = "0123456789abcdef-SECRET-KEY-0001"

// newTestSekoia returns a sender to in, configured by cfg (URL, key and CA
// filled in), with its metrics in a new set.
func newTestSekoia(t *testing.T, in *intaketest.HTTPIntake, cfg SekoiaHTTPConfig) (*SekoiaHTTPSender, *metrics.Set) {
	t.Helper()
	cfg.URL, cfg.IntakeKey = in.URL(), testKey
	if cfg.CAFile == "" {
		cfg.CAFile = in.CAFile()
	}
	set := metrics.NewSet()
	s, err := NewSekoiaHTTPSender(cfg, set, "sek", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, set
}

// outCount returns the value of counter name{output="sek",labels}.
func outCount(set *metrics.Set, name, labels string) int {
	l := `{output="sek"}`
	if labels != "" {
		l = `{output="sek",` + labels + `}`
	}
	return int(set.GetOrCreateCounter(name + l).Get())
}

func TestSekoiaHTTPDelivers(t *testing.T) {
	for _, ep := range []string{SekoiaEndpointPlain, SekoiaEndpointBatch} {
		for _, comp := range []string{CompressionGzip, CompressionNone} {
			t.Run(ep+"/"+comp, func(t *testing.T) {
				in := intaketest.NewSekoiaHTTP(t, testKey)
				s, _ := newTestSekoia(t, in, SekoiaHTTPConfig{Endpoint: ep, Compression: comp})
				first := outAlerts(50, 1500)
				withLF := []byte("{\"a\":\"\\\"quoted\\\" \\\\ and \\n\",\"b\":\n1}")
				second := [][]byte{outAlert(99, 300), withLF}
				for _, payloads := range [][][]byte{first, second} {
					if err := s.Send(context.Background(), outBatch(t, s.Encoder(), payloads...)); err != nil {
						t.Fatal(err)
					}
				}
				if ep == SekoiaEndpointPlain { // a line protocol: the LF between JSON tokens became a space
					second[1] = []byte(strings.ReplaceAll(string(withLF), "\n1}", " 1}"))
				}
				outEqualEvents(t, in.Events(), append(first, second...))
				reqs := in.Requests()
				wantPath := map[string]string{SekoiaEndpointPlain: "/plain/batch", SekoiaEndpointBatch: "/batch"}[ep]
				for _, r := range reqs {
					if r.Path != wantPath || r.Gzip != (comp == CompressionGzip) || r.Status != 200 {
						t.Fatalf("request %+v, want path %s gzip %v", r, wantPath, comp == CompressionGzip)
					}
				}
				if len(reqs) != 2 || in.Conns() != 1 {
					t.Fatalf("%d requests on %d connections, want 2 on 1 (keep-alive)", len(reqs), in.Conns())
				}
			})
		}
	}
}

func TestSekoiaHTTPRealSamples(t *testing.T) {
	samples := outSamples(t)
	for _, ep := range []string{SekoiaEndpointPlain, SekoiaEndpointBatch} {
		in := intaketest.NewSekoiaHTTP(t, testKey)
		s, _ := newTestSekoia(t, in, SekoiaHTTPConfig{Endpoint: ep})
		if err := s.Send(context.Background(), outBatch(t, s.Encoder(), samples...)); err != nil {
			t.Fatal(err)
		}
		outEqualEvents(t, in.Events(), samples)
	}
}

func TestSekoiaHTTPStatusClasses(t *testing.T) {
	httpDate := time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)
	cases := []struct {
		name    string
		fault   intaketest.Fault
		fixable string        // FixableError.Reason wanted
		after   time.Duration // RetryAfterError.After wanted (±2s)
		reason  string        // failure counted
	}{
		{"500_retryable", intaketest.Fault{Status: 500}, "", 0, "http_500"},
		{"502_retryable", intaketest.Fault{Status: 502}, "", 0, "http_502"},
		{"408_retryable", intaketest.Fault{Status: 408}, "", 0, "http_408"},
		{"429_retry_after_seconds", intaketest.Fault{Status: 429, RetryAfter: "7"}, "", 7 * time.Second, "http_429"},
		{"503_retry_after_date", intaketest.Fault{Status: 503, RetryAfter: httpDate}, "", 30 * time.Second, "http_503"},
		{"429_without_retry_after", intaketest.Fault{Status: 429}, "", 0, "http_429"},
		{"401_fixable", intaketest.Fault{Status: 401, Body: `{"error":"bad key"}`}, "http_401", 0, "http_401"},
		{"403_fixable", intaketest.Fault{Status: 403}, "http_403", 0, "http_403"},
		{"404_fixable", intaketest.Fault{Status: 404}, "http_404", 0, "http_404"},
		{"302_fixable", intaketest.Fault{Status: 302, Location: "/login"}, "http_302", 0, "http_302"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := intaketest.NewSekoiaHTTP(t, testKey)
			s, set := newTestSekoia(t, in, SekoiaHTTPConfig{})
			payloads := outAlerts(3, 500)
			in.FailNext(1, tc.fault)
			err := s.Send(context.Background(), outBatch(t, s.Encoder(), payloads...))
			if err == nil {
				t.Fatal("Send succeeded")
			}
			var fix *forward.FixableError
			if errors.As(err, &fix) != (tc.fixable != "") || (fix != nil && fix.Reason != tc.fixable) {
				t.Fatalf("err = %v (%T), want fixable %q", err, err, tc.fixable)
			}
			if errors.As(err, new(*forward.PermanentError)) {
				t.Fatalf("err = %v: permanent, would give the events up", err)
			}
			var ra *forward.RetryAfterError
			if errors.As(err, &ra) != (tc.after != 0) || (ra != nil && (ra.After < tc.after-2*time.Second || ra.After > tc.after)) {
				t.Fatalf("err = %v, want retry after %v", err, tc.after)
			}
			if n := outCount(set, "dtrelay_output_failures_total", `reason="`+tc.reason+`"`); n != 1 {
				t.Fatalf("failures{%s} = %d", tc.reason, n)
			}
			if len(in.Events()) != 0 {
				t.Fatal("a refused request was recorded")
			}
			// The batcher's retry goes through.
			if err := s.Send(context.Background(), outBatch(t, s.Encoder(), payloads...)); err != nil {
				t.Fatal(err)
			}
			outEqualEvents(t, in.Events(), payloads)
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"120", 120 * time.Second, true},
		{" 0 ", 0, true},
		{"-1", 0, false},
		{"", 0, false},
		{"soon", 0, false},
		{"99999999999999", retry.MaxAfter, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{"Monday, 02-Jan-25 03:05:05 GMT", time.Minute, true}, // RFC 850, still allowed
	}
	for _, tc := range cases {
		got, ok := retry.ParseAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("retry.ParseAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestSekoiaHTTP413SplitsAndRejectsTheTooLargeEvent(t *testing.T) {
	for _, ep := range []string{SekoiaEndpointPlain, SekoiaEndpointBatch} {
		t.Run(ep, func(t *testing.T) {
			in := intaketest.NewSekoiaHTTP(t, testKey)
			in.RejectLarger(8000)
			s, set := newTestSekoia(t, in, SekoiaHTTPConfig{Endpoint: ep})
			payloads := outAlerts(12, 1000)
			big := outAlert(100, 20_000)
			all := append(append(append([][]byte{}, payloads[:5]...), big), payloads[5:]...)
			b := outBatch(t, s.Encoder(), all...)
			if err := s.Send(context.Background(), b); err != nil {
				t.Fatal(err)
			}
			outEqualEvents(t, in.Events(), payloads)
			if got := b.Rejected(); len(got) != 1 || got[0] != (forward.Rejection{Index: 5, Reason: "rejected_413"}) {
				t.Fatalf("rejected %v, want event 5 (rejected_413)", got)
			}
			if n := outCount(set, "dtrelay_output_rejected_total", `reason="rejected_413"`); n != 0 {
				t.Fatalf("rejected_total{rejected_413} = %d: the batcher keeps the event, the sender drops nothing", n)
			}
			for _, r := range in.Requests() {
				if r.Status == 200 && r.BodyBytes > 8000 {
					t.Fatalf("accepted request of %d bytes", r.BodyBytes)
				}
			}
		})
	}
}

func TestSekoiaHTTPSplitsBodiesOverMaxBodyBytes(t *testing.T) {
	for _, ep := range []string{SekoiaEndpointPlain, SekoiaEndpointBatch} {
		t.Run(ep, func(t *testing.T) {
			in := intaketest.NewSekoiaHTTP(t, testKey)
			const maxBody = 16 << 10
			s, _ := newTestSekoia(t, in, SekoiaHTTPConfig{Endpoint: ep, MaxBodyBytes: maxBody})
			payloads := outAlerts(40, 1500)
			if err := s.Send(context.Background(), outBatch(t, s.Encoder(), payloads...)); err != nil {
				t.Fatal(err)
			}
			outEqualEvents(t, in.Events(), payloads)
			reqs := in.Requests()
			if min := (len(outBatch(t, s.Encoder(), payloads...).Data) + maxBody - 1) / maxBody; len(reqs) < min {
				t.Fatalf("%d requests, want at least %d", len(reqs), min)
			}
			for _, r := range reqs {
				if r.BodyBytes > maxBody {
					t.Fatalf("request body of %d bytes, limit %d", r.BodyBytes, maxBody)
				}
			}
		})
	}
}

func TestSekoiaHTTPHangTimesOut(t *testing.T) {
	in := intaketest.NewSekoiaHTTP(t, testKey)
	s, set := newTestSekoia(t, in, SekoiaHTTPConfig{Timeout: 300 * time.Millisecond})
	payloads := outAlerts(4, 800)
	in.FailNext(1, intaketest.Fault{Hang: true})
	start := time.Now()
	err := s.Send(context.Background(), outBatch(t, s.Encoder(), payloads...))
	if err == nil || !isTimeout(err) {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Send took %v with a 300ms timeout", d)
	}
	if n := outCount(set, "dtrelay_output_failures_total", `reason="timeout"`); n != 1 {
		t.Fatalf("failures{timeout} = %d", n)
	}
	if n := outCount(set, "dtrelay_output_possible_duplicates_total", ""); n != len(payloads) {
		t.Fatalf("possible duplicates = %d, want %d (the intake may have taken the request)", n, len(payloads))
	}
	if err := s.Send(context.Background(), outBatch(t, s.Encoder(), payloads...)); err != nil {
		t.Fatal(err)
	}
	outEqualEvents(t, in.Events(), payloads)
}

func TestSekoiaHTTPConnectionClosedMidRequest(t *testing.T) {
	in := intaketest.NewSekoiaHTTP(t, testKey)
	s, set := newTestSekoia(t, in, SekoiaHTTPConfig{})
	payloads := outAlerts(4, 800)
	if err := s.Send(context.Background(), outBatch(t, s.Encoder(), payloads[:1]...)); err != nil {
		t.Fatal(err)
	}
	in.FailNext(1, intaketest.Fault{Close: true})
	err := s.Send(context.Background(), outBatch(t, s.Encoder(), payloads[1:]...))
	var perm *forward.PermanentError
	if err == nil || errors.As(err, &perm) {
		t.Fatalf("err = %v, want a retryable error", err)
	}
	if n := outCount(set, "dtrelay_output_failures_total", `reason="connection"`); n != 1 {
		t.Fatalf("failures{connection} = %d", n)
	}
	if err := s.Send(context.Background(), outBatch(t, s.Encoder(), payloads[1:]...)); err != nil {
		t.Fatal(err)
	}
	outEqualEvents(t, in.Events(), payloads)
	if n := outCount(set, "dtrelay_output_reconnects_total", ""); n != 1 || in.Conns() != 2 {
		t.Fatalf("reconnects = %d, intake connections = %d; want 1 and 2", n, in.Conns())
	}
}

func TestSekoiaHTTPCountsMissingEventIDs(t *testing.T) {
	in := intaketest.NewSekoiaHTTP(t, testKey)
	s, set := newTestSekoia(t, in, SekoiaHTTPConfig{Endpoint: SekoiaEndpointBatch})
	in.FailNext(1, intaketest.Fault{Status: 200, Body: `{"event_ids":["a","b"]}`})
	if err := s.Send(context.Background(), outBatch(t, s.Encoder(), outAlerts(5, 500)...)); err != nil {
		t.Fatal(err)
	}
	if n := outCount(set, "dtrelay_output_rejected_total", `reason="missing_event_id"`); n != 3 {
		t.Fatalf("missing_event_id = %d, want 3", n)
	}
}

func TestSekoiaHTTPRejectsUnknownCA(t *testing.T) {
	in := intaketest.NewSekoiaHTTP(t, testKey)
	s, err := NewSekoiaHTTPSender(SekoiaHTTPConfig{URL: in.URL(), IntakeKey: testKey}, nil, "sek", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Send(context.Background(), outBatch(t, s.Encoder(), outAlert(1, 300)))
	wantRetriedCertError(t, err)
}

func TestSekoiaHTTPCancelledContextReturnsPromptly(t *testing.T) {
	in := intaketest.NewSekoiaHTTP(t, testKey)
	s, set := newTestSekoia(t, in, SekoiaHTTPConfig{})
	in.FailNext(1, intaketest.Fault{Hang: true})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Send(ctx, outBatch(t, s.Encoder(), outAlert(1, 300))); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's", err)
	}
	if n := outCount(set, "dtrelay_output_failures_total", `reason="timeout"`); n != 0 {
		t.Fatal("a cancelled send was counted as a failure")
	}
}

// discardIntake starts an HTTPS server that reads and discards request
// bodies (allocating nothing per request to speak of) and answers 200 with
// no body; it returns its URL and a CA file for it.
func discardIntake(t testing.TB) (url, caFile string) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	t.Cleanup(srv.Close)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.URL, caFile
}

// TestSekoiaHTTPReusesBuffers: in steady state a Send of a 1.5 MB batch
// allocates a few KB (request, headers, TLS records), not a body.
func TestSekoiaHTTPReusesBuffers(t *testing.T) {
	if alloctest.Race {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	for _, comp := range []string{CompressionGzip, CompressionNone} {
		t.Run(comp, func(t *testing.T) {
			url, ca := discardIntake(t)
			s, err := NewSekoiaHTTPSender(SekoiaHTTPConfig{URL: url, IntakeKey: testKey, Compression: comp,
				TLSClientConfig: TLSClientConfig{CAFile: ca}}, nil, "sek", zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			b := outBatch(t, s.Encoder(), outAlerts(1000, 1500)...)
			send := func() {
				if err := s.Send(context.Background(), b); err != nil {
					t.Fatal(err)
				}
			}
			send()
			send()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			const n = 10
			for range n {
				send()
			}
			runtime.ReadMemStats(&after)
			perSend := int(after.TotalAlloc-before.TotalAlloc) / n
			if perSend > 24<<10 { // net/http's io.Copy buffer alone was 32 KiB (tlsBodyConn)
				t.Fatalf("%d bytes allocated per Send of a %d-byte batch (client and server)", perSend, len(b.Data))
			}
			t.Logf("%d bytes allocated per Send of a %d-byte batch (client and server)", perSend, len(b.Data))
		})
	}
}

func TestSekoiaHTTPConfigErrors(t *testing.T) {
	for i, cfg := range []SekoiaHTTPConfig{
		{},
		{IntakeKey: "k", Endpoint: "jsons"},
		{IntakeKey: "k", URL: "ftp://intake.sekoia.io"},
		{IntakeKey: "k", URL: "https://intake.sekoia.io", Compression: "zstd"},
		{IntakeKey: "k", TLSClientConfig: TLSClientConfig{CAFile: "/nonexistent/ca.pem"}},
		{IntakeKey: "k", TLSClientConfig: TLSClientConfig{ClientCertFile: "c.pem"}},
	} {
		if _, err := NewSekoiaHTTPSender(cfg, nil, "sek", zerolog.Nop()); err == nil {
			t.Errorf("config %d %+v: no error", i, cfg)
		} else if strings.Contains(err.Error(), "k\"") {
			t.Errorf("config %d: error quotes the key: %v", i, err)
		}
	}
	s, err := NewSekoiaHTTPSender(SekoiaHTTPConfig{IntakeKey: "k"}, nil, "sek", zerolog.Nop())
	if err != nil || s.core.url != DefaultSekoiaURL+"/plain/batch" || !s.core.gzip {
		t.Fatalf("defaults: %v, %+v", err, s)
	}
	if _, ok := s.Encoder().(NDJSONEncoder); !ok {
		t.Fatalf("plain endpoint encoder is %T", s.Encoder())
	}
}

// wantRetriedCertError: a rejected certificate fails Send with an error the
// batcher retries (not Permanent: alerts are kept until it is fixed).
func wantRetriedCertError(t *testing.T, err error) {
	t.Helper()
	var perm *forward.PermanentError
	if err == nil || errors.As(err, &perm) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("err = %v, want a retryable certificate error", err)
	}
}
