package main

import (
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var bigWindow = flag.Int("poller.burst", 0, "TestPollerBurstOnce: breaches in one window (0: 120000, past the old 100k memory cap; issue 13 asks 300000)")

// TestPollerBurstOnce (issue 13 item 5): N breaches created in one
// millisecond are returned by every window that overlaps it; each is
// forwarded once (the de-duplication memory no longer forgets keys by
// count), and dtrelay's peak RSS is logged. 120k by default (the old cap
// was 100k); -args -poller.burst=300000 for the figure.
func TestPollerBurstOnce(t *testing.T) {
	n := *bigWindow
	if n == 0 {
		n = 120_000
	}
	if testing.Short() {
		t.Skip("a large window")
	}
	dt := newDTDouble(t, false)
	dir := t.TempDir()
	ca := writeFile(t, dir, "api-ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: dt.srv.Certificate().Raw})))
	out := filepath.Join(dir, "out.ndjson")
	cfg := writeFile(t, dir, "dtrelay.yaml", fmt.Sprintf(`
inputs:
  - {name: cloud, protocol: darktrace-api, url: "%s", public_token: pub, private_token: priv, interval: 1s, overlap: 20s, ca_file: %s, state_dir: %s}
outputs: [{name: out, type: file, path: %s}]
metrics: {address: "127.0.0.1:0"}
`, dt.srv.URL, ca, filepath.Join(dir, "state"), out))
	dt.burst(1, n)
	p := startRelay(t, "run", "-c", cfg)
	count := func() int {
		b, _ := os.ReadFile(out)
		return strings.Count(string(b), "\n")
	}
	deadline := time.Now().Add(2 * time.Minute)
	for count() < n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	// Every poll of the next 5 s returns the burst again (overlap 20 s).
	time.Sleep(5 * time.Second)
	hwm := peakRSS(p.cmd.Process.Pid)
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	b, _ := os.ReadFile(out)
	seen := make([]uint8, n+1)
	lines, dup := 0, 0
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		lines++
		rest, ok := strings.CutPrefix(l, `{"pbid":`)
		id, err := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
		if !ok || err != nil || id < 1 || id > n {
			t.Fatalf("unexpected line %.80s", l)
		}
		if seen[id]++; seen[id] > 1 {
			dup++
		}
	}
	lost := 0
	for id := 1; id <= n; id++ {
		if seen[id] == 0 {
			lost++
		}
	}
	t.Logf("%d breaches in one window, returned %d times in all by %d polls: %d lines forwarded, %d lost, %d duplicated; dtrelay peak RSS %d MiB",
		n, dt.served.Load(), dt.polls.Load(), lines, lost, dup, hwm>>20)
	if dt.served.Load() < 3*int64(n) {
		t.Errorf("the burst was returned %d times in all: the test wants several polls covering it", dt.served.Load())
	}
	if lost > 0 || dup > 0 {
		t.Fatalf("%d lost, %d duplicated", lost, dup)
	}
}

// peakRSS returns the peak resident set size (VmHWM) of process pid, in
// bytes, or 0 when unknown.
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
