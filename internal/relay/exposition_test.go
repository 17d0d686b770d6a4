package relay

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrapeMetrics GETs /metrics of r.
func scrapeMetrics(t *testing.T, r *Relay) string {
	t.Helper()
	resp, err := http.Get("http://" + r.MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// samples parses an exposition into series (name and labels, as written)
// -> value.
func samples(t *testing.T, expo string) map[string]float64 {
	t.Helper()
	m := map[string]float64{}
	for _, l := range strings.Split(expo, "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("bad sample line %q", l)
		}
		m[l[:i]] = v
	}
	return m
}

// promtoolPath finds promtool: on PATH, else where bench/install-peers.sh
// unpacks Debian's prometheus package ($DTBENCH_PEERS, /opt/dtbench-peers).
func promtoolPath() string {
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	dir := os.Getenv("DTBENCH_PEERS")
	if dir == "" {
		dir = "/opt/dtbench-peers"
	}
	if p := filepath.Join(dir, "usr/bin/promtool"); isExecutable(p) {
		return p
	}
	return ""
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// TestMetricsExposition scrapes a relay with a spool, an output that
// delivers (file) and one whose intake is down (syslog to a closed port),
// after 20 alerts: build_info, the per-output and spool series of issue 15,
// a HELP text and a TYPE for every family, Prometheus `le` buckets (no
// vmrange), one delivery latency observation per delivered event, and
// `promtool check metrics` over the whole answer when promtool is there.
func TestMetricsExposition(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	out := filepath.Join(t.TempDir(), "out.ndjson")
	r := startRelayDoc(t, fmt.Sprintf(`inputs: [{name: in, protocol: tcp, address: "127.0.0.1:0"}]
outputs:
  - {name: file, type: file, path: %s, queue_size: 8MiB}
  - {name: down, type: syslog, address: "%s", tls: false, format: rfc5424, queue_size: 16MiB}
spool: {dir: %s, max_size: 64MiB}
metrics: {address: "127.0.0.1:0"}
`, out, dead, t.TempDir()))
	const n = 20
	before := time.Now()
	sendAlerts(t, r.Addrs()[0].String(), 0, n, 300)
	waitLines(t, out, n)
	// The dead output has tried (and failed) at least once.
	deadline := time.Now().Add(10 * time.Second)
	var expo string
	var got map[string]float64
	for {
		expo = scrapeMetrics(t, r)
		got = samples(t, expo)
		if got[`dtrelay_output_retries_total{output="down"}`] >= 1 && got[`dtrelay_output_events_total{output="file"}`] == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no retry of the dead output, or not %d events delivered:\n%s", n, expo)
		}
		time.Sleep(10 * time.Millisecond)
	}
	afterScrape := time.Now()

	want := func(series string, ok func(v float64) bool, what string) {
		t.Helper()
		v, found := got[series]
		if !found {
			t.Errorf("no series %s", series)
		} else if !ok(v) {
			t.Errorf("%s = %v, want %s", series, v, what)
		}
	}
	eq := func(w float64) func(float64) bool { return func(v float64) bool { return v == w } }
	want(fmt.Sprintf(`dtrelay_build_info{version=%q,goversion=%q}`, Version, runtime.Version()), eq(1), "1")
	want(`dtrelay_output_up{output="file"}`, eq(1), "1")
	want(`dtrelay_output_up{output="down"}`, eq(0), "0")
	want(`dtrelay_output_last_success_timestamp_seconds{output="down"}`, eq(0), "0 (never)")
	want(`dtrelay_output_last_success_timestamp_seconds{output="file"}`, func(v float64) bool {
		return v >= float64(before.Unix()) && v <= float64(afterScrape.Unix()+1)
	}, "the time of the test")
	want(`dtrelay_output_queue_capacity_bytes{output="file"}`, eq(8<<20), "8 MiB")
	want(`dtrelay_output_queue_capacity_bytes{output="down"}`, eq(16<<20), "16 MiB")
	want(`dtrelay_output_oldest_pending_seconds{output="file"}`, eq(0), "0 (all delivered)")
	want(`dtrelay_output_oldest_pending_seconds{output="down"}`, func(v float64) bool {
		return v > 0 && v <= afterScrape.Sub(before).Seconds()+1
	}, "the age of the first alert")
	want(`dtrelay_output_queue_bytes{output="down"}`, func(v float64) bool { return v > 0 }, "> 0")
	want(`dtrelay_spool_capacity_bytes`, eq(64<<20), "64 MiB")
	want(`dtrelay_spool_bytes`, func(v float64) bool { return v > 0 }, "> 0")
	want(`dtrelay_output_send_duration_seconds_bucket{output="file",le="+Inf"}`, func(v float64) bool { return v >= 1 }, ">= 1")
	want(`dtrelay_output_send_duration_seconds_bucket{output="file",le="600"}`, func(v float64) bool { return v >= 1 }, ">= 1")
	want(`dtrelay_output_send_duration_seconds_count{output="file"}`, func(v float64) bool { return v >= 1 }, ">= 1")
	want(`dtrelay_output_delivery_latency_seconds_count{output="file"}`, eq(n), fmt.Sprint(n, " (one per event)"))
	want(`dtrelay_output_delivery_latency_seconds_bucket{output="file",le="+Inf"}`, eq(n), fmt.Sprint(n))
	want(`dtrelay_output_delivery_latency_seconds_bucket{output="file",le="0.001"}`, func(v float64) bool { return v <= n }, "<= n")
	want(`dtrelay_output_delivery_latency_seconds_count{output="down"}`, eq(0), "0")
	if got[`dtrelay_output_delivery_latency_seconds_sum{output="file"}`] > float64(n)*afterScrape.Sub(before).Seconds() {
		t.Errorf("delivery latency sum %v exceeds %d × the test's duration", got[`dtrelay_output_delivery_latency_seconds_sum{output="file"}`], n)
	}
	if strings.Contains(expo, "vmrange") {
		t.Error("the exposition still has vmrange buckets")
	}
	checkMetadata(t, expo)

	pt := promtoolPath()
	if pt == "" {
		t.Skip("promtool not installed (bench/install-peers.sh unpacks it): exposition not linted")
	}
	cmd := exec.Command(pt, "check", "metrics")
	cmd.Stdin = strings.NewReader(expo)
	res, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 3) { // 3: lint problems only
		t.Fatalf("promtool check metrics: %v\n%s", err, res)
	}
	// Lint problems of the library's go_ and process_ families are not ours.
	for _, l := range strings.Split(strings.TrimSpace(string(res)), "\n") {
		if strings.HasPrefix(l, "dtrelay_") {
			t.Errorf("promtool check metrics: %s", l)
		} else if l != "" {
			t.Logf("promtool (library family, ignored): %s", l)
		}
	}
}

// checkMetadata: every dtrelay_ family has a # HELP with a text and a
// # TYPE before its samples, and a _total family is a counter.
func checkMetadata(t *testing.T, expo string) {
	t.Helper()
	help, typ := map[string]string{}, map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(expo))
	for sc.Scan() {
		l := sc.Text()
		if rest, ok := strings.CutPrefix(l, "# HELP "); ok {
			fam, text, _ := strings.Cut(rest, " ")
			help[fam] = text
			continue
		}
		if rest, ok := strings.CutPrefix(l, "# TYPE "); ok {
			fam, ty, _ := strings.Cut(rest, " ")
			typ[fam] = ty
			continue
		}
		name := l[:strings.IndexAny(l, "{ ")]
		if !strings.HasPrefix(name, "dtrelay_") {
			continue // the library's go_ and process_ families
		}
		fam := name
		if _, ok := typ[fam]; !ok {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if f, ok := strings.CutSuffix(name, suf); ok && typ[f] == "histogram" {
					fam = f
				}
			}
		}
		if typ[fam] == "" {
			t.Errorf("%s: sample before (or without) its # TYPE", name)
		}
		if help[fam] == "" {
			t.Errorf("%s: no # HELP text", fam)
		}
	}
	for fam, ty := range typ {
		if strings.HasPrefix(fam, "dtrelay_") && strings.HasSuffix(fam, "_total") && ty != "counter" {
			t.Errorf("%s: TYPE %s for a _total family", fam, ty)
		}
	}
	for fam := range histograms {
		if typ[fam] != "histogram" {
			t.Errorf("%s: TYPE %q, want histogram", fam, typ[fam])
		}
	}
}
