package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestBuildInfoAndPrometheusExposition (issue 15): the binary, built with
// a version as `make build` does, exposes dtrelay_build_info with that
// version and its Go version, # HELP texts and # TYPE lines, and the
// output histograms as Prometheus `le` buckets once an alert is delivered.
func TestBuildInfoAndPrometheusExposition(t *testing.T) {
	const ver = "v1.2.3-e2e"
	bin := filepath.Join(t.TempDir(), "dtrelay")
	if out, err := exec.Command("go", "build", "-ldflags", "-X main.version="+ver, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("cannot build dtrelay: %v\n%s", err, out)
	}
	dir := t.TempDir()
	port, mport := freePort(t), freePort(t)
	outFile := filepath.Join(dir, "out.ndjson")
	cfg := writeFile(t, dir, "c.yaml", fmt.Sprintf(`
inputs: [{name: in, protocol: tcp, address: "127.0.0.1:%d"}]
outputs: [{name: out, type: file, path: %s}]
metrics: {address: "127.0.0.1:%d"}
`, port, outFile, mport))
	startCmd(t, exec.Command(bin, "run", "-c", cfg))
	c := dialWhenUp(t, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
	for _, a := range alerts(4) {
		fmt.Fprintf(c, "<165>Aug  5 03:34:46 dt-master darktrace %s\n", a)
	}
	c.Close()
	waitMetric(t, mport, `dtrelay_output_events_total{output="out"}`, 4)
	expo := scrape(t, mport)
	for _, want := range []string{
		fmt.Sprintf(`dtrelay_build_info{version=%q,goversion=%q} 1`, ver, runtime.Version()),
		"# HELP dtrelay_build_info Always 1; ",
		"# TYPE dtrelay_build_info gauge",
		"# TYPE dtrelay_output_delivery_latency_seconds histogram",
		`dtrelay_output_delivery_latency_seconds_bucket{output="out",le="+Inf"} 4`,
		`dtrelay_output_delivery_latency_seconds_count{output="out"} 4`,
		"# TYPE dtrelay_output_send_duration_seconds histogram",
		`dtrelay_output_send_duration_seconds_bucket{output="out",le="0.001"} `,
		`dtrelay_output_queue_capacity_bytes{output="out"} `,
		`dtrelay_output_oldest_pending_seconds{output="out"} 0`,
		`dtrelay_output_last_success_timestamp_seconds{output="out"} `,
	} {
		if !strings.Contains(expo, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(expo, "vmrange") {
		t.Error("/metrics still has vmrange buckets")
	}
}
