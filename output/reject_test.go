package output

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/internal/intaketest"
	"github.com/dtrelay/dtrelay/internal/logtest"
)

// rejectPipeline is a pipeline with one HTTP output "out" to in (a
// sekoia-http sender, or the generic http one), its dead-letter file in a
// temporary directory, logging at debug level to logs.
type rejectPipeline struct {
	p    *forward.Pipeline
	set  *metrics.Set
	dl   *forward.DeadLetter
	logs *logtest.Buffer
}

func newRejectPipeline(t *testing.T, typ string, in *intaketest.HTTPIntake, endpoint string) *rejectPipeline {
	t.Helper()
	rp := &rejectPipeline{set: metrics.NewSet(), logs: &logtest.Buffer{}}
	log := zerolog.New(rp.logs).Level(zerolog.DebugLevel)
	var s forward.Sender
	var enc forward.Encoder
	if typ == "sekoia-http" {
		ss, err := NewSekoiaHTTPSender(SekoiaHTTPConfig{URL: in.URL(), IntakeKey: testKey, Endpoint: endpoint,
			TLSClientConfig: TLSClientConfig{CAFile: in.CAFile()}}, rp.set, "out", log)
		if err != nil {
			t.Fatal(err)
		}
		s, enc = ss, ss.Encoder()
	} else {
		hs, err := NewHTTPSender(HTTPConfig{URL: in.URL() + "/ingest", TLSClientConfig: TLSClientConfig{CAFile: in.CAFile()}}, rp.set, "out", log)
		if err != nil {
			t.Fatal(err)
		}
		s, enc = hs, hs.Encoder()
	}
	rp.dl = forward.NewDeadLetter(filepath.Join(t.TempDir(), "dead-letter"), "out", 64<<20)
	p, err := forward.New(forward.Options{
		Inputs: []forward.InputSpec{{Name: "tcp"}},
		Outputs: []forward.OutputSpec{{Name: "out", Encoder: enc, Sender: s, QueueSize: 8 << 20, MaxEvents: 10,
			MaxWait: 5 * time.Millisecond, DeadLetter: rp.dl}},
		MaxPayload: 256 << 10, Metrics: rp.set, Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	rp.p = p
	t.Cleanup(func() { stopWithin(p, 5*time.Second) })
	return rp
}

func (rp *rejectPipeline) metric(name, labels string) string {
	l := `{output="out"}`
	if labels != "" {
		l = `{output="out",` + labels + `}`
	}
	return metric(rp.set, name+l)
}

// noLoss fails if any event was dropped, for any reason.
func noLoss(t *testing.T, set *metrics.Set) {
	t.Helper()
	var prom bytes.Buffer
	set.WritePrometheus(&prom)
	for _, l := range strings.Split(prom.String(), "\n") {
		if (strings.HasPrefix(l, "dtrelay_output_dropped_total") || strings.HasPrefix(l, "dtrelay_output_dead_letter_total")) &&
			!strings.HasSuffix(l, " 0") {
			t.Errorf("events given up on: %s", l)
		}
	}
}

// TestOperatorFixableStatusKeepsEventsAndMarksOutputDown: an intake
// answering 401, 403 or 404 for a while (a revoked key, a key without the
// right, a wrong url) loses nothing: the batcher retries with backoff, the
// output reports itself down (dtrelay_output_up 0) and up again once the
// operator fixed it, every event arrives once, and the fix is logged once
// at error level for the episode, not once per retry.
func TestOperatorFixableStatusKeepsEventsAndMarksOutputDown(t *testing.T) {
	for _, tc := range []struct {
		typ    string
		status int
		hint   string
	}{
		{"sekoia-http", 401, "intake key rejected (401): check intake_key"},
		{"sekoia-http", 403, "intake key lacks permission (403)"},
		{"sekoia-http", 404, "(404): check url"},
		{"http", 401, "intake refused the credentials (401)"},
		{"http", 404, "nothing at this url (404): check url"},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.typ, tc.status), func(t *testing.T) {
			in := intaketest.NewSekoiaHTTP(t, testKey)
			in.Refuse(tc.status)
			rp := newRejectPipeline(t, tc.typ, in, "")
			var frames []string
			var want [][]byte
			for i := range 20 {
				frames = append(frames, line(i))
				want = append(want, []byte(alert(i)))
			}
			feed(rp.p, 0, frames, 5)
			failures := `reason="http_` + fmt.Sprint(tc.status) + `"`
			waitFor(t, "three refused attempts", func() bool { return rp.metric("dtrelay_output_failures_total", failures) >= "3" })
			if up := rp.metric("dtrelay_output_up", ""); up != "0" {
				t.Fatalf("dtrelay_output_up = %s while the intake refuses every request, want 0", up)
			}
			if n := len(in.Events()); n != 0 {
				t.Fatalf("%d events accepted by a refusing intake", n)
			}
			in.Refuse(0) // the operator fixed it
			waitFor(t, "every event", func() bool { return len(in.Events()) == len(want) })
			waitFor(t, "the output up", func() bool { return rp.metric("dtrelay_output_up", "") == "1" })
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if lost := rp.p.Stop(ctx); lost != 0 {
				t.Fatalf("lost %d events", lost)
			}
			outEqualEvents(t, in.Events(), want)
			noLoss(t, rp.set)
			errs := rp.logs.LevelLines("error")
			if len(errs) != 1 || !strings.Contains(errs[0], tc.hint) {
				t.Fatalf("error lines %q, want one saying %q", errs, tc.hint)
			}
			if warns := rp.logs.LevelLines("warn"); len(warns) != 0 {
				t.Fatalf("warnings logged per retry: %q", warns)
			}
			if n := len(rp.logs.Lines("will retry")); n < 3 {
				t.Fatalf("%d debug retry lines, want one per retry", n)
			}
			if n := len(rp.logs.Lines("intake accepts events again")); n != 1 {
				t.Fatalf("%d recovery lines, want 1", n)
			}
			if _, err := os.Stat(rp.dl.Path()); !os.IsNotExist(err) {
				t.Fatalf("dead-letter file exists (%v): nothing was refused for its content", err)
			}
		})
	}
}

// deadLines reads the dead-letter file.
func deadLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("dead-letter line is not JSON: %v: %.200q", err, l)
		}
		out = append(out, m)
	}
	return out
}

// TestPerEventRejectionsGoToTheDeadLetterFile: an event refused for its
// content (413 for it alone, a 400 isolated by halving, a per-event status
// in a /batch answer, or over Sekoia's 250,000-byte limit) and only that
// event goes to the output's dead-letter file, byte for byte, counted under
// its reason; every other event is delivered and the output stays up.
func TestPerEventRejectionsGoToTheDeadLetterFile(t *testing.T) {
	poison := `{"pbid":999,"poison":"yes","model":{"name":"Bad"},"score":0.9}`
	for _, tc := range []struct {
		name, typ, endpoint, reason string
		setup                       func(in *intaketest.HTTPIntake)
		bad                         string
	}{
		{"413_alone", "sekoia-http", "", "rejected_413", func(in *intaketest.HTTPIntake) { in.RejectLarger(8000) }, string(outAlert(7, 20_000))},
		{"400_isolated", "http", "", "rejected_400", func(in *intaketest.HTTPIntake) { in.RefuseContaining([]byte(`"poison"`)) }, poison},
		{"batch_status", "sekoia-http", SekoiaEndpointBatch, "rejected_event", func(in *intaketest.HTTPIntake) { in.RefuseEvents([]byte(`poison`)) }, poison},
		{"oversize", "sekoia-http", "", "oversize", func(*intaketest.HTTPIntake) {}, string(outAlert(8, SekoiaMaxEvent+100))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := intaketest.NewSekoiaHTTP(t, testKey)
			tc.setup(in)
			rp := newRejectPipeline(t, tc.typ, in, tc.endpoint)
			var frames []string
			var want [][]byte
			for i := range 12 {
				if i == 5 {
					frames = append(frames, "<165>Aug  5 03:34:46 dt.example.com darktrace "+tc.bad)
					continue
				}
				frames = append(frames, line(i))
				want = append(want, []byte(alert(i)))
			}
			feed(rp.p, 0, frames, 12)
			waitFor(t, "the other events", func() bool { return len(in.Events()) == len(want) })
			waitFor(t, "the dead letter", func() bool { return rp.metric("dtrelay_output_dead_letter_total", `reason="`+tc.reason+`"`) == "1" })
			stopWithin(rp.p, 5*time.Second)
			outEqualEvents(t, in.Events(), want)
			lines := deadLines(t, rp.dl.Path())
			if len(lines) != 1 {
				t.Fatalf("%d dead-letter lines, want 1", len(lines))
			}
			l := lines[0]
			if l["output"] != "out" || l["reason"] != tc.reason || l["host"] != "dt.example.com" || l["app"] != "darktrace" || l["pri"] != 165.0 {
				t.Fatalf("dead-letter line %v", l)
			}
			if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(l["time"])); err != nil {
				t.Fatalf("time %v: %v", l["time"], err)
			}
			data, _ := os.ReadFile(rp.dl.Path())
			if !bytes.HasSuffix(data, []byte(`,"payload":`+tc.bad+"}\n")) {
				t.Fatalf("payload not kept byte for byte: %.300q", data)
			}
			if up := rp.metric("dtrelay_output_up", ""); up != "1" {
				t.Fatalf("dtrelay_output_up = %s", up)
			}
			if v := rp.metric("dtrelay_output_dropped_total", `reason="`+tc.reason+`"`); v != "" && v != "0" {
				t.Fatalf("dropped{%s} = %s: kept events are not dropped", tc.reason, v)
			}
		})
	}
}

// TestHTTP400IsPerEventOnlyWhenTheIntakeTakesOthers: a 400 is the event's
// when the intake accepts other events, the request's (Fixable, retried,
// nothing given up) when it accepts none: every event alone refused, or a
// lone event before the intake ever accepted one.
func TestHTTP400IsPerEventOnlyWhenTheIntakeTakesOthers(t *testing.T) {
	in := intaketest.NewSekoiaHTTP(t, testKey)
	s, _ := newTestHTTP(t, in, HTTPConfig{})
	poison := []byte(`{"poison":1}`)
	in.RefuseContaining([]byte(`"poison"`))
	wantFixable := func(b *forward.Batch) {
		t.Helper()
		err := s.Send(context.Background(), b)
		var fix *forward.FixableError
		if !errors.As(err, &fix) || fix.Reason != "http_400" {
			t.Fatalf("err = %v, want fixable http_400", err)
		}
	}
	// Nothing accepted yet: a lone refused event may be the request's fault.
	wantFixable(outBatch(t, s.Encoder(), poison))
	// Every event refused alone: the request.
	in.Refuse(400)
	before := len(in.Requests())
	wantFixable(outBatch(t, s.Encoder(), outAlerts(64, 300)...))
	if n := len(in.Requests()) - before; n > 9 {
		t.Fatalf("%d requests spent on a batch the intake refuses whole, want at most 9 (halving to two single events)", n)
	}
	in.Refuse(0)
	// Accepted others: the event's content.
	good := outAlerts(6, 300)
	b := outBatch(t, s.Encoder(), good[0], good[1], poison, good[2], good[3], poison, good[4])
	if err := s.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if r := b.Rejected(); len(r) != 2 || r[0] != (forward.Rejection{Index: 2, Reason: "rejected_400"}) || r[1] != (forward.Rejection{Index: 5, Reason: "rejected_400"}) {
		t.Fatalf("rejected %v, want events 2 and 5", r)
	}
	// Now trusted: a lone refused event is its content's.
	b = outBatch(t, s.Encoder(), poison)
	if err := s.Send(context.Background(), b); err != nil || len(b.Rejected()) != 1 {
		t.Fatalf("err %v, rejected %v; want event 0 rejected", err, b.Rejected())
	}
	outEqualEvents(t, in.Events(), good[:5])
}
