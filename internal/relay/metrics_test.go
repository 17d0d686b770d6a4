package relay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/internal/logtest"
)

// TestMetricsPprofOptIn: /debug/pprof/ answers 404 unless metrics.pprof is
// on; /metrics and /healthz answer either way.
func TestMetricsPprofOptIn(t *testing.T) {
	for _, on := range []bool{false, true} {
		out := filepath.Join(t.TempDir(), "out.ndjson")
		r := startRelay(t, fmt.Sprintf("  - {name: out, type: file, path: %s}\nmetrics: {address: \"127.0.0.1:0\", pprof: %v}\n", out, on))
		base := "http://" + r.MetricsAddr().String()
		want := map[string]int{"/metrics": 200, "/healthz": 200, "/debug/pprof/": 404, "/debug/pprof/symbol": 404, "/debug/pprof/heap": 404}
		if on {
			want["/debug/pprof/"], want["/debug/pprof/symbol"], want["/debug/pprof/heap"] = 200, 200, 200
		}
		for path, code := range want {
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != code {
				t.Errorf("pprof %v: GET %s = %d, want %d", on, path, resp.StatusCode, code)
			}
		}
		r.Stop(t.Context())
	}
}

// testLimits are short limits for the listener tests.
func testLimits(maxConns int, idle time.Duration) metricsLimits {
	return metricsLimits{MaxConns: maxConns, ReadHeaderTimeout: idle, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: idle, MaxHeaderBytes: 4 << 10}
}

// startMetricsServer serves the metrics handler within lim on a port-0
// loopback listener; the listener is returned to count its connections.
func startMetricsServer(t *testing.T, lim metricsLimits, log zerolog.Logger) *limitListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, ll := serveMetrics(ln, metricsHandler(metrics.NewSet(), false, noReasons, noReasons), lim, log)
	t.Cleanup(func() { srv.Close() })
	return ll
}

// client is one keep-alive HTTP/1.1 connection spoken by hand, so that the
// test decides when it is idle, and sees when the server closes it.
type client struct {
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{c: c, br: bufio.NewReader(c)}
}

// send writes a GET request for path.
func (c *client) send(t *testing.T, path string) {
	t.Helper()
	if _, err := fmt.Fprintf(c.c, "GET %s HTTP/1.1\r\nHost: relay\r\n\r\n", path); err != nil {
		t.Fatal(err)
	}
}

// answer reads one response within wait: its status, or the read error
// (a timeout when the server did not answer, io.EOF when it closed).
func (c *client) answer(wait time.Duration) (int, error) {
	c.c.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestMetricsConnectionCap opens more connections than the cap over real
// sockets: the server holds at most the cap open (so at most that many
// descriptors), the others are not served but wait in the backlog, and are
// served in turn when held ones close.
func TestMetricsConnectionCap(t *testing.T) {
	const capConns, extra = 4, 8
	ll := startMetricsServer(t, testLimits(capConns, 10*time.Second), zerolog.Nop())
	addr := ll.Addr().String()
	var held []*client
	for range capConns {
		c := dial(t, addr)
		c.send(t, "/healthz")
		if code, err := c.answer(5 * time.Second); code != 200 {
			t.Fatalf("held connection: %d, %v", code, err)
		}
		held = append(held, c) // now idle, kept alive
	}
	var waiting []*client
	for range extra {
		c := dial(t, addr) // the kernel completes the handshake: backlog
		c.send(t, "/healthz")
		waiting = append(waiting, c)
	}
	deadline := 300 * time.Millisecond
	for i, c := range waiting {
		if code, err := c.answer(deadline); !isTimeout(err) {
			t.Fatalf("connection %d over the cap was served: %d, %v", capConns+i, code, err)
		}
		deadline = time.Millisecond // the first wait covered them all
	}
	if n := ll.open(); n != capConns {
		t.Fatalf("%d connections open, want the cap %d", n, capConns)
	}
	// Two held ones go: two waiting ones are taken, the first in line.
	held[0].c.Close()
	held[1].c.Close()
	for i, c := range waiting[:2] {
		if code, err := c.answer(5 * time.Second); code != 200 {
			t.Fatalf("waiting connection %d not served after a slot freed: %d, %v", i, code, err)
		}
	}
	if code, err := waiting[2].answer(200 * time.Millisecond); !isTimeout(err) {
		t.Fatalf("a third waiting connection was served with two slots freed: %d, %v", code, err)
	}
	if n := ll.open(); n > capConns {
		t.Fatalf("%d connections open, over the cap %d", n, capConns)
	}
}

// TestMetricsIdleReaped: keep-alive connections left idle, and connections
// that never send a request, are closed by the server after IdleTimeout and
// ReadHeaderTimeout; the connection waiting behind them is then served.
func TestMetricsIdleReaped(t *testing.T) {
	const idle = 200 * time.Millisecond
	ll := startMetricsServer(t, testLimits(2, idle), zerolog.Nop())
	addr := ll.Addr().String()
	keepAlive := dial(t, addr)
	keepAlive.send(t, "/readyz")
	if code, err := keepAlive.answer(5 * time.Second); code != 200 {
		t.Fatalf("first request: %d, %v", code, err)
	}
	silent := dial(t, addr) // never sends a byte
	start := time.Now()
	waiting := dial(t, addr)
	waiting.send(t, "/healthz")
	for name, c := range map[string]*client{"idle keep-alive": keepAlive, "silent": silent} {
		if _, err := c.answer(5 * time.Second); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("%s connection: %v, want the server to close it", name, err)
		}
	}
	reaped := time.Since(start)
	if code, err := waiting.answer(5 * time.Second); code != 200 {
		t.Fatalf("waiting connection: %d, %v", code, err)
	}
	if reaped < idle/2 {
		t.Fatalf("connections closed after %v, before the %v timeout", reaped, idle)
	}
	t.Logf("idle and silent connections closed %v after the cap filled (timeouts %v)", reaped.Round(time.Millisecond), idle)
}

// emfileListener fails its first n Accepts with "too many open files", as
// a process out of descriptors does.
type emfileListener struct {
	net.Listener
	n atomic.Int32
}

func (l *emfileListener) Accept() (net.Conn, error) {
	if l.n.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestMetricsErrorLogIsJSON: the server's own error lines (here the Accept
// error of a process out of descriptors) come out as JSON log events, and
// the server carries on.
func TestMetricsErrorLogIsJSON(t *testing.T) {
	var logs logtest.Buffer
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	el := &emfileListener{Listener: ln}
	el.n.Store(3)
	srv, _ := serveMetrics(el, metricsHandler(metrics.NewSet(), false, noReasons, noReasons), testLimits(4, time.Second), zerolog.New(&logs))
	defer srv.Close()
	c := dial(t, ln.Addr().String())
	c.send(t, "/healthz")
	if code, err := c.answer(5 * time.Second); code != 200 {
		t.Fatalf("after Accept errors: %d, %v", code, err)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d log lines, want 3:\n%s", len(lines), logs.String())
	}
	for _, line := range lines {
		var ev struct{ Level, Component, Message string }
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("not a JSON log line: %q", line)
		}
		if ev.Level != "warn" || ev.Component != "metrics" || !strings.Contains(ev.Message, "Accept error") ||
			!strings.Contains(ev.Message, "too many open files") {
			t.Fatalf("log line %s", line)
		}
	}
}

func TestLogWriter(t *testing.T) {
	var b bytes.Buffer
	w := LogWriter(zerolog.New(&b), zerolog.ErrorLevel)
	fmt.Fprint(w, "ERROR: metrics: cannot read \"/proc/self/io\"\nsecond line\n")
	want := `{"level":"error","message":"ERROR: metrics: cannot read \"/proc/self/io\""}` + "\n" + `{"level":"error","message":"second line"}` + "\n"
	if b.String() != want {
		t.Fatalf("got %s", b.String())
	}
}

// noReasons is a health check that always passes.
func noReasons() []healthReason { return nil }
