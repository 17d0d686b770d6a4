package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/internal/intaketest"
)

const intakeKey = "e2e-intake-key-0123456789abcdef"

// sendLines writes each payload in an RFC 3164 Darktrace line on a new TCP
// connection, and closes it.
func sendLines(t *testing.T, addr string, payloads []string) {
	t.Helper()
	c := dialWhenUp(t, "tcp", addr)
	defer c.Close()
	writeLines(t, c, payloads)
}

// writeLines writes each payload in an RFC 3164 Darktrace line on c.
func writeLines(t *testing.T, c net.Conn, payloads []string) {
	t.Helper()
	var b strings.Builder
	for _, p := range payloads {
		fmt.Fprintf(&b, "<165>Aug  5 03:34:46 dt-master darktrace %s\n", p)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
}

func asStrings(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
}

// TestForwardsToSekoiaHTTPSyslogTLSAndFileFromContractConfig runs the binary
// with a configuration in the contract's form and checks every intake got
// every alert byte for byte, routes applied.
func TestForwardsToSekoiaHTTPSyslogTLSAndFileFromContractConfig(t *testing.T) {
	dir := t.TempDir()
	httpIntake := intaketest.NewSekoiaHTTP(t, intakeKey)
	sysIntake := intaketest.NewSyslog(t, intakeKey, true)
	port := freePort(t)
	archive := filepath.Join(dir, "archive.ndjson")
	cfg := writeFile(t, dir, "dtrelay.yaml", fmt.Sprintf(`
inputs:
  - name: darktrace
    protocol: tcp
    address: 127.0.0.1:%d
    max_message_size: 256KiB
outputs:
  - name: sekoia
    type: sekoia-http
    url: %s
    intake_key: ${E2E_INTAKE_KEY}
    ca_file: %s
    batch: {max_events: 50, max_bytes: 4MiB, max_wait: 100ms}
  - name: sekoia-syslog
    type: syslog
    address: %s
    tls: true
    ca_file: %s
    format: sekoia
    framing: octet-counting
    intake_key: ${E2E_INTAKE_KEY}
  - name: archive
    type: file
    path: %s
routes:
  - match: {kinds: [model_breach, ai_analyst, system_status], inputs: [darktrace]}
    outputs: [sekoia, sekoia-syslog]
  - match: {kinds: [test]}
    outputs: [archive]
shutdown_timeout: 5s
`, port, httpIntake.URL(), httpIntake.CAFile(), sysIntake.Addr(), sysIntake.CAFile(), archive))
	os.Setenv("E2E_INTAKE_KEY", intakeKey)
	defer os.Unsetenv("E2E_INTAKE_KEY")
	p := startRelay(t, "run", "-c", cfg)
	payloads := alerts(400)
	sendLines(t, fmt.Sprintf("127.0.0.1:%d", port), payloads)
	var toSekoia, tests []string
	for i, a := range payloads {
		if i%4 == 3 {
			tests = append(tests, a)
		} else {
			toSekoia = append(toSekoia, a)
		}
	}
	if !httpIntake.WaitEvents(len(toSekoia), 10*time.Second) || !sysIntake.WaitEvents(len(toSekoia), 10*time.Second) {
		t.Fatalf("intakes got %d (https) and %d (syslog) of %d", httpIntake.Count(), sysIntake.Count(), len(toSekoia))
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	want := strings.Join(toSekoia, "\n")
	if got := strings.Join(asStrings(httpIntake.Events()), "\n"); got != want {
		t.Error("sekoia-http intake: events differ from the payloads sent (or their order)")
	}
	if got := strings.Join(asStrings(sysIntake.Events()), "\n"); got != want {
		t.Error("syslog intake: events differ from the payloads sent (or their order)")
	}
	b, _ := os.ReadFile(archive)
	if string(b) != strings.Join(tests, "\n")+"\n" {
		t.Errorf("archive holds %d bytes, want the %d test alerts", len(b), len(tests))
	}
	for _, probs := range [][]string{httpIntake.Problems(), sysIntake.Problems()} {
		if len(probs) > 0 {
			t.Errorf("intake problems: %q", probs)
		}
	}
	if strings.Contains(p.stderr.String(), intakeKey) {
		t.Fatal("the intake key appears in the logs")
	}
}

// TestSyslogIntakeDownWhileIdle takes the syslog intake down while the relay
// is idle, and again while it has alerts to send. All alerts go over one
// connection, the unit the relay keeps in order. The intake goes down only
// once the relay has counted every alert sent so far as delivered (the
// peer's TCP stack acknowledged it, and the mock had read it): an intake
// that dies while receiving can lose what its TCP stack acknowledged but it
// had not read, which plain syslog cannot know (DESIGN §4; the HTTPS test
// below covers an outage under load). Nothing is sent while idle (no
// probes); the next batch notices the closed connection before writing, so
// nothing is written twice; alerts sent while the intake is down wait for
// it; every alert arrives once, in order.
func TestSyslogIntakeDownWhileIdle(t *testing.T) {
	dir := t.TempDir()
	intake := intaketest.NewSyslog(t, intakeKey, false)
	port, mport := freePort(t), freePort(t)
	cfg := writeFile(t, dir, "dtrelay.yaml", fmt.Sprintf(`
inputs: [{name: dt, protocol: tcp, address: "127.0.0.1:%d"}]
outputs:
  - {name: intake, type: syslog, address: "%s", tls: false, format: sekoia, intake_key: %s, batch: {max_events: 100}}
metrics: {address: "127.0.0.1:%d"}
`, port, intake.Addr(), intakeKey, mport))
	p := startRelay(t, "run", "-c", cfg)
	c := dialWhenUp(t, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
	defer c.Close()
	const (
		delivered  = `dtrelay_output_events_total{output="intake"}`
		reconnects = `dtrelay_output_reconnects_total{output="intake"}`
		duplicates = `dtrelay_output_possible_duplicates_total{output="intake"}`
		connFailed = `dtrelay_output_failures_total{output="intake",reason="connect"}`
		frames     = `dtrelay_input_frames_total{input="dt"}`
	)
	payloads := alerts(300)
	writeLines(t, c, payloads[:100])
	if !intake.WaitEvents(100, 10*time.Second) {
		t.Fatalf("intake got %d of the first 100", intake.Count())
	}
	waitMetric(t, mport, delivered, 100)

	// Down and up again while idle.
	conns := intake.Conns()
	intake.Stop()
	intake.Restart()
	if intake.Conns() != conns || metricValue(t, mport, reconnects) != 0 {
		t.Fatal("the relay reconnected while idle: it should cost nothing")
	}
	writeLines(t, c, payloads[100:200])
	if !intake.WaitEvents(200, 10*time.Second) {
		t.Fatalf("intake got %d of the first 200", intake.Count())
	}
	waitMetric(t, mport, delivered, 200)
	if n := intake.Conns(); n != conns+1 {
		t.Errorf("the intake saw %d new connections for the next batch, want 1", n-conns)
	}
	if n := metricValue(t, mport, reconnects); n != 1 {
		t.Errorf("reconnects_total = %d, want 1", n)
	}
	if n := metricValue(t, mport, duplicates); n != 0 {
		t.Errorf("possible_duplicates_total = %d, want 0: the closed connection was written to", n)
	}

	// Down with alerts to send: the relay reads them and they wait.
	intake.Stop()
	writeLines(t, c, payloads[200:])
	waitMetric(t, mport, frames, len(payloads))
	waitMetric(t, mport, connFailed, 1)
	intake.Restart()
	c.Close()
	expectInOrderOnce(t, p, intake, payloads, 15*time.Second)
}

// TestSekoiaHTTPIntakeDownWhileSending: the HTTPS intake goes down (503 to
// everything) while alerts stream in, until the relay has retried a few
// times, and comes back: every alert arrives once, in order.
func TestSekoiaHTTPIntakeDownWhileSending(t *testing.T) {
	dir := t.TempDir()
	in := intaketest.NewSekoiaHTTP(t, intakeKey)
	port, mport := freePort(t), freePort(t)
	cfg := writeFile(t, dir, "dtrelay.yaml", fmt.Sprintf(`
inputs: [{name: dt, protocol: tcp, address: "127.0.0.1:%d"}]
outputs:
  - {name: sekoia, type: sekoia-http, url: "%s", ca_file: %s, intake_key: %s, batch: {max_events: 100, max_wait: 20ms}}
metrics: {address: "127.0.0.1:%d"}
`, port, in.URL(), in.CAFile(), intakeKey, mport))
	p := startRelay(t, "run", "-c", cfg)
	payloads := alerts(3000)
	c := dialWhenUp(t, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i, a := range payloads {
			fmt.Fprintf(c, "<165>Aug  5 03:34:46 dt-master darktrace %s\n", a)
			if i%100 == 0 {
				time.Sleep(2 * time.Millisecond)
			}
		}
	}()
	waitFor(t, "sending under way", func() bool { return in.Count() > 300 })
	in.SetDown(true)
	waitMetric(t, mport, `dtrelay_output_retries_total{output="sekoia"}`, 3)
	in.SetDown(false)
	<-done
	c.Close()
	expectInOrderOnce(t, p, in, payloads, 20*time.Second)
}

// TestSekoiaHTTPIntakeFailuresThenRecovery: the HTTPS intake answers 503
// (with Retry-After), 500, then closes connections, then recovers: every
// alert arrives once, in order.
func TestSekoiaHTTPIntakeFailuresThenRecovery(t *testing.T) {
	dir := t.TempDir()
	in := intaketest.NewSekoiaHTTP(t, intakeKey)
	in.FailNext(2, intaketest.Fault{Status: 503, RetryAfter: "1"})
	in.FailNext(2, intaketest.Fault{Status: 500})
	in.FailNext(1, intaketest.Fault{Close: true})
	port := freePort(t)
	cfg := writeFile(t, dir, "dtrelay.yaml", fmt.Sprintf(`
inputs: [{name: dt, protocol: tcp, address: "127.0.0.1:%d"}]
outputs:
  - {name: sekoia, type: sekoia-http, url: "%s", ca_file: %s, intake_key: %s, batch: {max_events: 100, max_wait: 50ms}}
`, port, in.URL(), in.CAFile(), intakeKey))
	p := startRelay(t, "run", "-c", cfg)
	payloads := alerts(1000)
	sendLines(t, fmt.Sprintf("127.0.0.1:%d", port), payloads)
	expectInOrderOnce(t, p, in, payloads, 20*time.Second)
}

// recordingIntake is what the intake mocks share.
type recordingIntake interface {
	WaitEvents(n int, timeout time.Duration) bool
	Count() int
	Events() [][]byte
}

// expectInOrderOnce waits for the intake to have every payload, stops the
// relay (exit 0), and checks the intake got each payload once, in order.
func expectInOrderOnce(t *testing.T, p *relayProc, in recordingIntake, payloads []string, timeout time.Duration) {
	t.Helper()
	if !in.WaitEvents(len(payloads), timeout) {
		t.Fatalf("intake got %d of %d", in.Count(), len(payloads))
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if got := strings.Join(asStrings(in.Events()), "\n"); got != strings.Join(payloads, "\n") {
		t.Fatal("events differ from the payloads sent, or their order, or arrived twice")
	}
}
