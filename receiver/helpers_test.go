package receiver

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/internal/pki"
)

// recPool is a SinkPool whose sinks append copies of every frame to one
// shared list. While blocked is set, Frame waits until it is cleared (or
// the pool is closed), as a full pipeline would.
type recPool struct {
	mu      sync.Mutex
	frames  [][]byte
	count   atomic.Int64
	keep    bool // keep frame copies (otherwise count only)
	flushes atomic.Int64

	blockMu sync.Mutex
	gate    chan struct{} // non-nil while blocked
	waiting atomic.Int64  // sinks currently blocked
}

func newRecPool(keep bool) *recPool { return &recPool{keep: keep} }

func (p *recPool) Get() FrameSink { return recSink{p} }
func (p *recPool) Put(FrameSink)  {}

type recSink struct{ p *recPool }

func (s recSink) Frame(b []byte) {
	p := s.p
	p.blockMu.Lock()
	g := p.gate
	p.blockMu.Unlock()
	if g != nil {
		p.waiting.Add(1)
		<-g
		p.waiting.Add(-1)
	}
	if p.keep {
		p.mu.Lock()
		p.frames = append(p.frames, bytes.Clone(b))
		p.mu.Unlock()
	}
	p.count.Add(1)
}

func (s recSink) Flush() { s.p.flushes.Add(1) }

func (p *recPool) block() {
	p.blockMu.Lock()
	p.gate = make(chan struct{})
	p.blockMu.Unlock()
}

func (p *recPool) unblock() {
	p.blockMu.Lock()
	if p.gate != nil {
		close(p.gate)
		p.gate = nil
	}
	p.blockMu.Unlock()
}

func (p *recPool) snapshot() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.frames...)
}

// waitFor polls cond every few milliseconds until it holds or timeout
// passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func testLogger(t testing.TB) zerolog.Logger {
	if testing.Verbose() {
		return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
	}
	return zerolog.Nop()
}

// startInput starts cfg (address defaulting to 127.0.0.1:0) and stops it
// when the test ends.
func startInput(t testing.TB, cfg Config, pool SinkPool) (*Listener, *Metrics) {
	t.Helper()
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1:0"
	}
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	if cfg.EventLoops == 0 {
		cfg.EventLoops = 2
	}
	m := NewMetrics(metrics.NewSet(), cfg.Name)
	l, err := Start(cfg, pool, m, testLogger(t))
	if err != nil {
		t.Fatalf("Start(%s): %v", cfg.Protocol, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := l.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return l, m
}

// dial connects to l; for tls inputs it completes a handshake trusting pki.
func dial(t testing.TB, l *Listener, pki *testPKI, clientCert bool) net.Conn {
	t.Helper()
	switch l.cfg.Protocol {
	case ProtocolTLS:
		cfg := pki.clientConfig(clientCert)
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", l.Addr().String(), cfg)
		if err != nil {
			t.Fatalf("dial tls: %v", err)
		}
		return c
	case ProtocolUDP:
		c, err := net.Dial("udp", l.Addr().String())
		if err != nil {
			t.Fatalf("dial udp: %v", err)
		}
		return c
	}
	c, err := net.DialTimeout("tcp", l.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial tcp: %v", err)
	}
	return c
}

// waitClosedByPeer reads from c until the server closes it (EOF or reset).
func waitClosedByPeer(t testing.TB, c net.Conn, timeout time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	var b [64]byte
	for {
		_, err := c.Read(b[:])
		if err == nil {
			continue
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("connection still open after %v", timeout)
		}
		return
	}
}

// stillOpen reports whether the server keeps c open for d.
func stillOpen(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	var b [1]byte
	_, err := c.Read(b[:])
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// testPKI is a throwaway CA with a server and a client certificate.
type testPKI struct {
	pool   *x509.CertPool
	server tls.Certificate
	client tls.Certificate
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	ca, err := pki.NewCA("dtrelay test CA")
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{pool: ca.Pool}
	if p.server, err = ca.Issue(pki.Server, pki.Loopback...); err != nil {
		t.Fatal(err)
	}
	if p.client, err = ca.Issue(pki.Client, "dtrelay client"); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *testPKI) serverConfig(mTLS bool) *tls.Config {
	c := &tls.Config{Certificates: []tls.Certificate{p.server}}
	if mTLS {
		c.ClientCAs = p.pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c
}

func (p *testPKI) clientConfig(withCert bool) *tls.Config {
	c := &tls.Config{RootCAs: p.pool, ServerName: "127.0.0.1"}
	if withCert {
		c.Certificates = []tls.Certificate{p.client}
	}
	return c
}

// sampleDir is the shared folder of real Darktrace samples, next to the
// checkout (DESIGN.md §7); tests using it skip when it is absent.
const sampleDir = "../../shared/testdata/darktrace-samples"

func needSamples(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(sampleDir); err != nil {
		t.Skipf("real samples not available (%s): %v", sampleDir, err)
	}
}
