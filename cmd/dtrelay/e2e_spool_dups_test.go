package main

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/internal/intaketest"
)

// intakeCounter is what the kill -9 test needs of an intake mock.
type intakeCounter interface {
	Count() int
	Events() [][]byte
}

// TestKill9DuplicatesAreCounted: under load, the relay is killed (SIGKILL)
// three times while it delivers from memory, and restarted; the intake
// counts every alert by its unique payload. Every duplicate it received
// must be counted by the relay: the sum over the runs of
// dtrelay_spool_redelivered_total (set at each start) and
// dtrelay_output_possible_duplicates_total is at least the duplicates.
// And none is lost: each read is written to the segment file before the
// receiver reads on, so a kill -9 loses nothing that was read.
func TestKill9DuplicatesAreCounted(t *testing.T) {
	for _, kind := range []string{"https", "syslog"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			port, mport := freePort(t), freePort(t)
			var intake intakeCounter
			var output string
			switch kind {
			case "https":
				in := intaketest.NewSekoiaHTTP(t, intakeKey)
				in.KeepEvents(true)
				intake = in
				output = fmt.Sprintf(`{name: out, type: sekoia-http, url: "%s", ca_file: %s, intake_key: %s, batch: {max_events: 200}}`,
					in.URL(), in.CAFile(), intakeKey)
			default:
				in := intaketest.NewSyslog(t, intakeKey, false)
				in.AllowProblems() // a kill cuts frames short
				intake = in
				output = fmt.Sprintf(`{name: out, type: syslog, address: "%s", tls: false, format: sekoia, intake_key: %s, batch: {max_events: 200}}`,
					in.Addr(), intakeKey)
			}
			cfg := writeFile(t, dir, "dtrelay.yaml", fmt.Sprintf(`
inputs: [{name: dt, protocol: tcp, address: "127.0.0.1:%d"}]
outputs:
  - %s
spool: {dir: %s, fsync_interval: 1s, max_size: 256MiB}
metrics: {address: "127.0.0.1:%d"}
shutdown_timeout: 5s
`, port, output, filepath.Join(dir, "spool"), mport))
			payloads := alerts(30000)
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			counted := 0
			sent := 0
			const kills = 3
			for run := 0; run <= kills; run++ {
				p := startRelay(t, "run", "-c", cfg)
				waitFor(t, "metrics", func() bool {
					c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", mport))
					if err == nil {
						c.Close()
					}
					return err == nil
				})
				counted += metricValue(t, mport, `dtrelay_spool_redelivered_total{consumer="out"}`)
				// Runs of 0.3, 0.6, 1.2 s (the last across a commit), then the rest.
				target := len(payloads) * []int{10, 30, 70, 100}[run] / 100
				c := dialWhenUp(t, "tcp", addr)
				for sent < target { // ~10k alerts/s, in chunks of 100
					if err := writeAlerts(c, payloads[sent:min(sent+100, target)]); err != nil {
						t.Fatalf("send: %v", err)
					}
					sent = min(sent+100, target)
					time.Sleep(10 * time.Millisecond)
				}
				c.Close()
				if run < kills {
					// Mid-stream: what was sent is being delivered from memory.
					counted += metricValue(t, mport, `dtrelay_output_possible_duplicates_total{output="out"}`)
					p.cmd.Process.Signal(syscall.SIGKILL)
					p.cmd.Wait()
					continue
				}
				settle(t, intake)
				counted += metricValue(t, mport, `dtrelay_output_possible_duplicates_total{output="out"}`)
				if code := p.stop(t); code != 0 {
					t.Fatalf("exit code %d", code)
				}
			}
			seen := map[string]int{}
			for _, e := range intake.Events() {
				seen[string(e)]++
			}
			dups, lost := 0, 0
			for _, pl := range payloads {
				switch n := seen[pl]; {
				case n == 0:
					lost++
				case n > 1:
					dups += n - 1
				}
			}
			t.Logf("%s, %d kills: %d alerts, %d delivered, %d duplicates, %d counted as redelivered or possible duplicates, %d lost",
				kind, kills, len(payloads), intake.Count(), dups, counted, lost)
			if dups == 0 {
				t.Log("no duplicates this time: nothing to compare")
			}
			if lost > 0 {
				t.Errorf("%d alerts lost over %d kills", lost, kills)
			}
			if dups > counted {
				t.Fatalf("%d duplicates delivered, only %d counted", dups, counted)
			}
		})
	}
}

func writeAlerts(c net.Conn, payloads []string) error {
	var b strings.Builder
	for _, p := range payloads {
		fmt.Fprintf(&b, "<165>Aug  5 03:34:46 dt-master darktrace %s\n", p)
	}
	_, err := c.Write([]byte(b.String()))
	return err
}

// settle waits until the intake has received nothing new for a second.
func settle(t *testing.T, intake intakeCounter) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	last, since := -1, time.Now()
	for time.Since(since) < time.Second {
		if time.Now().After(deadline) {
			t.Fatalf("the intake kept receiving for 30s (%d events)", intake.Count())
		}
		if n := intake.Count(); n != last {
			last, since = n, time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
}
