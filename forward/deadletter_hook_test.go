package forward

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/internal/logtest"
	"github.com/dtrelay/dtrelay/parser"
)

// TestDeadLetterRecordHook: a record the pipeline can never deliver (the
// spool cannot hold it) goes to the dead-letter file of every output it is
// routed to, counted under the reason given.
func TestDeadLetterRecordHook(t *testing.T) {
	dir := t.TempDir()
	dlA, dlB := NewDeadLetter(dir, "a", 1<<20), NewDeadLetter(dir, "b", 1<<20)
	p, set := newTestPipeline(t,
		OutputSpec{Name: "a", Encoder: lineEncoder{}, Sender: &recSender{}, QueueSize: 1 << 20, DeadLetter: dlA},
		OutputSpec{Name: "b", Encoder: lineEncoder{}, Sender: &recSender{}, QueueSize: 1 << 20, DeadLetter: dlB},
		OutputSpec{Name: "c", Encoder: lineEncoder{}, Sender: &recSender{}, QueueSize: 1 << 20})
	defer stopWithin(p, 5*time.Second)
	frame := []byte(line(3))
	payload := []byte(alert(3))
	off := bytes.Index(frame, payload)
	b := getBlock(1 << 14)
	h := parser.Header{Style: parser.Style3164, Pri: 165, Payload: parser.Span{Start: int32(off), End: int32(len(frame))}}
	b.appendRecord(frame, &h, &parser.Alert{}, false, 0, 0b011, time.Now().UnixNano())
	p.deadLetterRecord(b.buf, "spool_too_large")
	for _, dl := range []*DeadLetter{dlA, dlB} {
		data, err := os.ReadFile(dl.Path())
		if err != nil || !bytes.HasSuffix(data, append(append([]byte(`,"payload":`), payload...), "}\n"...)) ||
			!bytes.Contains(data, []byte(`"reason":"spool_too_large"`)) {
			t.Fatalf("%s: %v %q", dl.Path(), err, data)
		}
		if v := metric(set, `dtrelay_output_dead_letter_total{output="`+dl.Output()+`",reason="spool_too_large"}`); v != "1" {
			t.Fatalf("dead_letter_total{%s} = %q", dl.Output(), v)
		}
	}
	if v := metric(set, `dtrelay_output_dropped_total{output="c",reason="spool_too_large"}`); v != "" {
		t.Fatalf("output c, not routed, counted %q", v)
	}
}

// TestDeadLetterFullOrUnwritableIsCountedAndLogged: an event the dead-letter
// file cannot take (max_size reached, the directory unusable) is counted
// dropped under its own reason and logged at error level, never silently.
func TestDeadLetterFullOrUnwritableIsCountedAndLogged(t *testing.T) {
	dir := t.TempDir()
	notADir := filepath.Join(dir, "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, reason string
		dl           *DeadLetter
	}{
		{"full", "dead_letter_full", NewDeadLetter(filepath.Join(dir, "dl"), "out", 1000)},
		{"unwritable", "dead_letter_error", NewDeadLetter(filepath.Join(notADir, "dl"), "out", 1<<20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs logtest.Buffer
			set := metrics.NewSet()
			p, err := New(Options{
				Inputs:     []InputSpec{{Name: "tcp"}},
				Outputs:    []OutputSpec{{Name: "out", Encoder: lineEncoder{max: 500}, Sender: &recSender{}, QueueSize: 1 << 20, DeadLetter: tc.dl}},
				MaxPayload: 256 << 10, Metrics: set, Log: zerolog.New(&logs),
			})
			if err != nil {
				t.Fatal(err)
			}
			feed(p, 0, []string{line(1), "<165>Aug  5 03:34:46 dt darktrace " + `{"pbid":2,"pad":"` + strings.Repeat("x", 2000) + `"}`}, 2)
			name := `dtrelay_output_dropped_total{output="out",reason="` + tc.reason + `"}`
			waitFor(t, tc.reason, func() bool { return metric(set, name) == "1" })
			stopWithin(p, 5*time.Second)
			if n := len(logs.Lines("EVENT LOST")); n != 1 || len(logs.LevelLines("error")) != 1 {
				t.Fatalf("%d loss lines, want 1 at error level:\n%s", n, logs.String())
			}
			if v := metric(set, `dtrelay_output_dead_letter_total{output="out",reason="oversize"}`); v != "" && v != "0" {
				t.Fatalf("dead_letter_total{oversize} = %s for an event not kept", v)
			}
		})
	}
}
