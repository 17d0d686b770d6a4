package output

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/internal/intaketest"
	"github.com/dtrelay/dtrelay/internal/logtest"
	"github.com/dtrelay/dtrelay/internal/retry"
)

// newRedirectTestSender returns a sekoia-http or http sender to in whose
// secret is secret, logging to log.
func newRedirectTestSender(t *testing.T, typ string, in *intaketest.HTTPIntake, secret string, set *metrics.Set, log zerolog.Logger) (forward.Sender, forward.Encoder) {
	t.Helper()
	tlsConf := TLSClientConfig{CAFile: in.CAFile()}
	if typ == "sekoia-http" {
		s, err := NewSekoiaHTTPSender(SekoiaHTTPConfig{URL: in.URL(), IntakeKey: secret, TLSClientConfig: tlsConf}, set, "out", log)
		if err != nil {
			t.Fatal(err)
		}
		return s, s.Encoder()
	}
	s, err := NewHTTPSender(HTTPConfig{URL: in.URL() + "/ingest", Headers: map[string]string{"X-Api-Key": secret},
		TLSClientConfig: tlsConf}, set, "out", log)
	if err != nil {
		t.Fatal(err)
	}
	return s, s.Encoder()
}

const redirectMsg = "intake answered with a redirect"

// TestHTTPRedirectIsRetriedAndLoggedOnce: an intake answering 302 (here,
// three times, until the operator fixes it) loses nothing: the batcher
// retries with its capped backoff and every event arrives once. The
// redirect is logged once, not once per retry, with its Location and the
// output's secret redacted from it; after a request went through, a new
// redirect is logged again.
func TestHTTPRedirectIsRetriedAndLoggedOnce(t *testing.T) {
	for _, typ := range []string{"sekoia-http", "http"} {
		t.Run(typ, func(t *testing.T) {
			in := intaketest.NewSekoiaHTTP(t, testKey)
			var logs logtest.Buffer
			log := zerolog.New(&logs).Level(zerolog.DebugLevel)
			set := metrics.NewSet()
			s, enc := newRedirectTestSender(t, typ, in, testKey, set, log)
			p, err := forward.New(forward.Options{
				Inputs:     []forward.InputSpec{{Name: "tcp"}},
				Outputs:    []forward.OutputSpec{{Name: "out", Encoder: enc, Sender: s, QueueSize: 1 << 20, MaxEvents: 10}},
				MaxPayload: 256 << 10, Metrics: set, Log: log,
			})
			if err != nil {
				t.Fatal(err)
			}
			const location = "https://login.example/sso?next=%2Fplain%2Fbatch&key=" + testKey
			in.FailNext(3, intaketest.Fault{Status: http.StatusFound, Location: location, Body: "<html>Moved</html>"})
			var frames []string
			var want [][]byte
			for i := range 25 {
				frames = append(frames, line(i))
				want = append(want, []byte(alert(i)))
			}
			feed(p, 0, frames[:20], 5)
			waitFor(t, "the first 20 events", func() bool { return len(in.Events()) == 20 })

			// A new redirect after the fix is news: logged again, once.
			in.FailNext(2, intaketest.Fault{Status: http.StatusMovedPermanently, Location: "/elsewhere"})
			feed(p, 0, frames[20:], 5)
			waitFor(t, "every event", func() bool { return len(in.Events()) == 25 })
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if lost := p.Stop(ctx); lost != 0 {
				t.Fatalf("lost %d events", lost)
			}
			outEqualEvents(t, in.Events(), want)

			logged := logs.Lines(redirectMsg)
			if len(logged) != 2 {
				t.Fatalf("%d redirect log lines for 5 redirects in 2 episodes, want 2:\n%s", len(logged), logs.String())
			}
			var first struct {
				Level, Location, URL string
				Status               int
			}
			if err := json.Unmarshal([]byte(logged[0]), &first); err != nil {
				t.Fatal(err)
			}
			wantLoc := strings.ReplaceAll(location, testKey, "[redacted]")
			if first.Level != "error" || first.Status != 302 || first.Location != wantLoc || !strings.HasPrefix(first.URL, in.URL()) {
				t.Fatalf("redirect logged as %s; want level error, status 302, location %s", logged[0], wantLoc)
			}
			if !strings.Contains(logged[1], `"status":301`) || !strings.Contains(logged[1], `"location":"/elsewhere"`) {
				t.Fatalf("second redirect logged as %s", logged[1])
			}
			if n := len(logs.Lines("login.example")); n != 1 {
				t.Fatalf("the Location appears on %d log lines, want 1 (not one per retry)", n)
			}
			if n := len(logs.Lines("will retry")); n != 5 {
				t.Fatalf("%d retry lines for 5 redirects", n)
			}
			if strings.Contains(logs.String(), testKey) {
				t.Fatalf("the secret is in the logs:\n%s", logs.String())
			}
			for name, want := range map[string]string{
				`dtrelay_output_failures_total{output="out",reason="http_302"}`: "3",
				`dtrelay_output_failures_total{output="out",reason="http_301"}`: "2",
				`dtrelay_output_retries_total{output="out"}`:                    "5",
				`dtrelay_output_events_total{output="out"}`:                     "25",
			} {
				if got := metric(set, name); got != want {
					t.Errorf("%s = %q, want %s", name, got, want)
				}
			}
			var prom bytes.Buffer
			set.WritePrometheus(&prom)
			for _, l := range strings.Split(prom.String(), "\n") {
				if strings.HasPrefix(l, "dtrelay_output_dropped_total") && !strings.HasSuffix(l, " 0") {
					t.Errorf("events dropped: %s", l)
				}
			}
		})
	}
}

// TestHTTPRetryAfterIsCappedAt10Minutes: a Retry-After of an hour, in
// seconds or as an HTTP date, on 503, 429 or a redirect, delays the retry by
// 10 minutes; a shorter one is honoured as given. The delay is read from
// the sender's error and the batcher's retry log line, without waiting
// (forward's TestRetryDelayHonoursRetryAfter covers the arithmetic).
func TestHTTPRetryAfterIsCappedAt10Minutes(t *testing.T) {
	now := time.Now()
	inAnHour := now.Add(time.Hour).UTC().Format(http.TimeFormat)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{{"3600", retry.MaxAfter}, {inAnHour, retry.MaxAfter}, {"599", 599 * time.Second}} {
		if got, ok := retry.ParseAfter(tc.in, now); !ok || got != tc.want {
			t.Errorf("retry.ParseAfter(%q) = %v, %v; want %v", tc.in, got, ok, tc.want)
		}
	}
	in := intaketest.NewSekoiaHTTP(t, testKey)
	s, _ := newTestSekoia(t, in, SekoiaHTTPConfig{})
	for _, tc := range []struct {
		fault intaketest.Fault
		want  time.Duration
	}{
		{intaketest.Fault{Status: 503, RetryAfter: "3600"}, retry.MaxAfter},
		{intaketest.Fault{Status: 429, RetryAfter: inAnHour}, retry.MaxAfter},
		{intaketest.Fault{Status: 302, RetryAfter: "3600", Location: "https://intake.example/"}, retry.MaxAfter},
		{intaketest.Fault{Status: 307, RetryAfter: "120", Location: "https://intake.example/"}, 2 * time.Minute},
	} {
		in.FailNext(1, tc.fault)
		err := s.Send(context.Background(), outBatch(t, s.Encoder(), outAlert(1, 300)))
		var ra *forward.RetryAfterError
		if !errors.As(err, &ra) || ra.After < tc.want-2*time.Second || ra.After > tc.want {
			t.Errorf("HTTP %d with Retry-After %q: err %v, want a retry after %v", tc.fault.Status, tc.fault.RetryAfter, err, tc.want)
		}
	}

	// Through the batcher: the retry is scheduled 10 minutes out, and Stop
	// does not wait for it.
	var logs logtest.Buffer
	set := metrics.NewSet()
	sender, err := NewSekoiaHTTPSender(SekoiaHTTPConfig{URL: in.URL(), IntakeKey: testKey,
		TLSClientConfig: TLSClientConfig{CAFile: in.CAFile()}}, set, "out", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	p, err := forward.New(forward.Options{
		Inputs:     []forward.InputSpec{{Name: "tcp"}},
		Outputs:    []forward.OutputSpec{{Name: "out", Encoder: sender.Encoder(), Sender: sender, QueueSize: 1 << 20}},
		MaxPayload: 256 << 10, Metrics: set, Log: zerolog.New(&logs),
	})
	if err != nil {
		t.Fatal(err)
	}
	in.FailNext(1, intaketest.Fault{Status: 503, RetryAfter: "3600"})
	feed(p, 0, []string{line(1)}, 1)
	waitFor(t, "the retry to be scheduled", func() bool { return len(logs.Lines("will retry")) == 1 })
	var logged struct {
		RetryIn float64 `json:"retry_in"` // zerolog: milliseconds
	}
	if err := json.Unmarshal([]byte(logs.Lines("will retry")[0]), &logged); err != nil {
		t.Fatal(err)
	}
	if got := time.Duration(logged.RetryIn * float64(time.Millisecond)); got != retry.MaxAfter {
		t.Fatalf("batcher retries in %v after Retry-After: 3600, want %v", got, retry.MaxAfter)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	p.Stop(ctx)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Stop took %v", d)
	}
}
