package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestStandardize checks that scenarios in any order become issue 16's
// cells: by size, then syslog TCP, http TCP, syslog TLS, http TLS, each with
// its count and dtrelay against its job's peer.
func TestStandardize(t *testing.T) {
	var scs []Scenario
	for _, o := range []string{OutputHTTPS, OutputTLSSyslog, OutputHTTP, OutputSyslog} {
		for _, size := range []int{4000, 1500} {
			scs = append(scs, Scenario{Input: "tcp", Output: o, Size: size, Conns: 4, Framing: FramingOctet, Header: Header5424, Count: 7})
		}
	}
	got := Standardize(scs, true, true)
	var names []string
	for _, sc := range got {
		names = append(names, fmt.Sprintf("%s %d %v", sc.Name(), sc.Count, sc.Relays))
	}
	want := []string{
		"tcp->syslog 1.5KB c4 1000000 [dtrelay rsyslog]",
		"tcp->http 1.5KB c4 1000000 [dtrelay syslog-ng]",
		"tcp->tls-syslog 1.5KB c4 1000000 [dtrelay rsyslog]",
		"tcp->https 1.5KB c4 1000000 [dtrelay syslog-ng]",
		"tcp->syslog 4KB c4 400000 [dtrelay rsyslog]",
		"tcp->http 4KB c4 400000 [dtrelay syslog-ng]",
		"tcp->tls-syslog 4KB c4 400000 [dtrelay rsyslog]",
		"tcp->https 4KB c4 400000 [dtrelay syslog-ng]",
	}
	if !slices.Equal(names, want) {
		t.Errorf("cells\n%s\nwant\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
	if scs[0].Relays != nil || scs[0].Count != 7 {
		t.Error("Standardize changed its input")
	}
	// --count and --relays given: kept as they are.
	for _, sc := range Standardize(scs, false, false) {
		if sc.Count != 7 || sc.Relays != nil {
			t.Errorf("%s: count %d relays %v, want the given count and every relay", sc.Name(), sc.Count, sc.Relays)
		}
	}
	if n := StandardCount(2000); n != 750_000 {
		t.Errorf("StandardCount(2000) = %d, want 750000 (1.5 GB of alerts)", n)
	}
}

func TestVerdict(t *testing.T) {
	for _, tc := range []struct {
		rate, cpu float64
		want      string
	}{
		{1.47, 3.2 / 5.0, "meets, at the edge"}, // issue 16's first row: 0.64× is within 2 % of 0.65×
		{1.67, 0.53, "meets"},
		{2.00, 0.46, "meets"},
		{0.96, 0.80, "short"},
		{1.15, 0.83, "short"},
		{1.20, 0.65, "meets, at the edge"},
		{1.19, 0.50, "short, at the edge"},
		{1.30, 0.66, "short, at the edge"},
		{1.30, 0.67, "short"},
		{1.18, 0.50, "short, at the edge"},
		{1.17, 0.50, "short"},
	} {
		if got := Verdict(tc.rate, tc.cpu); got != tc.want {
			t.Errorf("Verdict(%.2f, %.3f) = %q, want %q", tc.rate, tc.cpu, got, tc.want)
		}
	}
}

func TestCellLabel(t *testing.T) {
	for _, tc := range []struct {
		output              string
		size, maxSize, conn int
		want                string
	}{
		{OutputSyslog, 1500, 0, 4, "syslog, TCP, 1.5 KB"},
		{OutputTLSSyslog, 4000, 0, 4, "syslog, TLS, 4 KB"},
		{OutputHTTP, 1500, 0, 4, "http, TCP, 1.5 KB"},
		{OutputHTTPS, 4000, 0, 64, "http, TLS, 4 KB, 64 conns"},
		{OutputRELP, 500, 14000, 4, "relp, TCP, 500B–14 KB"},
	} {
		if got := CellLabel(tc.output, tc.size, tc.maxSize, tc.conn); got != tc.want {
			t.Errorf("CellLabel(%s, %d) = %q, want %q", tc.output, tc.size, got, tc.want)
		}
	}
}

func TestHalfPeakScenarios(t *testing.T) {
	scs := Standardize([]Scenario{{Input: "tcp", Output: OutputSyslog, Size: 1500, Conns: 4},
		{Input: "tcp", Output: OutputHTTP, Size: 1500, Conns: 4}}, true, true)
	res := &Results{Scenarios: []ScenarioResult{
		{Scenario: scs[0].Name(), Relay: "dtrelay", AlertsPerSec: 300000},
		{Scenario: scs[0].Name(), Relay: "rsyslog", AlertsPerSec: 200000},
		{Scenario: scs[1].Name(), Relay: "syslog-ng", AlertsPerSec: 200000}, // dtrelay did not run here
	}}
	hs := HalfPeakScenarios(scs, res)
	if len(hs) != 1 || hs[0].Rate != 150000 || !slices.Equal(hs[0].Relays, []string{"dtrelay"}) || hs[0].Count != 1_000_000 ||
		hs[0].Name() != scs[0].Name() {
		t.Errorf("half-peak scenarios %+v, want the syslog cell through dtrelay at 150000/s", hs)
	}
}

// cellResult is a result with the fields the cells table reads.
func cellResult(sc Scenario, relay string, rate, cpu, rss, p99 float64, lost uint64) ScenarioResult {
	return ScenarioResult{Scenario: sc.Name(), Relay: relay, Output: sc.Output, Size: sc.Size, Conns: sc.Conns,
		AlertsPerSec: rate, CPUPerAlert: cpu, RSSMB: rss, P99: p99, Lost: lost, Rate: sc.Rate}
}

func TestWriteCells(t *testing.T) {
	syslog := Scenario{Input: "tcp", Output: OutputSyslog, Size: 1500, Conns: 4}
	https := Scenario{Input: "tcp", Output: OutputHTTPS, Size: 4000, Conns: 4}
	lonely := Scenario{Input: "tcp", Output: OutputHTTP, Size: 4000, Conns: 4}
	half := syslog
	half.Rate = 150000
	res := &Results{Standard: true, Scenarios: []ScenarioResult{
		cellResult(syslog, "dtrelay", 300000, 3.2, 40.5, 120, 0),
		cellResult(syslog, "rsyslog", 200000, 5.0, 30.25, 150, 0),
		cellResult(syslog, "syslog-ng", 100000, 8.0, 90, 400, 3), // not the best peer
		cellResult(https, "dtrelay", 100000, 9.0, 60, 90, 2),
		cellResult(https, "syslog-ng", 90000, 10.0, 80, 100, 0),
		cellResult(lonely, "dtrelay", 80000, 9.0, 60, 90, 0),
	}, HalfPeak: []ScenarioResult{cellResult(half, "dtrelay", 149000, 3.0, 35, 12.34, 0)}}
	var b bytes.Buffer
	WriteCells(&b, res)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines, want header, rule and 3 cells:\n%s", len(lines), b.String())
	}
	for _, want := range []string{"| cell | peer | alerts/s: dtrelay vs peer | ratio | CPU µs/alert: dtrelay vs peer | CPU ratio |",
		"| RSS MB: dtrelay vs peer | p99 ms: dtrelay vs peer | p99 ms at half peak (rate) | lost: dtrelay / peer | verdict |"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("header %q lacks %q", lines[0], want)
		}
	}
	if n := strings.Count(lines[1], "---"); n != 11 {
		t.Errorf("rule has %d columns, want 11: %s", n, lines[1])
	}
	for i, want := range []string{
		"| syslog, TCP, 1.5 KB | rsyslog | 300000 vs 200000 | 1.50× | 3.20 vs 5.00 | 0.64× | 40.5 vs 30.2 | 120.0 vs 150.0 | 12.3 at 150000/s | 0 / 0 | meets, at the edge |",
		"| http, TLS, 4 KB | syslog-ng | 100000 vs 90000 | 1.11× | 9.00 vs 10.00 | 0.90× | 60.0 vs 80.0 | 90.0 vs 100.0 | — | 2 / 0 | short (lost alerts) |",
		"| http, TCP, 4 KB | — | 80000 vs 0 | — | 9.00 vs 0.00 | — | 60.0 vs 0.0 | 90.0 vs 0.0 | — | 0 / 0 | no peer |",
	} {
		if lines[2+i] != want {
			t.Errorf("cell %d\n got %s\nwant %s", i, lines[2+i], want)
		}
	}
	// Without half-peak runs there is no such column.
	res.HalfPeak = nil
	b.Reset()
	WriteCells(&b, res)
	if strings.Contains(b.String(), "half peak") || strings.Count(strings.Split(b.String(), "\n")[1], "---") != 10 {
		t.Errorf("half-peak column without half-peak runs:\n%s", b.String())
	}
	// The record leads with the cells and keeps the header.
	res.Meta = Meta{Machine: "m", Cores: 2, Kernel: "k", GoVersion: "go1.x", Commit: "c0ffee", Command: "dtbench standard"}
	res.Scenarios[0].Runs = []RunResult{{OtherCPU: 0.01}, {OtherCPU: 0.5}, {OtherCPU: 0.02}}
	p, err := WriteRecord(t.TempDir(), res)
	if err != nil {
		t.Fatal(err)
	}
	mdb, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	md := string(mdb)
	for _, want := range []string{"- machine: m\n- cores: 2\n- kernel: k\n- go: go1.x\n- commit: c0ffee\n- command: `dtbench standard`\n" +
		"- other processes' CPU during the runs: median 0.02 cores, at most 0.50 (something else was using the machine",
		"≥ 1.2× the peer's alerts/s at ≤ 0.65× its CPU", "| syslog, TCP, 1.5 KB | rsyslog | 300000 vs 200000 | 1.50× |", "```\nscenario "} {
		if !strings.Contains(md, want) {
			t.Errorf("record lacks %q:\n%s", want, md)
		}
	}
}

// TestCompareRunsOnlyTheCellsRelays checks Scenario.Relays: the other
// relays are not run in that scenario, nor listed as skipped.
func TestCompareRunsOnlyTheCellsRelays(t *testing.T) {
	a, b := testScenario(OutputSyslog, 500), testScenario(OutputTLSSyslog, 500)
	a.Relays = []string{"one"}
	res, err := Compare(context.Background(), CompareConfig{
		Relays: []Relay{&standIn{name: "one"}, &standIn{name: "two"}}, Scenarios: []Scenario{a, b}, Dir: t.TempDir(),
		Run: RunOptions{DrainIdle: 300 * time.Millisecond, SampleEvery: 20 * time.Millisecond}, Log: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range res.Scenarios {
		got = append(got, s.Relay+" "+s.Scenario)
		if s.Received != 500 {
			t.Errorf("%s %s received %d", s.Relay, s.Scenario, s.Received)
		}
	}
	want := []string{"one tcp->syslog 2KB c4", "one tcp->tls-syslog 2KB c4", "two tcp->tls-syslog 2KB c4"}
	if !slices.Equal(got, want) || len(res.Skipped) != 0 {
		t.Errorf("ran %q skipped %v, want %q and no skip", got, res.Skipped, want)
	}
}

// TestDTRelayHTTPShortRun sends 2000 alerts through the real dtrelay's
// plain-HTTP output to the sink (the standard's "http, TCP" cell, shrunk).
func TestDTRelayHTTPShortRun(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	bin := filepath.Join(t.TempDir(), "dtrelay")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/dtrelay/dtrelay/cmd/dtrelay").CombinedOutput(); err != nil {
		t.Fatalf("cannot build dtrelay: %v\n%s", err, out)
	}
	sc := Scenario{Input: "tcp", Output: OutputHTTP, Size: 1500, Conns: 4, Framing: FramingOctet, Header: Header5424, Count: 2000,
		Duration: time.Minute}
	res, err := RunOnce(context.Background(), &DTRelay{Bin: bin}, sc, t.TempDir(), testCert(t), RunOptions{DrainIdle: 2 * time.Second, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Error != "" || res.Lost != 0 || res.Received != 2000 || res.Duplicates != 0 || res.Malformed != 0 {
		t.Errorf("error %q lost %d received %d dups %d malformed %d; first event %q",
			res.Error, res.Lost, res.Received, res.Duplicates, res.Malformed, res.FirstEvent)
	}
	if !strings.HasPrefix(res.FirstEvent, `{"dtbench_seq":`) {
		t.Errorf("first event %q: want the alert's JSON as sent", res.FirstEvent)
	}
	if res.CPUPerAlert <= 0 || res.RSSMB <= 0 {
		t.Errorf("resources not measured: cpu %v rss %v", res.CPUPerAlert, res.RSSMB)
	}
}
