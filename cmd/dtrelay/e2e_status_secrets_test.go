package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/internal/intaketest"
)

// TestStatusLastErrorRedacted: two intakes fail every request and answer
// with the secrets they were sent in the body (a Sekoia intake quoting the
// intake key; an HTTP intake quoting the bearer token and the token of its
// url's path). The outputs' last errors and the last warnings show the
// failures, with "[redacted]" where the secrets were; no secret appears in
// /api/status, in the page or in `dtrelay status`.
func TestStatusLastErrorRedacted(t *testing.T) {
	const (
		key      = "status-intake-key-5b1e0c9a7d3f"
		apiToken = "status-bearer-token-8c2d4e6f"
		// A Rapid7-style webhook token in the url's path.
		pathToken = "Tok3nInThePath0123456789abcdef"
	)
	secrets := []string{key, apiToken, pathToken}
	dir := t.TempDir()
	port, mport := freePort(t), freePort(t)
	sek := intaketest.NewSekoiaHTTP(t, key)
	sek.FailNext(1000, intaketest.Fault{Status: 503, Body: `{"message":"intake overloaded for key ` + key + `"}`})
	web := intaketest.NewSekoiaHTTP(t, key)
	web.FailNext(1000, intaketest.Fault{Status: 500, Body: "cannot route Bearer " + apiToken + " to /v1/noformat/" + pathToken})
	cfg := writeFile(t, dir, "c.yaml", fmt.Sprintf(`
inputs: [{name: in, protocol: tcp, address: "127.0.0.1:%d"}]
outputs:
  - {name: sekoia, type: sekoia-http, url: "%s", ca_file: %s, intake_key: %s, batch: {max_events: 10, max_wait: 10ms}}
  - name: webhook
    type: http
    url: "%s/v1/noformat/%s"
    ca_file: %s
    headers: {Authorization: "Bearer %s"}
    batch: {max_events: 10, max_wait: 10ms}
metrics: {address: "127.0.0.1:%d"}
`, port, sek.URL(), sek.CAFile(), key, web.URL(), pathToken, web.CAFile(), apiToken, mport))
	p := startRelay(t, "run", "-c", cfg)
	dialWhenUp(t, "tcp", fmt.Sprintf("127.0.0.1:%d", mport)).Close() // the metrics listener starts last
	c := dialWhenUp(t, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
	defer c.Close()
	if _, err := c.Write([]byte(syslog5424("dt-master-1", alerts(1)[0]))); err != nil {
		t.Fatal(err)
	}

	type out struct {
		Name        string    `json:"name"`
		Up          bool      `json:"up"`
		LastError   string    `json:"last_error"`
		LastErrorAt time.Time `json:"last_error_at"`
	}
	var st struct {
		Outputs  []out `json:"outputs"`
		Warnings []struct {
			Time    time.Time `json:"time"`
			Level   string    `json:"level"`
			Message string    `json:"message"`
			Fields  string    `json:"fields"`
		} `json:"warnings"`
		WarningsTotal uint64 `json:"warnings_total"`
	}
	var body string
	waitFor(t, "both outputs' last errors and a delivery warning in /api/status", func() bool {
		body, _ = getStatus(t, mport, "/api/status")
		st.Outputs, st.Warnings = nil, nil
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, o := range st.Outputs {
			if o.LastError != "" && !o.Up {
				n++
			}
		}
		delivery := false
		for _, w := range st.Warnings {
			if w.Message == "cannot deliver batch; will retry" {
				delivery = true
			}
		}
		return n == 2 && delivery
	})
	start := time.Now().Add(-time.Minute)
	for _, o := range st.Outputs {
		// The errors carried the secrets: each masked where it stood.
		if !strings.Contains(o.LastError, "HTTP 5") || !strings.Contains(o.LastError, "[redacted]") {
			t.Errorf("output %s: last_error %q, want the intake's 5xx answer with [redacted] in it", o.Name, o.LastError)
		}
		if o.LastErrorAt.Before(start) || o.LastErrorAt.After(time.Now()) {
			t.Errorf("output %s: last_error_at %v", o.Name, o.LastErrorAt)
		}
	}
	for _, w := range st.Warnings {
		if w.Time.Before(start) || w.Level == "" {
			t.Errorf("warning %+v: want a recent time and a level", w)
		}
	}
	if st.WarningsTotal < uint64(len(st.Warnings)) || len(st.Warnings) > 10 {
		t.Errorf("%d warnings, warnings_total %d", len(st.Warnings), st.WarningsTotal)
	}

	page, _ := getStatus(t, mport, "/")
	if !strings.Contains(page, `<td class="err">`) || !strings.Contains(page, "[redacted]") || !strings.Contains(page, "cannot deliver batch; will retry") {
		t.Errorf("page lacks the last errors or the warnings:\n%s", page)
	}
	var o, e bytes.Buffer
	cmd := exec.Command(binPath, "status", "-a", fmt.Sprintf("127.0.0.1:%d", mport))
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("dtrelay status: %v\n%s", err, e.String())
	}
	cli := o.String()
	t.Logf("dtrelay status:\n%s", cli)
	for _, want := range []string{"last error of sekoia at ", "last error of webhook at ", "[redacted]", "warnings: ", "cannot deliver batch; will retry"} {
		if !strings.Contains(cli, want) {
			t.Errorf("dtrelay status lacks %q:\n%s", want, cli)
		}
	}
	for _, s := range secrets {
		for where, text := range map[string]string{"/api/status": body, "the page": page, "dtrelay status": cli, "the log": p.stderr.String()} {
			if strings.Contains(text, s) {
				t.Errorf("%s shows the secret %q", where, s)
			}
		}
	}
}
