package poller

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/internal/intaketest"
	"github.com/dtrelay/dtrelay/output"
)

// TestThroughThePipeline runs the poller into a real forward pipeline whose
// Sekoia HTTPS intake (mock) refuses the first two batches: FlushWait waits
// through the retries, and the intake gets every polled event once, byte
// for byte as expected.
func TestThroughThePipeline(t *testing.T) {
	const key = "intake-key-for-the-poller-test"
	m := newMockAPI(t, testPublic, testPrivate)
	var want [][]byte
	for path, file := range map[string]string{breachesEP: "testdata/modelbreaches_pretty.json", incidentsEP: "testdata/aianalyst_incidentevents.json"} {
		body, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		m.setStatic(path, body)
		want = append(want, expectedEvents(t, body)...)
	}
	intake := intaketest.NewSekoiaHTTP(t, key)
	intake.FailNext(2, intaketest.Fault{Status: 503})
	set := metrics.NewSet()
	log := zerolog.Nop()
	sender, err := output.NewSekoiaHTTPSender(output.SekoiaHTTPConfig{URL: intake.URL(), IntakeKey: key,
		TLSClientConfig: output.TLSClientConfig{CAFile: intake.CAFile()}, Timeout: 5 * time.Second}, set, "sekoia", log)
	if err != nil {
		t.Fatal(err)
	}
	pipe, err := forward.New(forward.Options{
		Inputs: []forward.InputSpec{{Name: "cloud"}},
		Outputs: []forward.OutputSpec{{Name: "sekoia", Encoder: sender.Encoder(), Sender: sender,
			QueueSize: 8 << 20, MaxEvents: 1000, MaxBytes: 4 << 20, MaxWait: 10 * time.Millisecond}},
		MaxPayload: DefaultMaxEventSize, Metrics: set, Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, testConfig(m), PoolSink(pipe.Pool(0)))
	if !intake.WaitEvents(len(want), 10*time.Second) {
		t.Fatalf("intake got %d events, want %d", intake.Count(), len(want))
	}
	n := len(m.requests())
	waitFor(t, 5*time.Second, "more polls", func() bool { return len(m.requests()) >= n+6 })
	r.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if lost := pipe.Stop(ctx); lost != 0 {
		t.Errorf("pipeline lost %d events", lost)
	}
	got := countOf(intake.Events())
	for _, w := range want {
		if got[string(w)] != 1 {
			t.Errorf("intake got %d copies of %.80s...", got[string(w)], w)
		}
	}
	if intake.Count() != len(want) {
		t.Errorf("intake got %d events, want %d", intake.Count(), len(want))
	}
	refused := 0
	for _, q := range intake.Requests() {
		if q.Status == 503 {
			refused++
		}
	}
	if refused != 2 {
		t.Errorf("intake refused %d requests, want 2: the retries were not exercised", refused)
	}
	if v := metricValue(r.set, `dtrelay_poller_errors_total{input="cloud",reason="delivery"}`); v != 0 {
		t.Errorf("errors_total{delivery} = %v", v)
	}
	if v := metricValue(set, `dtrelay_input_alerts_total{input="cloud",kind="model_breach"}`); v != 2 {
		t.Errorf("pipeline classified %v model breaches, want 2 (and 1 test alert)", v)
	}
}
