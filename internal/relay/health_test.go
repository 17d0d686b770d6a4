package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/config"
	"github.com/dtrelay/dtrelay/internal/intaketest"
)

// startRelayDoc starts a relay on the whole configuration doc and stops it
// when the test ends.
func startRelayDoc(t *testing.T, doc string) *Relay {
	t.Helper()
	cfg, _, err := config.Parse([]byte(doc), "health.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Start(cfg, metrics.NewSet(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r.Stop(ctx)
	})
	return r
}

// check GETs path on r's metrics listener and returns the status and the
// decoded body.
func check(t *testing.T, r *Relay, path string) (int, healthBody) {
	t.Helper()
	resp, err := http.Get("http://" + r.MetricsAddr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var b healthBody
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatalf("%s: not JSON (%v): %q", path, err, raw)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: Content-Type %q", path, ct)
	}
	if (resp.StatusCode == 200) != (b.Status == "ok" && len(b.Reasons) == 0) {
		t.Fatalf("%s: %d with %s", path, resp.StatusCode, raw)
	}
	return resp.StatusCode, b
}

// waitCheck polls path until it answers code, for up to 10s, and returns
// the last body.
func waitCheck(t *testing.T, r *Relay, path string, code int, what string) healthBody {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, b := check(t, r, path)
		if got == code {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s still answers %d %+v, want %d", what, path, got, b, code)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sendAlerts(t *testing.T, addr string, from, n, size int) {
	t.Helper()
	if err := writeAlerts(addr, from, n, size); err != nil {
		t.Fatal(err)
	}
}

// writeAlerts sends alerts from..from+n-1 of size bytes over one
// connection to addr.
func writeAlerts(addr string, from, n, size int) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	for i := from; i < from+n; i++ {
		if _, err := fmt.Fprintf(c, "<165>Aug  5 03:34:46 dt-master darktrace %s\n", payload(i, size)); err != nil {
			return err
		}
	}
	return nil
}

// TestReadyzOutputFailing: ready with no alert at all, even with the
// intake down (nothing to deliver is no failure); 503 naming the output
// once it has failed for longer than unready_after; ready again once the
// intake takes the events. Liveness holds throughout.
func TestReadyzOutputFailing(t *testing.T) {
	const key = "health-intake-key-0123456789"
	in := intaketest.NewSekoiaHTTP(t, key)
	in.SetDown(true)
	r := startRelayDoc(t, fmt.Sprintf(`
inputs: [{name: dt, protocol: tcp, address: "127.0.0.1:0"}]
outputs:
  - {name: sekoia, type: sekoia-http, url: "%s", ca_file: %s, intake_key: %s, batch: {max_wait: 10ms}}
metrics: {address: "127.0.0.1:0", unready_after: 300ms}
`, in.URL(), in.CAFile(), key))
	for _, p := range []string{"/readyz", "/healthz"} {
		if code, b := check(t, r, p); code != 200 || b.Status != "ok" {
			t.Fatalf("before any alert: %s %d %+v", p, code, b)
		}
	}
	sendAlerts(t, r.Addrs()[0].String(), 0, 5, 500)
	b := waitCheck(t, r, "/readyz", 503, "an output failing for longer than unready_after")
	if len(b.Reasons) != 1 || b.Reasons[0].Reason != "output_failing" || b.Reasons[0].Output != "sekoia" ||
		b.Reasons[0].For < 0.3 || !strings.Contains(b.Reasons[0].Detail, "unready_after 300ms") {
		t.Fatalf("readyz reasons %+v", b.Reasons)
	}
	if code, b := check(t, r, "/healthz"); code != 200 {
		t.Fatalf("a failing output is not a dead relay: healthz %d %+v", code, b)
	}
	in.SetDown(false)
	waitCheck(t, r, "/readyz", 200, "the intake back")
	if !in.WaitEvents(5, 10*time.Second) {
		t.Fatalf("intake got %d of 5", in.Count())
	}
}

// TestReadyzSpoolFull: with when_full: block, an output down and the spool
// full, the input waits for room and readyz says spool_full; once the
// intake is back the spool drains and the relay is ready again, every
// alert delivered.
func TestReadyzSpoolFull(t *testing.T) {
	const key = "health-intake-key-0123456789"
	in := intaketest.NewSekoiaHTTP(t, key)
	in.KeepEvents(false)
	in.SetDown(true)
	r := startRelayDoc(t, fmt.Sprintf(`
inputs: [{name: dt, protocol: tcp, address: "127.0.0.1:0", max_message_size: 4KiB}]
outputs:
  - {name: sekoia, type: sekoia-http, url: "%s", ca_file: %s, intake_key: %s, batch: {max_wait: 10ms}}
spool: {dir: %s, max_size: 1MiB, when_full: block}
metrics: {address: "127.0.0.1:0", unready_after: 1h}
`, in.URL(), in.CAFile(), key, t.TempDir()))
	const n = 2000 // 2000 alerts of 1000 bytes: twice the spool
	done := make(chan error, 1)
	go func() { done <- writeAlerts(r.Addrs()[0].String(), 0, n, 1000) }()
	b := waitCheck(t, r, "/readyz", 503, "the spool full")
	if len(b.Reasons) != 1 || b.Reasons[0].Reason != "spool_full" || b.Reasons[0].Blocked < 1 ||
		!strings.Contains(b.Reasons[0].Detail, "when_full: block") {
		t.Fatalf("readyz reasons %+v", b.Reasons)
	}
	if code, b := check(t, r, "/healthz"); code != 200 {
		t.Fatalf("an input held by backpressure is alive: healthz %d %+v", code, b)
	}
	in.SetDown(false)
	if !in.WaitEvents(n, 30*time.Second) {
		t.Fatalf("intake got %d of %d", in.Count(), n)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitCheck(t, r, "/readyz", 200, "the spool drained")
}

// TestHealthzInputStopped: an input whose listener ended by itself (not by
// Stop) fails liveness, and readiness with it.
func TestHealthzInputStopped(t *testing.T) {
	r := startRelayDoc(t, `
inputs:
  - {name: dt, protocol: tcp, address: "127.0.0.1:0"}
  - {name: dt-udp, protocol: udp, address: "127.0.0.1:0"}
outputs: [{name: out, type: file, path: `+filepath.Join(t.TempDir(), "out")+`}]
metrics: {address: "127.0.0.1:0"}
`)
	waitCheck(t, r, "/healthz", 200, "a running relay")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.listeners[1].Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		b := waitCheck(t, r, p, 503, "an input stopped")
		if len(b.Reasons) != 1 || b.Reasons[0].Reason != "input_stopped" || b.Reasons[0].Input != "dt-udp" {
			t.Fatalf("%s reasons %+v", p, b.Reasons)
		}
	}
}

// TestReadyzDraining: after BeginShutdown readyz says draining while the
// inputs still accept and deliver; liveness holds, also during Stop.
func TestReadyzDraining(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.ndjson")
	r := startRelayDoc(t, `
inputs: [{name: dt, protocol: tcp, address: "127.0.0.1:0"}]
outputs: [{name: out, type: file, path: `+out+`}]
metrics: {address: "127.0.0.1:0"}
`)
	waitCheck(t, r, "/readyz", 200, "a running relay")
	r.BeginShutdown(context.Background(), 0)
	b := waitCheck(t, r, "/readyz", 503, "draining")
	if len(b.Reasons) != 1 || b.Reasons[0].Reason != "draining" {
		t.Fatalf("readyz reasons %+v", b.Reasons)
	}
	if code, _ := check(t, r, "/healthz"); code != 200 {
		t.Fatalf("healthz %d while draining", code)
	}
	sendAlerts(t, r.Addrs()[0].String(), 0, 3, 200) // a new connection, still accepted
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(out)
		if strings.Count(string(data), "\n") == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the output has %q, want 3 alerts", data)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// During Stop the inputs close on purpose: still alive.
	r.health.stopping.Store(true)
	for _, l := range r.listeners {
		l.Stop(context.Background())
	}
	if code, b := check(t, r, "/healthz"); code != 200 {
		t.Fatalf("healthz %d %+v while stopping", code, b)
	}
}
