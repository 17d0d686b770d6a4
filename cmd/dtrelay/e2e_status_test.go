package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// getStatus fetches path from the metrics listener on mport.
func getStatus(t *testing.T, mport int, path string) (string, string) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", mport, path))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	return string(b), resp.Header.Get("Content-Type")
}

type statusDoc struct {
	Version string `json:"version"`
	Inputs  []struct {
		Name        string `json:"name"`
		Protocol    string `json:"protocol"`
		Connections int    `json:"connections"`
		AlertsTotal uint64 `json:"alerts_total"`
	} `json:"inputs"`
	Sources []struct {
		Source   string    `json:"source"`
		LastSeen time.Time `json:"last_seen"`
		Silent   bool      `json:"silent"`
	} `json:"sources"`
	Outputs []struct {
		Name          string `json:"name"`
		Type          string `json:"type"`
		Up            bool   `json:"up"`
		QueueCapacity int64  `json:"queue_capacity"`
	} `json:"outputs"`
	Spool *struct{} `json:"spool"`
}

// TestStatusPageAndAPI: two masters send, one goes silent; /api/status
// lists both, the silent one first (stalest) and flagged, the outputs up;
// GET / shows both and marks the silent one's row with class "silent".
func TestStatusPageAndAPI(t *testing.T) {
	dir := t.TempDir()
	port, mport := freePort(t), freePort(t)
	cfg := writeFile(t, dir, "c.yaml", fmt.Sprintf(`
inputs: [{name: in, protocol: tcp, address: "127.0.0.1:%d", silent_after: 400ms}]
outputs:
  - {name: archive, type: file, path: %s}
metrics: {address: "127.0.0.1:%d"}
`, port, filepath.Join(dir, "a.ndjson"), mport))
	startRelay(t, "run", "-c", cfg)
	dialWhenUp(t, "tcp", fmt.Sprintf("127.0.0.1:%d", mport)).Close()
	oneMasterFallsSilent(t, port, 50*time.Millisecond, 400) // 20 s at most

	var st statusDoc
	waitFor(t, "dt-master-1 silent in /api/status", func() bool {
		body, ctype := getStatus(t, mport, "/api/status")
		if ctype != "application/json" {
			t.Fatalf("Content-Type %q", ctype)
		}
		st = statusDoc{}
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatal(err)
		}
		return len(st.Sources) == 2 && st.Sources[0].Silent
	})
	if st.Sources[0].Source != "dt-master-1" || st.Sources[1].Source != "dt-master-2" || st.Sources[1].Silent {
		t.Errorf("sources = %+v, want dt-master-1 (silent) then dt-master-2", st.Sources)
	}
	if len(st.Inputs) != 1 || st.Inputs[0].Name != "in" || st.Inputs[0].Protocol != "tcp" || st.Inputs[0].AlertsTotal < 2 || st.Inputs[0].Connections != 2 {
		t.Errorf("inputs = %+v", st.Inputs)
	}
	if len(st.Outputs) != 1 || st.Outputs[0].Name != "archive" || st.Outputs[0].Type != "file" || !st.Outputs[0].Up || st.Outputs[0].QueueCapacity <= 0 {
		t.Errorf("outputs = %+v", st.Outputs)
	}
	if st.Spool != nil || st.Version == "" {
		t.Errorf("spool = %v (want null), version %q", st.Spool, st.Version)
	}

	page, ctype := getStatus(t, mport, "/")
	if !strings.HasPrefix(ctype, "text/html") {
		t.Errorf("Content-Type of / = %q", ctype)
	}
	for _, want := range []string{`<tr class="silent"><td>in</td><td>dt-master-1</td>`, `<tr class="ok"><td>in</td><td>dt-master-2</td>`, `<td>archive</td><td>file</td><td class="up">up</td>`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(page, "http://") || strings.Contains(page, "https://") || strings.Contains(page, " src=") {
		t.Error("page refers to external assets")
	}
	// dtrelay status: the same as tables.
	var o, e bytes.Buffer
	cmd := exec.Command(binPath, "status", "-a", fmt.Sprintf("127.0.0.1:%d", mport))
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("dtrelay status: %v\n%s", err, e.String())
	}
	out := o.String()
	for _, want := range []string{"INPUT", "SOURCE", "OUTPUT", "archive", "file", "spool: none"} {
		if !strings.Contains(out, want) {
			t.Errorf("dtrelay status lacks %q:\n%s", want, out)
		}
	}
	lines := strings.Split(out, "\n")
	var silentLine, okLine bool
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) > 0 && f[0] == "dt-master-1" && f[len(f)-1] == "SILENT" {
			silentLine = true
		}
		if len(f) > 0 && f[0] == "dt-master-2" && f[len(f)-1] == "ok" {
			okLine = true
		}
	}
	if !silentLine || !okLine {
		t.Errorf("dtrelay status: want dt-master-1 SILENT and dt-master-2 ok:\n%s", out)
	}
	cmd = exec.Command(binPath, "status", "-a", "127.0.0.1:1")
	if err := cmd.Run(); cmd.ProcessState.ExitCode() != 1 {
		t.Errorf("dtrelay status against nothing: %v, want exit 1", err)
	}

	// /metrics still served beside the page.
	if m, _ := getStatus(t, mport, "/metrics"); !strings.Contains(m, "dtrelay_source_silent") {
		t.Error("/metrics lost")
	}
}

// oneMasterFallsSilent connects two masters to the relay's TCP input at
// port: dt-master-1 sends one alert, then nothing; dt-master-2 sends one
// every interval until the test ends (count at most, a bound in time).
func oneMasterFallsSilent(t *testing.T, port int, interval time.Duration, count int) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c1 := dialWhenUp(t, "tcp", addr)
	t.Cleanup(func() { c1.Close() })
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	al := alerts(2)
	if _, err := c1.Write([]byte(syslog5424("dt-master-1", al[0]))); err != nil {
		t.Fatal(err)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for range count {
			select {
			case <-stop:
				return
			case <-time.After(interval):
			}
			if _, err := c2.Write([]byte(syslog5424("dt-master-2", al[1]))); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done; c2.Close() })
}
