package main

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/internal/intaketest"
)

// TestRELPOutputResendsWhatABrokenSessionLeftUnanswered runs the binary
// with a relp output to a RELP intake over TLS that breaks the session
// mid-stream, having taken a message it never answered: every alert
// arrives, the one taken twice is the only duplicate, and it is within
// what dtrelay counts as possible duplicates (issue 12).
func TestRELPOutputResendsWhatABrokenSessionLeftUnanswered(t *testing.T) {
	dir := t.TempDir()
	in := intaketest.NewRELP(t, intaketest.SyslogOptions{Key: intakeKey, TLS: true})
	port, mport := freePort(t), freePort(t)
	cfg := writeFile(t, dir, "dtrelay.yaml", fmt.Sprintf(`
inputs:
  - {name: darktrace, protocol: tcp, address: "127.0.0.1:%d"}
outputs:
  - name: sekoia-relp
    type: relp
    address: %s
    ca_file: %s
    format: sekoia
    intake_key: %s
    window: 32
    batch: {max_events: 200}
metrics: {address: "127.0.0.1:%d"}
shutdown_timeout: 5s
`, port, in.Addr(), in.CAFile(), intakeKey, mport))
	p := startRelay(t, "run", "-c", cfg)
	in.BreakAfter(700, true)
	payloads := alerts(2000)
	sendLines(t, fmt.Sprintf("127.0.0.1:%d", port), payloads)
	if !in.WaitEvents(len(payloads)+1, 20*time.Second) {
		t.Fatalf("intake got %d events, want %d and one duplicate", in.Count(), len(payloads))
	}
	dups := metricValue(t, mport, `dtrelay_output_possible_duplicates_total{output="sekoia-relp"}`)
	reconnects := metricValue(t, mport, `dtrelay_output_reconnects_total{output="sekoia-relp"}`)
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	got := asStrings(in.Events())
	slices.Sort(got)
	want := append(slices.Clone(payloads), asStrings(in.Events())[700])
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("the intake's %d events are not the %d alerts plus the one it took unanswered", len(got), len(payloads))
	}
	if dups < 1 || dups > 32 || reconnects != 1 {
		t.Fatalf("possible duplicates %d (want 1 to the window, 32), reconnects %d", dups, reconnects)
	}
	if probs := in.Problems(); len(probs) > 0 {
		t.Fatalf("intake problems: %q", probs)
	}
}
