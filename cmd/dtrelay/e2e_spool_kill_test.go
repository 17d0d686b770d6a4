package main

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/internal/intaketest"
)

// metricSum adds every sample of the relay's /metrics whose name and labels
// start with prefix; -1 if the metrics cannot be read.
func metricSum(t *testing.T, port int, prefix string) int {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	sum := 0
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, prefix) {
			continue
		}
		if i := strings.LastIndexByte(l, ' '); i > 0 {
			n, _ := strconv.Atoi(l[i+1:])
			sum += n
		}
	}
	return sum
}

// TestSpoolKill9LosesNothingRead (issue 10 item 4): alerts the relay has
// read survive a kill -9, fsync or not: each published block is written to
// the spool's segment file before the receiver reads on. The intake is down
// and fsync_interval is an hour, so nothing is delivered or fsynced before
// the kill; the relay is killed as soon as its input metrics count every
// alert read. Restarted with the intake up, it delivers every one.
func TestSpoolKill9LosesNothingRead(t *testing.T) {
	const n = 20000 // ~5 MB: several of the old 1 MiB write buffers, and a part of one
	dir := t.TempDir()
	intake := intaketest.NewSyslog(t, intakeKey, false)
	intake.Stop()
	port, mport := freePort(t), freePort(t)
	cfg := writeFile(t, dir, "dtrelay.yaml", fmt.Sprintf(`
inputs: [{name: dt, protocol: tcp, address: "127.0.0.1:%d"}]
outputs:
  - {name: intake, type: syslog, address: "%s", tls: false, format: sekoia, intake_key: %s, queue_size: 1MiB}
spool: {dir: %s, fsync_interval: 1h, max_size: 256MiB}
metrics: {address: "127.0.0.1:%d"}
`, port, intake.Addr(), intakeKey, filepath.Join(dir, "spool"), mport))
	p := startRelay(t, "run", "-c", cfg)
	payloads := alerts(n)
	sendLines(t, fmt.Sprintf("127.0.0.1:%d", port), payloads)
	// Poll the input metric (counted once a read's blocks are published)
	// and kill at once.
	deadline := time.Now().Add(30 * time.Second)
	for {
		read := metricSum(t, mport, `dtrelay_input_alerts_total{input="dt",`)
		if read >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the relay read %d of %d alerts", read, n)
		}
		time.Sleep(time.Millisecond)
	}
	p.cmd.Process.Kill()
	p.cmd.Wait()

	intake.Restart()
	p2 := startRelay(t, "run", "-c", cfg)
	if !intake.WaitEvents(n, 60*time.Second) {
		t.Fatalf("after kill -9 and restart the intake got %d of %d alerts read", intake.Count(), n)
	}
	if code := p2.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	// checkAllOnce fails on any alert lost and logs the duplicates.
	checkAllOnce(t, intake.Events(), payloads)
}
