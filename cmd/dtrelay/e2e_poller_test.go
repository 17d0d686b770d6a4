package main

import (
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestPollsDarktraceAPI runs the binary with a darktrace-api input against
// a mock Darktrace API: signed requests, every breach and AI Analyst event
// forwarded once although the polling windows overlap.
func TestPollsDarktraceAPI(t *testing.T) {
	breaches := `[{"pbid":101,"time":%d,"score":0.9,"model":{"name":"Compromise::Beacon","priority":4},"triggeredComponents":[]},` +
		`{"pbid":102,"time":%d,"score":0.4,"model":{"name":"Device::New Activity","priority":1},"triggeredComponents":[]}]`
	incidents := `[{"id":"a1b2","currentGroup":"g1","aiaScore":80,"summariser":"BeaconSummary","createdAt":%d,"category":"critical"}]`
	now := time.Now().UnixMilli()
	var polls, unsigned atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("DTAPI-Token") != "e2e-public" || len(r.Header.Get("DTAPI-Signature")) != 40 || r.Header.Get("DTAPI-Date") == "" {
			unsigned.Add(1)
			http.Error(w, "API SIGNATURE ERROR", http.StatusBadRequest)
			return
		}
		polls.Add(1)
		switch r.URL.Path {
		case "/modelbreaches":
			fmt.Fprintf(w, breaches, now, now)
		case "/aianalyst/incidentevents":
			fmt.Fprintf(w, incidents, now)
		default:
			http.Redirect(w, r, "/login", http.StatusFound)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	ca := writeFile(t, dir, "api-ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	out := filepath.Join(dir, "out.ndjson")
	cfg := writeFile(t, dir, "dtrelay.yaml", fmt.Sprintf(`
inputs:
  - {name: cloud, protocol: darktrace-api, url: "%s", public_token: e2e-public, private_token: "${E2E_DT_PRIVATE}", interval: 1s, ca_file: %s, state_dir: %s}
outputs: [{name: out, type: file, path: %s}]
`, srv.URL, ca, filepath.Join(dir, "state"), out))
	os.Setenv("E2E_DT_PRIVATE", "e2e-private-token-secret")
	defer os.Unsetenv("E2E_DT_PRIVATE")
	p := startRelay(t, "run", "-c", cfg)
	waitFor(t, "three polls of each endpoint", func() bool { return polls.Load() >= 6 })
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	b, _ := os.ReadFile(out)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("forwarded %d events over %d polls, want the 3 distinct ones once:\n%s", len(lines), polls.Load(), b)
	}
	for _, want := range []string{`"pbid":101`, `"pbid":102`, `"id":"a1b2"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("output lacks the event with %s", want)
		}
	}
	if unsigned.Load() > 0 {
		t.Errorf("%d requests without a signature", unsigned.Load())
	}
	if strings.Contains(p.stderr.String(), "e2e-private-token-secret") {
		t.Fatal("the private token appears in the logs")
	}
	// The poller's one source is its instance (issue 15).
	if news := logLines(t, p.stderr.String(), "new source"); len(news) != 1 || news[0]["source"] != srv.URL || news[0]["input"] != "cloud" {
		t.Errorf("new source lines = %v, want one for %s", news, srv.URL)
	}
}
