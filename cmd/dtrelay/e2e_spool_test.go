package main

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/forward/intaketest"
)

// spoolConfig writes a config with a TCP input, a syslog output to intake
// and a spool in dir.
func spoolConfig(t *testing.T, dir string, port int, intakeAddr string) string {
	t.Helper()
	return writeFile(t, dir, "dtrelay.yaml", fmt.Sprintf(`
inputs: [{name: dt, protocol: tcp, address: "127.0.0.1:%d"}]
outputs:
  - {name: intake, type: syslog, address: "%s", tls: false, format: sekoia, intake_key: %s, queue_size: 1MiB}
spool: {dir: %s, fsync_interval: 1s, max_size: 256MiB}
shutdown_timeout: 5s
`, port, intakeAddr, intakeKey, filepath.Join(dir, "spool")))
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

// metricValue reads one sample from the relay's /metrics.
func metricValue(t *testing.T, port int, name string) int {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// TestSpoolSurvivesIntakeOutageAndStop: alerts sent while the intake is
// down, 2 s allowed, then the relay is killed (SIGKILL) or stopped
// (SIGTERM); restarted with the intake up, it delivers every one.
func TestSpoolSurvivesIntakeOutageAndStop(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			intake := intaketest.NewSyslog(t, intakeKey, false)
			intake.Stop()
			port := freePort(t)
			cfg := spoolConfig(t, dir, port, intake.Addr())
			p := startRelay(t, "run", "-c", cfg)
			payloads := alerts(2000)
			sendLines(t, fmt.Sprintf("127.0.0.1:%d", port), payloads)
			time.Sleep(2 * time.Second) // the promise: on disk within fsync_interval (1s)
			if sig == syscall.SIGKILL {
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
	port := freePort(t)
	cfg := writeFile(t, dir, "dtrelay.yaml", fmt.Sprintf(`
inputs: [{name: dt, protocol: tcp, address: "127.0.0.1:%d"}]
outputs:
  - {name: sekoia, type: sekoia-http, url: "%s", ca_file: %s, intake_key: %s, queue_size: 1MiB, batch: {max_events: 200, max_wait: 20ms}}
spool: {dir: %s, fsync_interval: 1s, max_size: 256MiB}
`, port, in.URL(), in.CAFile(), intakeKey, filepath.Join(dir, "spool")))
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
	time.Sleep(300 * time.Millisecond)
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
