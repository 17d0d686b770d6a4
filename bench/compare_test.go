package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/internal/rsyslogpeer"
)

// standIn is an in-test relay: CopyRelay served in this process, optionally
// dropping every dropEvery-th alert.
type standIn struct {
	name      string
	dropEvery int
	missing   bool
}

func (r *standIn) Name() string { return r.name }

func (r *standIn) Available() error {
	if r.missing {
		return fmt.Errorf("%w: %s is a test ghost", ErrRelayMissing, r.name)
	}
	return nil
}

func (r *standIn) Supports(spec *RelaySpec) error {
	if spec.Input != "tcp" || spec.Output == OutputHTTPS {
		return fmt.Errorf("%w: stand-in does tcp to syslog only", ErrUnsupported)
	}
	return nil
}

func (r *standIn) Start(ctx context.Context, spec *RelaySpec) (RelayProcess, error) {
	ln, err := net.Listen("tcp", spec.InputAddr)
	if err != nil {
		return nil, err
	}
	cr := &CopyRelay{Out: spec.SinkAddr, IntakeKey: spec.IntakeKey, DropEvery: r.dropEvery, Log: zerolog.Nop()}
	if spec.Output == OutputTLSSyslog {
		cr.TLS = spec.Cert.ClientConfig()
	}
	done := make(chan struct{})
	go func() { defer close(done); cr.Serve(ln) }()
	return &standInProc{ln: ln, done: done}, nil
}

type standInProc struct {
	ln   net.Listener
	done chan struct{}
}

func (p *standInProc) Pid() int { return 0 }

func (p *standInProc) Stop(ctx context.Context) error {
	p.ln.Close()
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func testScenario(output string, count uint64) Scenario {
	return Scenario{Input: "tcp", Output: output, Size: 2000, Conns: 4, Framing: FramingLF, Header: Header3164, Count: count}
}

// TestCompareEndToEnd runs a short comparison through a faithful and a lossy
// stand-in relay, over plain and TLS syslog, and checks the accounting, the
// loss verdict and the written results.
func TestCompareEndToEnd(t *testing.T) {
	var starts, ends int
	cfg := CompareConfig{
		Relays: []Relay{&standIn{name: "good"}, &standIn{name: "lossy", dropEvery: 100}, &standIn{name: "ghost", missing: true}},
		Scenarios: []Scenario{testScenario(OutputSyslog, 2000), testScenario(OutputTLSSyslog, 2000),
			testScenario(OutputHTTPS, 2000)},
		Rounds:     2,
		UnderTest:  []string{"good", "lossy"},
		Dir:        t.TempDir(),
		Run:        RunOptions{DrainIdle: 300 * time.Millisecond, SampleEvery: 20 * time.Millisecond},
		OnRunStart: func(string, Scenario, int, int) { starts++ },
		OnRunEnd:   func(*RunResult, Scenario) { ends++ },
		Log:        zerolog.Nop(),
	}
	res, err := Compare(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if starts != 8 || ends != 8 {
		t.Errorf("%d runs started, %d ended; want 8 (2 scenarios × 2 relays × 2 rounds)", starts, ends)
	}
	if len(res.Scenarios) != 4 {
		t.Fatalf("%d scenario results, want 4", len(res.Scenarios))
	}
	skips := fmt.Sprint(res.Skipped)
	if !strings.Contains(skips, "ghost") || !strings.Contains(skips, "tcp->https") {
		t.Errorf("skipped %s: want the missing relay and the unsupported scenario", skips)
	}
	for _, s := range res.Scenarios {
		if s.Rounds != 2 || s.Sent != 4000 || len(s.Errors) != 0 {
			t.Errorf("%s %s: rounds %d sent %d errors %v", s.Relay, s.Scenario, s.Rounds, s.Sent, s.Errors)
		}
		if s.AlertsPerSec <= 0 || s.MBPerSec <= 0 || s.P50 <= 0 || s.P99 < s.P50 || s.P999 < s.P99 {
			t.Errorf("%s %s: rate %v MB/s %v p50 %v p99 %v p99.9 %v", s.Relay, s.Scenario, s.AlertsPerSec, s.MBPerSec, s.P50, s.P99, s.P999)
		}
		switch s.Relay {
		case "good":
			if s.Lost != 0 || s.Received != 4000 || s.Duplicates != 0 {
				t.Errorf("good relay: lost %d received %d dups %d", s.Lost, s.Received, s.Duplicates)
			}
		case "lossy":
			// 1 in 100 per connection: 16..20 of 2000 per round.
			if s.Lost < 32 || s.Lost > 40 || s.Received+s.Lost != 4000 {
				t.Errorf("lossy relay: lost %d received %d, want 32..40 lost", s.Lost, s.Received)
			}
			if len(s.Runs[0].MissingIDs) == 0 {
				t.Error("lossy relay: no missing ids listed")
			}
		}
		if len(s.Runs[s.Median].Series) < 2 {
			t.Errorf("%s: time series has %d points", s.Relay, len(s.Runs[s.Median].Series))
		}
	}
	fails := res.Failures()
	if len(fails) != 2 || !strings.Contains(fails[0], "lossy lost") {
		t.Errorf("failures %q, want the lossy relay in both scenarios", fails)
	}
	// Loss by a relay not under test is reported but does not fail.
	for i := range res.Scenarios {
		res.Scenarios[i].UnderTest = res.Scenarios[i].Relay == "good"
	}
	if f := res.Failures(); len(f) != 0 {
		t.Errorf("failures %q with only the good relay under test", f)
	}

	dir := t.TempDir()
	if err := WriteResults(dir, res); err != nil {
		t.Fatal(err)
	}
	if err := WriteReport(dir, res); err != nil {
		t.Fatal(err)
	}
	checkResultsSchema(t, filepath.Join(dir, "results.json"), 4)
	html, _ := os.ReadFile(filepath.Join(dir, "report.html"))
	if n := strings.Count(string(html), "<svg"); n != 3+2+2 {
		t.Errorf("report has %d charts, want 7 (3 bar, 2 throughput, 2 latency)", n)
	}
	for _, want := range []string{"good", "lossy", "tcp-&gt;tls-syslog 2KB c4", "<polyline"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	rec, err := WriteRecord(filepath.Join(dir, "results"), res)
	if err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(rec)
	for _, want := range []string{"- cores: ", "- go: go1.", "- commit: ", "lossy"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("record lacks %q", want)
		}
	}
}

// checkResultsSchema checks the keys outside checks read from results.json.
func checkResultsSchema(t *testing.T, path string, scenarios int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Scenarios []map[string]any `json:"scenarios"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Scenarios) != scenarios {
		t.Fatalf("%d scenarios in results.json, want %d", len(doc.Scenarios), scenarios)
	}
	for _, s := range doc.Scenarios {
		for _, k := range []string{"relay", "alerts_per_sec", "mb_per_sec", "sent", "received", "lost", "p50_ms", "p99_ms", "cpu_us_per_alert", "rss_mb"} {
			if _, ok := s[k]; !ok {
				t.Errorf("results.json scenario lacks %q", k)
			}
		}
	}
	if _, err := ReadResults(path); err != nil {
		t.Error(err)
	}
}

func TestCompareOnlyRelayMissing(t *testing.T) {
	_, err := Compare(context.Background(), CompareConfig{Relays: []Relay{&standIn{name: "ghost", missing: true}},
		Scenarios: []Scenario{testScenario(OutputSyslog, 10)}, Log: zerolog.Nop()})
	if !errors.Is(err, ErrRelayMissing) {
		t.Errorf("error %v, want ErrRelayMissing", err)
	}
	_, err = Compare(context.Background(), CompareConfig{Relays: []Relay{&standIn{name: "good"}},
		Scenarios: []Scenario{testScenario(OutputHTTPS, 10)}, Log: zerolog.Nop()})
	if !errors.Is(err, ErrNoRelay) {
		t.Errorf("error %v, want ErrNoRelay for nothing runnable", err)
	}
}

// TestCompareRELPWithoutImrelp: the relp scenario needs a real imrelp as
// its intake; without one it is skipped for every relay, with the reason.
func TestCompareRELPWithoutImrelp(t *testing.T) {
	noRELP := filepath.Join(t.TempDir(), "usr/sbin/rsyslogd")
	sc := testScenario(OutputRELP, 10)
	_, err := Compare(context.Background(), CompareConfig{Relays: []Relay{&standIn{name: "good"}},
		Scenarios: []Scenario{sc}, Run: RunOptions{RELPPeer: rsyslogpeer.Install{Bin: noRELP}}, Log: zerolog.Nop()})
	if !errors.Is(err, ErrNoRelay) {
		t.Errorf("error %v, want ErrNoRelay for nothing runnable", err)
	}
	res, err := Compare(context.Background(), CompareConfig{Relays: []Relay{&standIn{name: "good"}},
		Scenarios: []Scenario{testScenario(OutputSyslog, 100), sc}, Dir: t.TempDir(),
		Run: RunOptions{RELPPeer: rsyslogpeer.Install{Bin: noRELP}, DrainIdle: 300 * time.Millisecond}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Scenarios) != 1 || len(res.Skipped) != 1 || !strings.Contains(res.Skipped[0].Reason, "imrelp") ||
		res.Skipped[0].Scenario != sc.Name() {
		t.Errorf("ran %d, skipped %+v: want the relp scenario skipped for want of imrelp", len(res.Scenarios), res.Skipped)
	}
}

// TestRunOnceRelayFailsToStart: a relay that exits at start is an error
// naming its exit, not a hang.
func TestRunOnceRelayFailsToStart(t *testing.T) {
	cert := testCert(t)
	r := &DTRelay{Bin: "/bin/false"}
	_, err := RunOnce(context.Background(), r, testScenario(OutputSyslog, 10), t.TempDir(), cert, RunOptions{Log: zerolog.Nop()})
	if err == nil || !strings.Contains(err.Error(), "exited") {
		t.Errorf("RunOnce with a relay that exits at once: %v", err)
	}
}

func TestMedian(t *testing.T) {
	f := func(in []float64, want float64) {
		t.Helper()
		if got := median(in); got != want {
			t.Errorf("median(%v) = %v, want %v", in, got, want)
		}
	}
	f(nil, 0)
	f([]float64{3}, 3)
	f([]float64{5, 1, 3}, 3)
	f([]float64{4, 1, 3, 2}, 2.5)
}
