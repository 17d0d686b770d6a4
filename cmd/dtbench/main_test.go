package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain lets the test binary stand in for dtbench when "compare --relays
// copy" starts it as the copy relay (os.Executable is the test binary).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "copy-relay" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestCompareContract runs the contract's command line (shortened) against
// the copy reference relay as a real process and checks results.json.
func TestCompareContract(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runCmd(t, "compare", "--relays", "copy", "--size", "2000", "--conns", "4", "--duration", "1s",
		"--out", dir, "--drain-idle", "500ms")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "tcp->syslog 2KB c4") || !strings.Contains(errOut, "[1/1] copy") {
		t.Errorf("no table or progress:\n%s\n%s", out, errOut)
	}
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Scenarios []map[string]any `json:"scenarios"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || len(doc.Scenarios) != 1 {
		t.Fatalf("results.json: %v, %d scenarios", err, len(doc.Scenarios))
	}
	s := doc.Scenarios[0]
	for _, k := range []string{"relay", "alerts_per_sec", "mb_per_sec", "sent", "received", "lost", "p50_ms", "p99_ms", "cpu_us_per_alert", "rss_mb"} {
		if _, ok := s[k]; !ok {
			t.Errorf("scenario lacks %q", k)
		}
	}
	if s["relay"] != "copy" || s["lost"].(float64) != 0 || s["sent"].(float64) == 0 || s["received"] != s["sent"] ||
		s["cpu_us_per_alert"].(float64) <= 0 || s["rss_mb"].(float64) <= 0 {
		t.Errorf("scenario %v", s)
	}
	if _, err := os.Stat(filepath.Join(dir, "report.html")); err != nil {
		t.Error(err)
	}
}

func TestCompareLossExitsNonZero(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runCmd(t, "compare", "--relays", "copy", "--copy-drop-every", "50", "--size", "1KB", "--conns", "2",
		"--count", "2000", "--duration", "0", "--out", dir, "--no-progress", "--drain-idle", "300ms")
	if code != 1 || !strings.Contains(errOut, "FAIL: copy lost") {
		t.Fatalf("exit %d, want 1 with FAIL\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "results.json")); err != nil {
		t.Errorf("results not written on failure: %v", err)
	}
}

func TestCompareMissingRelay(t *testing.T) {
	f := func(relays string, want int, wantText string) {
		t.Helper()
		code, out, errOut := runCmd(t, "compare", "--relays", relays, "--dtrelay", "/nonexistent/dtrelay", "--count", "500",
			"--duration", "0", "--out", t.TempDir(), "--no-progress", "--drain-idle", "300ms")
		if code != want || !strings.Contains(out+errOut, wantText) {
			t.Errorf("--relays %s: exit %d, want %d with %q\n%s\n%s", relays, code, want, wantText, out, errOut)
		}
	}
	f("dtrelay", 2, "relay not installed")
	f("dtrelay,copy", 0, "skipped dtrelay")
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"compare", "--help"}, 0, "--relays"},
		{[]string{"send", "--help"}, 0, "-to ADDR"},
		{[]string{"--help"}, 0, "dtbench compare"},
		{nil, 2, "Usage"},
		{[]string{"nope"}, 2, "unknown command"},
		{[]string{"compare", "--size", "10"}, 2, "bad --size"},
		{[]string{"compare", "--output", "kafka"}, 2, "unknown --output"},
		{[]string{"compare", "--conns", "0"}, 2, "bad --conns"},
	} {
		code, out, errOut := runCmd(t, tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("%v: exit %d, want %d with %q\n%s%s", tc.args, code, tc.code, tc.want, out, errOut)
		}
	}
}

func TestParseSizeRange(t *testing.T) {
	f := func(in string, lo, hi int, ok bool) {
		t.Helper()
		l, h, err := parseSizeRange(in)
		if (err == nil) != ok || l != lo || h != hi {
			t.Errorf("parseSizeRange(%q) = %d %d %v", in, l, h, err)
		}
	}
	f("2000", 2000, 0, true)
	f("1.5KB", 1500, 0, true)
	f("4k", 4000, 0, true)
	f("500-14KB", 500, 14000, true)
	f("14KB-500", 0, 0, false)
	f("100", 0, 0, false)
	f("x", 0, 0, false)
}

// TestStandardStoresRecord checks that "standard" stores a dated record and
// the run's results beside it.
func TestStandardStoresRecord(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runCmd(t, "standard", "--relays", "copy", "--output", "tls-syslog", "--size", "1500", "--conns", "2",
		"--rounds", "1", "--duration", "500ms", "--out", dir, "--no-progress", "--drain-idle", "300ms")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	md, _ := filepath.Glob(filepath.Join(dir, "*.md"))
	js, _ := filepath.Glob(filepath.Join(dir, "*", "results.json"))
	html, _ := filepath.Glob(filepath.Join(dir, "*", "report.html"))
	if len(md) != 1 || len(js) != 1 || len(html) != 1 || strings.TrimSuffix(md[0], ".md") != filepath.Dir(js[0]) {
		t.Fatalf("stored %v %v %v", md, js, html)
	}
	b, _ := os.ReadFile(md[0])
	if !strings.Contains(string(b), "tcp->tls-syslog 1.5KB c2") || !strings.Contains(string(b), "- cores: ") {
		t.Errorf("record:\n%s", b)
	}
}

// TestStandardCells checks that "standard" is issue 16's eight cells, each
// dtrelay against its job's best peer, unless --relays says otherwise.
func TestStandardCells(t *testing.T) {
	code, out, errOut := runCmd(t, "standard", "--list")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{
		"tcp->syslog 1.5KB c4           syslog, TCP, 1.5 KB    count 1000000, bound 2m0s, octet-counting rfc5424, relays dtrelay,rsyslog",
		"tcp->http 1.5KB c4             http, TCP, 1.5 KB      count 1000000, bound 2m0s, octet-counting rfc5424, relays dtrelay,syslog-ng",
		"tcp->tls-syslog 1.5KB c4       syslog, TLS, 1.5 KB    count 1000000, bound 2m0s, octet-counting rfc5424, relays dtrelay,rsyslog",
		"tcp->https 1.5KB c4            http, TLS, 1.5 KB      count 1000000, bound 2m0s, octet-counting rfc5424, relays dtrelay,syslog-ng",
		"tcp->syslog 4KB c4             syslog, TCP, 4 KB      count 400000, bound 2m0s, octet-counting rfc5424, relays dtrelay,rsyslog",
		"tcp->http 4KB c4               http, TCP, 4 KB        count 400000, bound 2m0s, octet-counting rfc5424, relays dtrelay,syslog-ng",
		"tcp->tls-syslog 4KB c4         syslog, TLS, 4 KB      count 400000, bound 2m0s, octet-counting rfc5424, relays dtrelay,rsyslog",
		"tcp->https 4KB c4              http, TLS, 4 KB        count 400000, bound 2m0s, octet-counting rfc5424, relays dtrelay,syslog-ng",
		"then dtrelay in each scenario again at half its measured peak (--half-peak)",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("standard cells:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}
	_, out, _ = runCmd(t, "standard", "--list", "--relays", "dtrelay,rsyslog,syslog-ng", "--count", "5000", "--half-peak=false")
	if n := strings.Count(out, "count 5000, bound 2m0s, octet-counting rfc5424, relays dtrelay,rsyslog,syslog-ng\n"); n != 8 || strings.Contains(out, "half") {
		t.Errorf("--relays and --count not applied to every cell (%d of 8):\n%s", n, out)
	}
}
