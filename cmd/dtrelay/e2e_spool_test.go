package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/internal/intaketest"
)

// spoolConfig writes a config with a TCP input on port, a syslog output to
// intake, a spool in dir/spool and metrics on mport.
func spoolConfig(t *testing.T, dir string, port, mport int, intakeAddr string) string {
	t.Helper()
	return writeFile(t, dir, "dtrelay.yaml", fmt.Sprintf(`
inputs: [{name: dt, protocol: tcp, address: "127.0.0.1:%d"}]
outputs:
  - {name: intake, type: syslog, address: "%s", tls: false, format: sekoia, intake_key: %s, queue_size: 1MiB}
spool: {dir: %s, fsync_interval: 1s, max_size: 256MiB}
metrics: {address: "127.0.0.1:%d"}
shutdown_timeout: 5s
`, port, intakeAddr, intakeKey, filepath.Join(dir, "spool"), mport))
}

// segmentBytes returns the size of the spool's segment files in dir: what
// a kill -9 leaves.
func segmentBytes(t *testing.T, dir string) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			n += int(st.Size())
		}
	}
	return n
}

// checkAllOnce fails unless every payload arrived, and returns the number of
// duplicates.
func checkAllOnce(t *testing.T, got [][]byte, payloads []string) int {
	t.Helper()
	seen := map[string]int{}
	for _, e := range got {
		seen[string(e)]++
	}
	dups := 0
	for _, p := range payloads {
		switch n := seen[p]; {
		case n == 0:
			t.Fatalf("an alert never arrived (got %d events for %d alerts)", len(got), len(payloads))
		case n > 1:
			dups += n - 1
		}
	}
	t.Logf("%d alerts delivered, %d duplicates", len(payloads), dups)
	return dups
}

// metricValue reads one sample (name with its labels) from the relay's
// /metrics on port: 0 when the series is absent, -1 while the listener
// cannot be reached (the relay is starting), so that it can be polled.
func metricValue(t *testing.T, port int, name string) int {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64) // gauges may be written as 1.5e+06
			return int(f)
		}
	}
	return 0
}

// waitMetric polls the relay's /metrics on port until the sample name is at
// least min.
func waitMetric(t *testing.T, port int, name string, min int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%s >= %d", name, min), func() bool { return metricValue(t, port, name) >= min })
}

// TestSpoolSurvivesIntakeOutageAndStop: alerts sent while the intake is
// down; once the relay has taken every one into its spool, it is killed
// (SIGKILL, when the spool's segment files hold everything, which must be
// within fsync_interval) or stopped (SIGTERM); restarted with the intake
// up, it delivers every one.
func TestSpoolSurvivesIntakeOutageAndStop(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			intake := intaketest.NewSyslog(t, intakeKey, false)
			intake.Stop()
			port, mport := freePort(t), freePort(t)
			cfg := spoolConfig(t, dir, port, mport, intake.Addr())
			p := startRelay(t, "run", "-c", cfg)
			payloads := alerts(2000)
			sendLines(t, fmt.Sprintf("127.0.0.1:%d", port), payloads)
			waitMetric(t, mport, "dtrelay_spool_appended_total", len(payloads))
			if sig == syscall.SIGKILL {
				// The promise: on disk within fsync_interval (1s) of acceptance.
				accepted, spooled := time.Now(), metricValue(t, mport, "dtrelay_spool_bytes")
				segs := filepath.Join(dir, "spool")
				waitFor(t, "the spooled alerts in the segment files", func() bool { return segmentBytes(t, segs) >= spooled })
				d := time.Since(accepted)
				t.Logf("%d spooled bytes in the segment files %v after the last alert was taken", spooled, d.Round(time.Millisecond))
				if d > 2*time.Second {
					t.Errorf("the segment files held the spooled alerts %v after they were taken, want within fsync_interval (1s)", d.Round(time.Millisecond))
				}
				p.cmd.Process.Kill()
				p.cmd.Wait()
			} else {
				start := time.Now()
				if code := p.stop(t); code != 0 {
					t.Fatalf("exit code %d after SIGTERM", code)
				}
				if d := time.Since(start); d > 3*time.Second {
					t.Fatalf("SIGTERM took %v: it waited on the dead intake", d)
				}
			}
			intake.Restart()
			p2 := startRelay(t, "run", "-c", cfg)
			if !intake.WaitEvents(len(payloads), 20*time.Second) {
				t.Fatalf("after restart the intake got %d of %d", intake.Count(), len(payloads))
			}
			if code := p2.stop(t); code != 0 {
				t.Fatalf("exit code %d", code)
			}
			checkAllOnce(t, intake.Events(), payloads)
		})
	}
}

// TestSpoolIntakeDownUnderLoad: the HTTPS intake goes down while alerts
// stream in and comes back; the relay keeps reading (the spool takes what
// its 1 MiB queue cannot) and every alert arrives once.
func TestSpoolIntakeDownUnderLoad(t *testing.T) {
	dir := t.TempDir()
	in := intaketest.NewSekoiaHTTP(t, intakeKey)
	port, mport := freePort(t), freePort(t)
	cfg := writeFile(t, dir, "dtrelay.yaml", fmt.Sprintf(`
inputs: [{name: dt, protocol: tcp, address: "127.0.0.1:%d"}]
outputs:
  - {name: sekoia, type: sekoia-http, url: "%s", ca_file: %s, intake_key: %s, queue_size: 1MiB, batch: {max_events: 200, max_wait: 20ms}}
spool: {dir: %s, fsync_interval: 1s, max_size: 256MiB}
metrics: {address: "127.0.0.1:%d"}
`, port, in.URL(), in.CAFile(), intakeKey, filepath.Join(dir, "spool"), mport))
	p := startRelay(t, "run", "-c", cfg)
	payloads := alerts(6000)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	sendLines(t, addr, payloads[:1000])
	waitFor(t, "first alerts", func() bool { return in.Count() > 500 })
	in.SetDown(true)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		sendLines(t, addr, payloads[1000:]) // 5000 alerts, more than the 1 MiB queue
	}()
	select {
	case <-sent:
	case <-time.After(10 * time.Second):
		t.Fatal("intake stalled while the output was down, despite the spool")
	}
	// Up again once the relay has taken every alert while the output was
	// failing.
	waitMetric(t, mport, "dtrelay_spool_appended_total", len(payloads))
	waitMetric(t, mport, `dtrelay_output_retries_total{output="sekoia"}`, 1)
	in.SetDown(false)
	if !in.WaitEvents(len(payloads), 30*time.Second) {
		t.Fatalf("intake got %d of %d", in.Count(), len(payloads))
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if dups := checkAllOnce(t, in.Events(), payloads); dups > 0 {
		t.Fatalf("%d alerts delivered twice; an HTTPS intake answers every request", dups)
	}
}
