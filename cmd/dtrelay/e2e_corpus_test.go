package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// samplesDir holds the real public Darktrace payloads (not copied here).
const samplesDir = "../../../shared/testdata/darktrace-samples"

// TestRealSamplesEveryStyleAndFraming sends every real payload wrapped in
// each header style and each framing to the binary over TCP: each comes
// out on stdout byte for byte, and the metrics count them by the right kind.
func TestRealSamplesEveryStyleAndFraming(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(samplesDir, "test_*.json"))
	if len(files) == 0 {
		t.Skipf("no real samples in %s (the shared test data is not beside this checkout)", samplesDir)
	}
	kindOf := func(name string) string {
		switch {
		case strings.HasPrefix(name, "test_aianalyst"):
			return "ai_analyst"
		case name == "test_email.json":
			return "email"
		case name == "test_summurizer.json":
			return "antigena"
		}
		return "model_breach"
	}
	styles := []func(p []byte) []byte{
		func(p []byte) []byte {
			return append([]byte("<165>1 2022-03-10T10:11:10+00:00 dt-master darktrace - - - "), p...)
		},
		func(p []byte) []byte {
			return append([]byte("<165>Aug  5 03:34:46 dt-master.example.com darktrace "), p...)
		},
		func(p []byte) []byte { return append([]byte("<165>Apr 01 14:39:18 192.0.2.10 darktrace "), p...) },
		func(p []byte) []byte { return append([]byte("Apr 01 14:39:18 dt-master darktrace "), p...) },
		func(p []byte) []byte { return p },
	}
	var stream bytes.Buffer
	var want []string
	wantKinds := map[string]int{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		payload := bytes.TrimSpace(raw)
		for _, style := range styles {
			msg := style(payload)
			stream.Write(msg) // LF-framed
			stream.WriteByte('\n')
			fmt.Fprintf(&stream, "%d ", len(msg)) // octet-counted
			stream.Write(msg)
			want = append(want, string(payload), string(payload))
			wantKinds[kindOf(filepath.Base(f))] += 2
		}
	}
	dir := t.TempDir()
	port, mport := freePort(t), freePort(t)
	cfg := writeFile(t, dir, "c.yaml", fmt.Sprintf(`
inputs: [{name: dt, protocol: tcp, address: "127.0.0.1:%d"}]
outputs: [{name: out, type: file, path: "-"}]
metrics: {address: "127.0.0.1:%d"}
`, port, mport))
	p := startRelay(t, "run", "-c", cfg)
	c := dialWhenUp(t, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if _, err := c.Write(stream.Bytes()); err != nil {
		t.Fatal(err)
	}
	c.Close()
	waitFor(t, "every sample on stdout", func() bool { return strings.Count(p.stdout.String(), "\n") >= len(want) })
	for kind, n := range wantKinds {
		if got := metricValue(t, mport, fmt.Sprintf(`dtrelay_input_alerts_total{input="dt",kind=%q}`, kind)); got != n {
			t.Errorf("kind %s: counted %d, want %d", kind, got, n)
		}
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	got := strings.Split(strings.TrimSuffix(p.stdout.String(), "\n"), "\n")
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("stdout differs from the real payloads (%d lines, want %d)", len(got), len(want))
	}
}
