package receiver

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/internal/logtest"
)

// startLogged starts cfg like startInput, logging into the returned buffer.
func startLogged(t *testing.T, cfg Config, pool SinkPool) (*Listener, *Metrics, *logtest.Buffer) {
	t.Helper()
	cfg.Address, cfg.Name, cfg.EventLoops = "127.0.0.1:0", "lb", 2
	logs := &logtest.Buffer{}
	m := NewMetrics(metrics.NewSet(), cfg.Name)
	l, err := Start(cfg, pool, m, zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopInput(t, l) })
	return l, m, logs
}

// proxySend dials l from 127.0.0.1, writes header, then (tls) handshakes,
// and writes line. It returns the connection, or nil when the server closed
// it before the line could be sent.
func proxySend(t *testing.T, l *Listener, p *testPKI, header []byte, line string) net.Conn {
	t.Helper()
	raw, err := net.DialTimeout("tcp", l.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var c net.Conn = raw
	if l.cfg.Protocol == ProtocolTLS {
		if _, err := raw.Write(header); err != nil {
			raw.Close()
			return nil
		}
		tc := tls.Client(raw, p.clientConfig(false))
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			raw.Close()
			return nil
		}
		_ = tc.SetDeadline(time.Time{})
		c, header = tc, nil
	}
	if _, err := c.Write(append(header, line+"\n"...)); err != nil {
		c.Close()
		return nil
	}
	return c
}

// claimHeaders are a v1 and a v2 PROXY header claiming 10.1.2.3 as the
// source, as in issue 9.
func claimHeaders(l *Listener, src string) map[string][]byte {
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	s := netip.AddrPortFrom(netip.MustParseAddr(src), 5555)
	d := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
	return map[string][]byte{
		"v1": fmt.Appendf(nil, "PROXY TCP4 %s 127.0.0.1 5555 %d\r\n", src, port),
		"v2": proxyV2(1, 0x11, s, d, 0),
	}
}

const issueAlert = `<165>Aug  5 03:34:46 dt darktrace {"pbid":2}`

// TestProxyUntrustedPeer is issue 9's reproduction: with allow 10.0.0.0/8,
// a client on 127.0.0.1 sending a PROXY header that claims 10.1.2.3 was
// forwarded. 127.0.0.1 is not in trusted_proxies: the connection must be
// refused before anything is read (no PROXY parse error, no frame), on tcp
// and tls, for v1 and v2 headers.
func TestProxyUntrustedPeer(t *testing.T) {
	p := newTestPKI(t)
	for _, proto := range []string{ProtocolTCP, ProtocolTLS} {
		t.Run(proto, func(t *testing.T) {
			cfg := Config{Protocol: proto, TLS: p.serverConfig(false), ProxyProtocol: true,
				Allow:          []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
				TrustedProxies: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}
			pool := newRecPool(true)
			l, m, logs := startLogged(t, cfg, pool)
			for name, h := range claimHeaders(l, "10.1.2.3") {
				if c := proxySend(t, l, p, h, issueAlert); c != nil {
					waitClosedByPeer(t, c, 5*time.Second)
					c.Close()
				}
				t.Logf("%s header refused", name)
			}
			// A peer that sends nothing is refused at once too: nothing
			// waits for a header (handshake_timeout is 5s).
			silent, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			waitClosedByPeer(t, silent, 5*time.Second)
			silent.Close()
			if el := time.Since(start); el > 2*time.Second {
				t.Fatalf("silent untrusted peer closed after %v", el)
			}
			waitFor(t, 5*time.Second, "3 untrusted_proxy rejections", func() bool { return m.rejectUntrusted.Get() == 3 })
			if n := pool.count.Load(); n != 0 {
				t.Fatalf("%d frames forwarded from an untrusted proxy: %q", n, pool.snapshot())
			}
			if m.proxyErrors.Get() != 0 || m.rejectAllow.Get() != 0 || m.bytes.Get() != 0 {
				t.Fatalf("something was read: proxy errors %d, allow %d, bytes %d",
					m.proxyErrors.Get(), m.rejectAllow.Get(), m.bytes.Get())
			}
			// Counted before it is logged: wait for the line.
			waitFor(t, 5*time.Second, "the rejection logged with the peer", func() bool {
				return strings.Contains(logs.String(), `"peer":"127.0.0.1:`) && strings.Contains(logs.String(), "trusted_proxies")
			})
		})
	}
}

// TestProxyTrustedPeer: from a trusted proxy, allow applies to the source
// the header carries, a rejection is logged with the real peer and the
// claimed source, and a LOCAL header (v2 LOCAL, v1 UNKNOWN: HAProxy's
// send-proxy-v2 health checks) is accepted whatever allow says, counted
// proxy_local and not logged above debug (issue 10 item 14: 136 warnings
// in 40 s hid real ones).
func TestProxyTrustedPeer(t *testing.T) {
	p := newTestPKI(t)
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	for _, proto := range []string{ProtocolTCP, ProtocolTLS} {
		t.Run(proto, func(t *testing.T) {
			cfg := Config{Protocol: proto, TLS: p.serverConfig(false), ProxyProtocol: true, TrustedProxies: trusted,
				Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
			pool := newRecPool(true)
			l, m, logs := startLogged(t, cfg, pool)
			for name, h := range claimHeaders(l, "10.1.2.3") {
				c := proxySend(t, l, p, h, issueAlert+" "+name)
				if c == nil {
					t.Fatalf("%s: connection from a trusted proxy closed", name)
				}
				defer c.Close()
			}
			waitFor(t, 5*time.Second, "both frames", func() bool { return pool.count.Load() == 2 })

			// A source outside allow, through the trusted proxy.
			for _, h := range claimHeaders(l, "192.0.2.77") {
				if c := proxySend(t, l, p, h, issueAlert); c != nil {
					waitClosedByPeer(t, c, 5*time.Second)
					c.Close()
				}
			}
			waitFor(t, 5*time.Second, "2 allow rejections", func() bool { return m.rejectAllow.Get() == 2 })
			waitFor(t, 5*time.Second, "the allow rejection logged with peer and claimed source", func() bool {
				out := logs.String()
				return strings.Contains(out, `"peer":"127.0.0.1:`) && strings.Contains(out, `"source":"192.0.2.77:5555"`)
			})

			// LOCAL: no source; the proxy (127.0.0.1, not in allow) speaks
			// for itself. Accepted, and what it sends is delivered.
			warnsBefore := strings.Count(logs.String(), `"level":"warn"`)
			locals := [][]byte{proxyV2(0, 0x00, srcV4, dstV4, 0), []byte("PROXY UNKNOWN\r\n")}
			for i := range 20 {
				c := proxySend(t, l, p, locals[i%2], "health")
				if c == nil {
					t.Fatal("LOCAL connection from a trusted proxy refused")
				}
				c.Close()
			}
			waitFor(t, 5*time.Second, "20 LOCAL connections counted, their lines delivered", func() bool {
				return m.proxyLocal.Get() == 20 && pool.count.Load() == 22
			})
			if m.rejectAllow.Get() != 2 || m.rejectUntrusted.Get() != 0 || m.proxyErrors.Get() != 0 {
				t.Fatalf("allow %d, untrusted %d, proxy errors %d", m.rejectAllow.Get(), m.rejectUntrusted.Get(), m.proxyErrors.Get())
			}
			if n := strings.Count(logs.String(), `"level":"warn"`); n != warnsBefore {
				t.Fatalf("LOCAL connections logged %d warnings:\n%s", n-warnsBefore, logs.String())
			}
		})
	}
}

func TestProxyRequiresTrustedProxies(t *testing.T) {
	p := newTestPKI(t)
	for _, proto := range []string{ProtocolTCP, ProtocolTLS} {
		cfg := Config{Protocol: proto, Address: "127.0.0.1:0", ProxyProtocol: true, TLS: p.serverConfig(false)}
		if _, err := Start(cfg, newRecPool(false), NewMetrics(metrics.NewSet(), "x"), zerolog.Nop()); err != ErrNoTrustedProxies {
			t.Fatalf("%s: Start = %v, want ErrNoTrustedProxies", proto, err)
		}
	}
}

func stopInput(t testing.TB, l *Listener) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
}
