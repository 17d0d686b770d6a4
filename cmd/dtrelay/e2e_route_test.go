package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

var updateRoute = flag.Bool("update-route", false, "rewrite testdata/route/dryrun.golden from the binary's output")

// TestCheckRouteDryRun (issue 17): `dtrelay check -c FILE --route SAMPLES`
// shows, for each of the project's Darktrace-shaped samples (every
// family, JSON payloads and syslog lines, one breach sent twice through a
// Unified View), the routes it takes and the outputs it goes to: drop
// routes, not, models, categories, scores, sources, tags, de-duplication.
func TestCheckRouteDryRun(t *testing.T) {
	cmd := exec.Command(binPath, "check", "-c", "../../testdata/route/dtrelay.yaml", "--route", "../../testdata/route/samples.ndjson")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dtrelay check --route: %v\n%s", err, out)
	}
	_, dry, ok := strings.Cut(string(out), "dry run of ")
	if !ok {
		t.Fatalf("no dry run in the output:\n%s", out)
	}
	dry = "dry run of " + dry
	const golden = "../../testdata/route/dryrun.golden"
	if *updateRoute {
		if err := os.WriteFile(golden, []byte(dry), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if dry != string(want) {
		t.Fatalf("dry run differs from %s (go test -run TestCheckRouteDryRun ./cmd/dtrelay -args -update-route):\n%s", golden, dry)
	}
}

// A samples file that cannot be read, or a configuration that fails the
// check, fails the dry run with exit 1.
func TestCheckRouteDryRunErrors(t *testing.T) {
	if code := exitCode(exec.Command(binPath, "check", "-c", "../../testdata/route/dtrelay.yaml", "--route", "/nonexistent/samples")); code != 1 {
		t.Fatalf("missing samples: exit %d, want 1", code)
	}
	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.yaml", "inputs: []\n")
	if code := exitCode(exec.Command(binPath, "check", "-c", bad, "--route", "../../testdata/route/samples.ndjson")); code == 0 {
		t.Fatal("a bad configuration passed the dry run")
	}
}

func exitCode(cmd *exec.Cmd) int {
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestDedupSurvivesARestart (issue 17): with a spool, an alert sent again
// after dtrelay restarted, within the route's window, is deduplicated
// (counted) and not forwarded twice; a drop route's noise is counted.
func TestDedupSurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	port, mport := freePort(t), freePort(t)
	out := dir + "/out.ndjson"
	cfg := writeFile(t, dir, "dtrelay.yaml", fmt.Sprintf(`
inputs: [{name: dt, protocol: tcp, address: "127.0.0.1:%d"}]
outputs: [{name: archive, type: file, path: %s}]
routes:
  - {name: noise, match: {models: ["System::*"]}, drop: true}
  - {name: siem, outputs: [archive], dedup: {window: 10m}}
spool: {dir: %s}
metrics: {address: "127.0.0.1:%d"}
`, port, out, dir+"/spool", mport))
	breach := `{"pbid":77,"time":1700000000000,"score":0.9,"model":{"name":"Compromise::Beaconing","category":"Critical"},"triggeredComponents":[]}`
	noise := `{"pbid":78,"time":1700000000000,"score":0.9,"model":{"name":"System::Probe Traffic Loss","category":"Informational"},"triggeredComponents":[]}`
	p := startRelay(t, "run", "-c", cfg)
	sendLines(t, fmt.Sprintf("127.0.0.1:%d", port), []string{breach, noise})
	waitFor(t, "the breach written", func() bool { b, _ := os.ReadFile(out); return strings.Count(string(b), "\n") == 1 })
	if v := metricValue(t, mport, `dtrelay_route_filtered_total{route="noise"}`); v != 1 {
		t.Fatalf("filtered{noise} = %d, want 1", v)
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	p = startRelay(t, "run", "-c", cfg)
	sendLines(t, fmt.Sprintf("127.0.0.1:%d", port), []string{breach})
	waitFor(t, "the repeat deduplicated", func() bool {
		return metricValue(t, mport, `dtrelay_route_deduplicated_total{route="siem"}`) == 1
	})
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if b, _ := os.ReadFile(out); string(b) != breach+"\n" {
		t.Fatalf("archive holds %q, want the breach once", b)
	}
}
