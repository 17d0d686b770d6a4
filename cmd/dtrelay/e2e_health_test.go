package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/internal/intaketest"
)

// health is the body of /healthz and /readyz.
type health struct {
	Status  string `json:"status"`
	Reasons []struct {
		Reason string  `json:"reason"`
		Output string  `json:"output"`
		For    float64 `json:"for_seconds"`
		Detail string  `json:"detail"`
	} `json:"reasons"`
}

// getHealth GETs url and returns its status and body; status 0 when the
// listener does not answer.
func getHealth(t *testing.T, url string) (int, health) {
	t.Helper()
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, health{}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var h health
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatalf("%s: not JSON: %q", url, raw)
	}
	return resp.StatusCode, h
}

func waitHealth(t *testing.T, url string, code int) health {
	t.Helper()
	var h health
	waitFor(t, fmt.Sprintf("%s answering %d", url, code), func() bool {
		var got int
		got, h = getHealth(t, url)
		return got == code
	})
	return h
}

func lineCount(file string) int {
	b, _ := os.ReadFile(file)
	return strings.Count(string(b), "\n")
}

// TestShutdownDelay: on SIGTERM /readyz turns 503 (draining) at once, while
// the input still accepts new connections and delivers their alerts for
// shutdown_delay; then the relay drains and exits 0 with everything
// delivered.
func TestShutdownDelay(t *testing.T) {
	dir := t.TempDir()
	port, mport := freePort(t), freePort(t)
	out := filepath.Join(dir, "out.ndjson")
	cfg := writeFile(t, dir, "c.yaml", fmt.Sprintf(`
inputs: [{name: dt, protocol: tcp, address: "127.0.0.1:%d"}]
outputs: [{name: out, type: file, path: %s}]
metrics: {address: "127.0.0.1:%d"}
shutdown_delay: 4s
shutdown_timeout: 5s
`, port, out, mport))
	p := startRelay(t, "run", "-c", cfg)
	ready, live := fmt.Sprintf("http://127.0.0.1:%d/readyz", mport), fmt.Sprintf("http://127.0.0.1:%d/healthz", mport)
	if h := waitHealth(t, ready, 200); h.Status != "ok" {
		t.Fatalf("readyz %+v", h)
	}
	if code, h := getHealth(t, live); code != 200 || h.Status != "ok" {
		t.Fatalf("healthz %d %+v", code, h)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	payloads := alerts(20)
	sendLines(t, addr, payloads[:10])
	waitFor(t, "10 alerts in the output", func() bool { return lineCount(out) == 10 })

	sigAt := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	h := waitHealth(t, ready, 503)
	if len(h.Reasons) != 1 || h.Reasons[0].Reason != "draining" {
		t.Fatalf("readyz after SIGTERM: %+v", h)
	}
	if code, _ := getHealth(t, live); code != 200 {
		t.Fatalf("healthz %d while draining", code)
	}
	// Within the delay: a new connection is accepted and delivered.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("the input refuses connections during shutdown_delay (%v after SIGTERM): %v", time.Since(sigAt), err)
	}
	writeLines(t, c, payloads[10:])
	c.Close()
	waitFor(t, "20 alerts in the output", func() bool { return lineCount(out) == 20 })
	if code := p.wait(t); code != 0 { // no second signal: that cuts the delay short
		t.Fatalf("exit code %d", code)
	}
	if took := time.Since(sigAt); took < 4*time.Second {
		t.Fatalf("stopped %v after SIGTERM, before shutdown_delay ended", took)
	}
	logs := p.stderr.String()
	for _, want := range []string{`"shutdown_delay":4000`, "not ready (/readyz 503)", `"message":"stopped"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q", want)
		}
	}
	if strings.Contains(logs, "cut short") {
		t.Error("the delay was cut short without a second signal")
	}
	if got, want := sortedLines(string(mustRead(t, out))), sortedLines(strings.Join(payloads, "\n")); got != want {
		t.Fatal("the output is not the 20 payloads")
	}
}

// TestShutdownDelayCutShort: a second signal during shutdown_delay starts
// the drain at once.
func TestShutdownDelayCutShort(t *testing.T) {
	dir := t.TempDir()
	port, mport := freePort(t), freePort(t)
	cfg := writeFile(t, dir, "c.yaml", fmt.Sprintf(`
inputs: [{name: dt, protocol: tcp, address: "127.0.0.1:%d"}]
outputs: [{name: out, type: file, path: "-"}]
metrics: {address: "127.0.0.1:%d"}
shutdown_delay: 1h
`, port, mport))
	p := startRelay(t, "run", "-c", cfg)
	ready := fmt.Sprintf("http://127.0.0.1:%d/readyz", mport)
	waitHealth(t, ready, 200)
	p.cmd.Process.Signal(syscall.SIGTERM)
	waitHealth(t, ready, 503)
	if code := p.stop(t); code != 0 { // the second SIGTERM
		t.Fatalf("exit code %d", code)
	}
	if !strings.Contains(p.stderr.String(), "shutdown_delay cut short") {
		t.Errorf("logs lack the cut")
	}
}

// wait waits up to 15s for the process to exit by itself and returns its
// exit code.
func (p *relayProc) wait(t *testing.T) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-done
		t.Fatal("dtrelay did not exit within 15s")
	}
	return p.cmd.ProcessState.ExitCode()
}

func mustRead(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReadyzOutputFailingBinary: the binary's /readyz is 200 with no alert
// (the intake being down does not matter yet), 503 naming the output once
// it has failed for unready_after, 200 again when the intake is back.
func TestReadyzOutputFailingBinary(t *testing.T) {
	dir := t.TempDir()
	in := intaketest.NewSekoiaHTTP(t, intakeKey)
	in.SetDown(true)
	port, mport := freePort(t), freePort(t)
	cfg := writeFile(t, dir, "c.yaml", fmt.Sprintf(`
inputs: [{name: dt, protocol: tcp, address: "127.0.0.1:%d"}]
outputs:
  - {name: sekoia, type: sekoia-http, url: "%s", ca_file: %s, intake_key: %s, batch: {max_wait: 10ms}}
metrics: {address: "127.0.0.1:%d", unready_after: 500ms}
`, port, in.URL(), in.CAFile(), intakeKey, mport))
	p := startRelay(t, "run", "-c", cfg)
	ready := fmt.Sprintf("http://127.0.0.1:%d/readyz", mport)
	waitHealth(t, ready, 200)
	sendLines(t, fmt.Sprintf("127.0.0.1:%d", port), alerts(3))
	h := waitHealth(t, ready, 503)
	if len(h.Reasons) != 1 || h.Reasons[0].Reason != "output_failing" || h.Reasons[0].Output != "sekoia" || h.Reasons[0].For < 0.5 {
		t.Fatalf("readyz %+v", h)
	}
	in.SetDown(false)
	waitHealth(t, ready, 200)
	if !in.WaitEvents(3, 10*time.Second) {
		t.Fatalf("intake got %d of 3", in.Count())
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// TestExitCodes: dtrelay run exits 0 on a clean stop, 1 when events were
// undelivered at stop (or it cannot start), 2 on a configuration error.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	t.Run("clean stop 0", func(t *testing.T) {
		port := freePort(t)
		out := filepath.Join(dir, "clean.ndjson")
		cfg := writeFile(t, dir, "clean.yaml", fmt.Sprintf(`
inputs: [{name: dt, protocol: tcp, address: "127.0.0.1:%d"}]
outputs: [{name: out, type: file, path: %s}]
`, port, out))
		p := startRelay(t, "run", "-c", cfg)
		sendLines(t, fmt.Sprintf("127.0.0.1:%d", port), alerts(5))
		waitFor(t, "5 alerts in the output", func() bool { return lineCount(out) == 5 })
		if code := p.stop(t); code != 0 {
			t.Fatalf("exit code %d, want 0", code)
		}
	})
	t.Run("undelivered 1", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := l.Addr().String() // nothing listens there
		l.Close()
		port, mport := freePort(t), freePort(t)
		cfg := writeFile(t, dir, "dead.yaml", fmt.Sprintf(`
inputs: [{name: dt, protocol: tcp, address: "127.0.0.1:%d"}]
outputs: [{name: out, type: syslog, address: "%s", tls: false, format: rfc5424}]
metrics: {address: "127.0.0.1:%d"}
shutdown_timeout: 300ms
`, port, dead, mport))
		p := startRelay(t, "run", "-c", cfg)
		sendLines(t, fmt.Sprintf("127.0.0.1:%d", port), alerts(4))
		waitFor(t, "4 alerts read", func() bool {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", mport))
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return strings.Contains(string(b), `dtrelay_output_queue_bytes{output="out"}`) &&
				strings.Contains(string(b), `dtrelay_input_alerts_total{input="dt",kind="test"} 1`) &&
				strings.Contains(string(b), `dtrelay_input_alerts_total{input="dt",kind="model_breach"} 1`)
		})
		if code := p.stop(t); code != 1 {
			t.Fatalf("exit code %d, want 1", code)
		}
		if !strings.Contains(p.stderr.String(), `"undelivered":4`) {
			t.Errorf("the log does not count 4 undelivered:\n%s", p.stderr.String())
		}
	})
	t.Run("cannot start 1", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		cfg := writeFile(t, dir, "taken.yaml", fmt.Sprintf(`
inputs: [{name: dt, protocol: tcp, address: "%s"}]
outputs: [{name: out, type: file, path: "-"}]
`, l.Addr()))
		if code, _, errs := runBin(t, "run", "-c", cfg); code != 1 || !strings.Contains(errs, "cannot start") {
			t.Fatalf("exit code %d, want 1:\n%s", code, errs)
		}
	})
	for _, tc := range []struct{ name, doc, want string }{
		{"unknown key 2", "inputs: [{name: dt, protocol: tcp, address: \"127.0.0.1:0\"}]\noutputs: [{name: out, type: file, path: \"-\"}]\nshutdown_delai: 5s\n",
			`c2.yaml:3: shutdown_delai: unknown key (did you mean shutdown_delay?)`},
		{"missing secret file 2", "inputs: [{name: dt, protocol: tcp, address: \"127.0.0.1:0\"}]\noutputs:\n  - name: s\n    type: sekoia-http\n    intake_key: ${file:absent-key}\n",
			`c2.yaml:5: outputs[0].intake_key: cannot read secret file: open ` + filepath.Join(dir, "absent-key") + `: no such file or directory`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeFile(t, dir, "c2.yaml", tc.doc)
			code, _, errs := runBin(t, "run", "-c", cfg)
			if code != 2 || !strings.Contains(errs, tc.want) {
				t.Fatalf("exit code %d, want 2 and %q:\n%s", code, tc.want, errs)
			}
		})
	}
	t.Run("unreadable config 2", func(t *testing.T) {
		if code, _, errs := runBin(t, "run", "-c", filepath.Join(dir, "absent.yaml")); code != 2 || !strings.Contains(errs, "cannot read config") {
			t.Fatalf("exit code %d, want 2:\n%s", code, errs)
		}
	})
}

// TestSecretFilesEndToEnd: the relay delivers with an intake key read from
// a systemd credential (CREDENTIALS_DIRECTORY), which the intake checks;
// check warns about a ${file:} secret its group can read, and neither
// shows a key.
func TestSecretFilesEndToEnd(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "credentials")
	if err := os.Mkdir(creds, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, creds, "sekoia-key", intakeKey+"\n")
	keyFile := writeFile(t, dir, "group-key", intakeKey+"\n")
	if err := os.Chmod(keyFile, 0o640); err != nil {
		t.Fatal(err)
	}
	in := intaketest.NewSekoiaHTTP(t, intakeKey)
	port := freePort(t)
	cfg := writeFile(t, dir, "c.yaml", fmt.Sprintf(`
inputs: [{name: dt, protocol: tcp, address: "127.0.0.1:%d"}]
outputs:
  - {name: sekoia, type: sekoia-http, url: "%s", ca_file: %s, intake_key: "${credential:sekoia-key}", batch: {max_wait: 10ms}}
  - name: archive
    type: http
    url: "%s/archive"
    ca_file: %s
    headers: {Authorization: "Bearer ${file:group-key}"}
`, port, in.URL(), in.CAFile(), in.URL(), in.CAFile()))

	code, out, errs := runBin(t, "check", "-c", cfg)
	if code != 1 || !strings.Contains(errs, "CREDENTIALS_DIRECTORY is not set") {
		t.Fatalf("check without CREDENTIALS_DIRECTORY: exit %d\n%s%s", code, out, errs)
	}
	t.Setenv("CREDENTIALS_DIRECTORY", creds)
	code, out, errs = runBin(t, "check", "-c", cfg)
	wantWarn := fmt.Sprintf("warning: %s:9: outputs[1].headers.Authorization: secret file %q has mode 0640: the secret is open to group or others", cfg, keyFile)
	if code != 0 || !strings.Contains(errs, wantWarn) {
		t.Fatalf("check: exit %d, want 0 and %q\n%s%s", code, wantWarn, out, errs)
	}
	p := startRelay(t, "run", "-c", cfg)
	sendLines(t, fmt.Sprintf("127.0.0.1:%d", port), alerts(4))
	if !in.WaitEvents(8, 10*time.Second) { // 4 to each output
		t.Fatalf("intake got %d of 8 events", in.Count())
	}
	if probs := in.Problems(); len(probs) > 0 {
		t.Fatalf("intake problems (a wrong key?): %q", probs)
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	for what, s := range map[string]string{"check stdout": out, "check stderr": errs, "run stderr": p.stderr.String()} {
		if strings.Contains(s, "0123456789abcdef") {
			t.Errorf("%s shows the key:\n%s", what, s)
		}
	}
}
