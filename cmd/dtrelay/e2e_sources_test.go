//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// syslog5424 is one LF-framed RFC 5424 message from host.
func syslog5424(host, payload string) string {
	return fmt.Sprintf("<165>1 2026-12-03T14:00:00Z %s darktrace - - - %s\n", host, payload)
}

// logLines returns the JSON log lines of stderr whose message contains msg.
func logLines(t *testing.T, stderr, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(stderr, "\n") {
		if !strings.Contains(l, msg) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		if strings.Contains(fmt.Sprint(m["message"]), msg) {
			out = append(out, m)
		}
	}
	return out
}

// sample returns the value of the sample named series in a /metrics
// scrape, or "" when it is absent.
func sample(scrape, series string) string {
	for _, l := range strings.Split(scrape, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			return v
		}
	}
	return ""
}

// TestSourcesSilentAndBack: two Darktrace masters (two HOSTNAMEs) send on
// their own connections; one stops. After silent_after it is flagged
// dtrelay_source_silent 1 with one warning, the other stays 0; when it
// sends again it is back to 0 with an info line. The test alert of the
// other is logged with the outputs it was routed to.
func TestSourcesSilentAndBack(t *testing.T) {
	const silentAfter = 400 * time.Millisecond
	dir := t.TempDir()
	port, mport := freePort(t), freePort(t)
	cfg := writeFile(t, dir, "c.yaml", fmt.Sprintf(`
inputs: [{name: in, protocol: tcp, address: "127.0.0.1:%d", silent_after: %s}]
outputs:
  - {name: archive, type: file, path: %s}
  - {name: siem, type: file, path: %s}
metrics: {address: "127.0.0.1:%d"}
`, port, silentAfter, filepath.Join(dir, "a.ndjson"), filepath.Join(dir, "s.ndjson"), mport))
	p := startRelay(t, "run", "-c", cfg)
	dialWhenUp(t, "tcp", fmt.Sprintf("127.0.0.1:%d", mport)).Close() // started after the inputs
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c1 := dialWhenUp(t, "tcp", addr)
	defer c1.Close()
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	al := alerts(4)
	send := func(c net.Conn, host, payload string) {
		t.Helper()
		if _, err := c.Write([]byte(syslog5424(host, payload))); err != nil {
			t.Fatal(err)
		}
	}
	send(c1, "dt-master-1", al[0])
	send(c2, "dt-master-2", al[1])
	send(c2, "dt-master-2", al[3]) // the test alert ("Unrestricted Test Model")

	silent1 := `dtrelay_source_silent{input="in",source="dt-master-1"}`
	silent2 := `dtrelay_source_silent{input="in",source="dt-master-2"}`
	breaches1 := `dtrelay_source_alerts_total{input="in",source="dt-master-1",kind="model_breach"}`
	tests2 := `dtrelay_source_alerts_total{input="in",source="dt-master-2",kind="test"}`
	waitFor(t, "both sources in /metrics", func() bool {
		m := scrape(t, mport)
		return sample(m, breaches1) == "1" && sample(m, tests2) == "1"
	})
	if v := sample(scrape(t, mport), `dtrelay_source_last_alert_timestamp_seconds{input="in",source="dt-master-1"}`); v == "" || v == "0" {
		t.Errorf("last alert timestamp of dt-master-1 = %q, want the reception time", v)
	}

	// dt-master-2 keeps sending; dt-master-1 is silent.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 400; i++ { // bounded: 20s at most
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := c2.Write([]byte(syslog5424("dt-master-2", al[1]))); err != nil {
				return
			}
		}
	}()
	defer func() { close(stop); <-done }()
	waitFor(t, "dt-master-1 flagged silent", func() bool { return sample(scrape(t, mport), silent1) == "1" })
	if v := sample(scrape(t, mport), silent2); v != "0" {
		t.Errorf("%s = %q while it sends, want 0", silent2, v)
	}
	time.Sleep(3 * silentAfter) // still silent: no second warning
	if ws := logLines(t, p.stderr.String(), "source silent"); len(ws) != 1 || ws[0]["source"] != "dt-master-1" || ws[0]["level"] != "warn" {
		t.Errorf("silence warnings = %v, want one warn line for dt-master-1", ws)
	}

	send(c1, "dt-master-1", al[0])
	waitFor(t, "dt-master-1 back", func() bool { return sample(scrape(t, mport), silent1) == "0" })
	var back []map[string]any
	waitFor(t, "the back line", func() bool { back = logLines(t, p.stderr.String(), "sends again"); return len(back) > 0 })
	if len(back) != 1 || back[0]["source"] != "dt-master-1" || back[0]["level"] != "info" {
		t.Errorf("back lines = %v, want one info line for dt-master-1", back)
	}
	if v := sample(scrape(t, mport), breaches1); v != "2" {
		t.Errorf("%s = %q, want 2", breaches1, v)
	}

	tl := logLines(t, p.stderr.String(), "Darktrace test alert")
	want := "Darktrace test alert from dt-master-2 via in → outputs archive, siem"
	if len(tl) != 1 || tl[0]["message"] != want || tl[0]["level"] != "info" {
		t.Errorf("test alert lines = %v, want one info %q", tl, want)
	}
	news := logLines(t, p.stderr.String(), "new source")
	if len(news) != 2 {
		t.Errorf("new source lines = %v, want 2", news)
	}
	if opened := logLines(t, p.stderr.String(), "connection opened"); len(opened) != 2 {
		t.Errorf("connection opened lines = %v, want 2", opened)
	}
}

// TestSourcesMaxSourcesOther: past metrics.max_sources new senders are
// counted as source "other", with one warning.
func TestSourcesMaxSourcesOther(t *testing.T) {
	dir := t.TempDir()
	port, mport := freePort(t), freePort(t)
	cfg := writeFile(t, dir, "c.yaml", fmt.Sprintf(`
inputs: [{name: in, protocol: tcp, address: "127.0.0.1:%d"}]
outputs: [{name: out, type: file, path: %s}]
metrics: {address: "127.0.0.1:%d", max_sources: 2}
`, port, filepath.Join(dir, "o.ndjson"), mport))
	p := startRelay(t, "run", "-c", cfg)
	dialWhenUp(t, "tcp", fmt.Sprintf("127.0.0.1:%d", mport)).Close() // started after the inputs
	c := dialWhenUp(t, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
	defer c.Close()
	al := alerts(1)
	for i := range 5 {
		if _, err := c.Write([]byte(syslog5424(fmt.Sprintf("host-%d", i), al[0]))); err != nil {
			t.Fatal(err)
		}
		// One read each: a source is admitted in the order sent.
		waitFor(t, "alert counted", func() bool {
			return sample(scrape(t, mport), `dtrelay_input_alerts_total{input="in",kind="model_breach"}`) == fmt.Sprint(i+1)
		})
	}
	m := scrape(t, mport)
	for series, want := range map[string]string{
		`dtrelay_source_alerts_total{input="in",source="host-0",kind="model_breach"}`: "1",
		`dtrelay_source_alerts_total{input="in",source="host-1",kind="model_breach"}`: "1",
		`dtrelay_source_alerts_total{input="in",source="other",kind="model_breach"}`:  "3",
		`dtrelay_source_alerts_total{input="in",source="host-2",kind="model_breach"}`: "",
	} {
		if got := sample(m, series); got != want {
			t.Errorf("%s = %q, want %q", series, got, want)
		}
	}
	if ws := logLines(t, p.stderr.String(), "max_sources reached"); len(ws) != 1 || ws[0]["level"] != "warn" {
		t.Errorf("max_sources warnings = %v, want one", ws)
	}
}

// TestHeartbeatToFileOutput: the heartbeat reaches the output named in
// heartbeat.outputs (or, without them, the one a route for kind heartbeat
// names) with its fields, and not the other output.
func TestHeartbeatToFileOutput(t *testing.T) {
	for _, tc := range []struct{ name, heartbeat, routes string }{
		{"outputs", `heartbeat: {interval: 1s, outputs: [hb]}`, ``},
		{"routes", `heartbeat: {interval: 1s}`, `routes:
  - {match: {kinds: [heartbeat]}, outputs: [hb]}
  - {match: {kinds: [model_breach]}, outputs: [alerts]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			port := freePort(t)
			hbFile, alFile := filepath.Join(dir, "hb.ndjson"), filepath.Join(dir, "alerts.ndjson")
			cfg := writeFile(t, dir, "c.yaml", fmt.Sprintf(`
inputs: [{name: in, protocol: tcp, address: "127.0.0.1:%d", silent_after: 1h}]
outputs:
  - {name: alerts, type: file, path: %s}
  - {name: hb, type: file, path: %s}
%s
%s
`, port, alFile, hbFile, tc.heartbeat, tc.routes))
			p := startRelay(t, "run", "-c", cfg)
			c := dialWhenUp(t, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
			defer c.Close()
			al := alerts(1)
			for range 3 {
				if _, err := c.Write([]byte(syslog5424("dt-master-1", al[0]))); err != nil {
					t.Fatal(err)
				}
			}
			type heartbeat struct {
				H struct {
					Version         string   `json:"version"`
					Host            string   `json:"host"`
					UptimeS         *int64   `json:"uptime_s"`
					IntervalS       int64    `json:"interval_s"`
					SourcesSeen     int      `json:"sources_seen"`
					SourcesSilent   []string `json:"sources_silent"`
					AlertsSinceLast uint64   `json:"alerts_since_last"`
					Queues          []struct {
						Name     string `json:"name"`
						Capacity int64  `json:"capacity"`
					} `json:"queues"`
				} `json:"dtrelay_heartbeat"`
			}
			var hb heartbeat
			var alerts uint64
			waitFor(t, "a heartbeat counting the source", func() bool {
				n := 0
				for _, l := range fileLines(hbFile) {
					if !strings.Contains(l, "dtrelay_heartbeat") {
						continue // an alert: without routes, every output has them
					}
					hb = heartbeat{}
					if err := json.Unmarshal([]byte(l), &hb); err != nil {
						t.Fatalf("heartbeat line %q: %v", l, err)
					}
					alerts += hb.H.AlertsSinceLast
					n++
				}
				done := n > 0 && hb.H.SourcesSeen == 1
				if !done {
					alerts = 0
				}
				return done
			})
			h := hb.H
			if h.Version == "" || h.Host == "" || h.UptimeS == nil || h.IntervalS != 1 || h.SourcesSilent == nil || len(h.SourcesSilent) != 0 {
				t.Errorf("heartbeat = %+v, want version, host, uptime_s, interval_s 1, no silent source", h)
			}
			if alerts != 3 {
				t.Errorf("alerts_since_last over the heartbeats = %d, want the 3 sent", alerts)
			}
			if len(h.Queues) != 2 || h.Queues[0].Name != "alerts" || h.Queues[1].Name != "hb" || h.Queues[0].Capacity <= 0 {
				t.Errorf("queues = %+v, want alerts and hb with their capacity", h.Queues)
			}
			if p.stop(t) != 0 {
				t.Errorf("exit code not 0")
			}
			for _, l := range fileLines(alFile) {
				if strings.Contains(l, "dtrelay_heartbeat") {
					t.Errorf("the heartbeat reached output alerts: %s", l)
				}
			}
			if n := len(fileLines(alFile)); n != 3 {
				t.Errorf("output alerts has %d lines, want the 3 alerts", n)
			}
		})
	}
}
