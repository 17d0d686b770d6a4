package receiver

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// streamProtocols are the connection-oriented inputs with their configs.
func streamConfigs(t *testing.T) map[string]Config {
	pki := newTestPKI(t)
	return map[string]Config{
		ProtocolTCP: {Protocol: ProtocolTCP},
		ProtocolTLS: {Protocol: ProtocolTLS, TLS: pki.serverConfig(false)},
	}
}

func sendLine(t testing.TB, c net.Conn, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s + "\n")); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func TestMaxConnections(t *testing.T) {
	pki := newTestPKI(t)
	for name, cfg := range map[string]Config{
		ProtocolTCP: {Protocol: ProtocolTCP, MaxConnections: 2},
		ProtocolTLS: {Protocol: ProtocolTLS, TLS: pki.serverConfig(false), MaxConnections: 2},
	} {
		t.Run(name, func(t *testing.T) {
			pool := newRecPool(false)
			l, m := startInput(t, cfg, pool)
			c1, c2 := dial(t, l, pki, false), dial(t, l, pki, false)
			defer c1.Close()
			defer c2.Close()
			sendLine(t, c1, "one")
			sendLine(t, c2, "two")
			waitFor(t, 5*time.Second, "two frames", func() bool { return pool.count.Load() == 2 })

			// The third is closed at once (for TLS, before the handshake).
			raw, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			waitClosedByPeer(t, raw, 5*time.Second)
			raw.Close()
			waitFor(t, 5*time.Second, "max_connections rejection", func() bool { return m.rejectMax.Get() == 1 })
			if got := m.connections.Get(); got != 2 {
				t.Fatalf("connections gauge = %v, want 2", got)
			}

			// Closing one frees a slot.
			c1.Close()
			waitFor(t, 5*time.Second, "a free slot", func() bool { return m.connections.Get() == 1 })
			c3 := dial(t, l, pki, false)
			defer c3.Close()
			sendLine(t, c3, "three")
			waitFor(t, 5*time.Second, "third frame", func() bool { return pool.count.Load() == 3 })
			if m.rejectMax.Get() != 1 || m.connectionsTotal.Get() != 3 {
				t.Fatalf("rejected %d, connections_total %d; want 1, 3", m.rejectMax.Get(), m.connectionsTotal.Get())
			}
		})
	}
}

func TestAllow(t *testing.T) {
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	elsewhere := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	pki := newTestPKI(t)
	for _, proto := range []string{ProtocolTCP, ProtocolTLS, ProtocolUDP} {
		t.Run(proto, func(t *testing.T) {
			cfg := Config{Protocol: proto, TLS: pki.serverConfig(false)}
			cfg.Allow = elsewhere
			denyPool := newRecPool(false)
			ld, md := startInput(t, cfg, denyPool)
			cfg.Allow = loopback
			okPool := newRecPool(false)
			lo, mo := startInput(t, cfg, okPool)

			if proto == ProtocolUDP {
				for _, l := range []*Listener{ld, lo} {
					c := dial(t, l, nil, false)
					sendLine(t, c, "datagram")
					c.Close()
				}
			} else {
				raw, err := net.Dial("tcp", ld.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				_, _ = raw.Write([]byte("denied\n"))
				waitClosedByPeer(t, raw, 5*time.Second)
				raw.Close()
				c := dial(t, lo, pki, false)
				sendLine(t, c, "allowed")
				defer c.Close()
			}
			waitFor(t, 5*time.Second, "the allowed frame", func() bool { return okPool.count.Load() == 1 })
			waitFor(t, 5*time.Second, "the rejection", func() bool { return md.rejectAllow.Get() == 1 })
			if denyPool.count.Load() != 0 || mo.rejectAllow.Get() != 0 {
				t.Fatalf("denied input got %d frames; allowed input rejected %d", denyPool.count.Load(), mo.rejectAllow.Get())
			}
		})
	}
}

func TestGateAllowMapped(t *testing.T) {
	allow := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}
	for addr, want := range map[string]bool{
		"192.0.2.7": true, "::ffff:192.0.2.7": true, "192.0.3.1": false,
		"2001:db8::1": true, "2001:db9::1": false, "127.0.0.1": false,
	} {
		if got := allowedBy(allow, netip.MustParseAddr(addr)); got != want {
			t.Errorf("allowed(%s) = %v, want %v", addr, got, want)
		}
	}
	if !allowedBy(nil, netip.MustParseAddr("198.51.100.1")) {
		t.Error("an empty allow list must accept everyone")
	}
}

func TestIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	for name, cfg := range streamConfigs(t) {
		t.Run(name, func(t *testing.T) {
			cfg.IdleTimeout = idle
			pki := newTestPKI(t)
			if cfg.TLS != nil {
				cfg.TLS = pki.serverConfig(false)
			}
			pool := newRecPool(false)
			l, m := startInput(t, cfg, pool)

			// A silent connection is closed.
			silent := dial(t, l, pki, false)
			defer silent.Close()
			start := time.Now()
			waitClosedByPeer(t, silent, 5*time.Second)
			if el := time.Since(start); el < idle/2 {
				t.Fatalf("closed after %v, before the idle timeout %v", el, idle)
			}
			waitFor(t, 5*time.Second, "idle close counted", func() bool { return m.idleClosed.Get() == 1 })

			// A connection sending whole frames more often than the
			// timeout stays open past it.
			busy := dial(t, l, pki, false)
			defer busy.Close()
			for i := range 8 {
				sendLine(t, busy, "alive")
				if i == 7 {
					break
				}
				if !stillOpen(busy, idle/3) {
					t.Fatalf("busy connection closed after %d frames", i+1)
				}
			}
			waitFor(t, 5*time.Second, "8 frames", func() bool { return pool.count.Load() == 8 })
			busy.Close()
			waitFor(t, 5*time.Second, "busy connection gone", func() bool { return m.connections.Get() == 0 })
			if got := m.idleClosed.Get(); got != 1 {
				t.Fatalf("idle closes = %d, want 1 (the busy connection must not be one)", got)
			}

			// A connection trickling bytes of a frame that never ends is
			// closed although bytes keep arriving.
			stuck := dial(t, l, pki, false)
			defer stuck.Close()
			_, _ = stuck.Write([]byte("<165>partial frame that never ends"))
			closed := false
			for i := 0; i < 60 && !closed; i++ {
				if _, err := stuck.Write([]byte("x")); err != nil {
					closed = true
					break
				}
				closed = !stillOpen(stuck, idle/6)
			}
			if !closed {
				t.Fatal("connection stuck in a partial frame was not closed")
			}
			waitFor(t, 5*time.Second, "second idle close and truncated frame", func() bool {
				return m.idleClosed.Get() == 2 && m.truncated.Get() == 1
			})
		})
	}
}

// TestReuseAddr restarts an input on the same port while a client still
// holds a connection to the old one (its socket lingers in FIN_WAIT2 /
// TIME_WAIT): the new bind must succeed at once.
func TestReuseAddr(t *testing.T) {
	pki := newTestPKI(t)
	for name, cfg := range map[string]Config{
		ProtocolTCP: {Protocol: ProtocolTCP},
		ProtocolTLS: {Protocol: ProtocolTLS, TLS: pki.serverConfig(false)},
		ProtocolUDP: {Protocol: ProtocolUDP},
	} {
		t.Run(name, func(t *testing.T) {
			pool := newRecPool(false)
			l, _ := startInput(t, cfg, pool)
			c := dial(t, l, pki, false)
			defer c.Close() // held open across the restart
			sendLine(t, c, "before restart")
			waitFor(t, 5*time.Second, "first frame", func() bool { return pool.count.Load() == 1 })
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := l.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			cfg.Address = l.Addr().String()
			l2, _ := startInput(t, cfg, pool)
			c2 := dial(t, l2, pki, false)
			defer c2.Close()
			sendLine(t, c2, "after restart")
			waitFor(t, 5*time.Second, "frame after restart", func() bool { return pool.count.Load() == 2 })
		})
	}
}

func TestMutualTLS(t *testing.T) {
	pki := newTestPKI(t)
	pool := newRecPool(false)
	l, m := startInput(t, Config{Protocol: ProtocolTLS, TLS: pki.serverConfig(true)}, pool)

	// Without a client certificate the handshake fails on the server; with
	// TLS 1.3 the client learns it on its first read.
	if c, err := tls.Dial("tcp", l.Addr().String(), pki.clientConfig(false)); err == nil {
		_, _ = c.Write([]byte("no cert\n"))
		waitClosedByPeer(t, c, 5*time.Second)
		c.Close()
	}
	waitFor(t, 5*time.Second, "tls_handshake rejection", func() bool { return m.rejectTLS.Get() == 1 })

	c := dial(t, l, pki, true)
	defer c.Close()
	sendLine(t, c, "with cert")
	waitFor(t, 5*time.Second, "frame over mTLS", func() bool { return pool.count.Load() == 1 })

	// TLS 1.1 is refused.
	old := pki.clientConfig(true)
	old.MaxVersion = tls.VersionTLS11
	if c, err := tls.Dial("tcp", l.Addr().String(), old); err == nil {
		c.Close()
		t.Fatal("TLS 1.1 handshake succeeded")
	}
	waitFor(t, 5*time.Second, "second tls_handshake rejection", func() bool { return m.rejectTLS.Get() == 2 })
}

// TestStop checks Stop closes the listener and the open connections,
// delivering what was read, and returns promptly.
func TestStop(t *testing.T) {
	for name, cfg := range streamConfigs(t) {
		t.Run(name, func(t *testing.T) {
			pki := newTestPKI(t)
			if cfg.TLS != nil {
				cfg.TLS = pki.serverConfig(false)
			}
			pool := newRecPool(false)
			l, m := startInput(t, cfg, pool)
			c := dial(t, l, pki, false)
			defer c.Close()
			sendLine(t, c, "delivered")
			waitFor(t, 5*time.Second, "frame", func() bool { return pool.count.Load() == 1 })
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			if err := l.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			if el := time.Since(start); el > 2*time.Second {
				t.Fatalf("Stop took %v", el)
			}
			waitClosedByPeer(t, c, 5*time.Second)
			if _, err := net.DialTimeout("tcp", l.Addr().String(), time.Second); err == nil {
				t.Fatal("still accepting after Stop")
			}
			if got := m.connections.Get(); got != 0 {
				t.Fatalf("connections gauge %v after Stop", got)
			}
			if err := l.Stop(ctx); err != nil {
				t.Fatalf("second Stop: %v", err)
			}
		})
	}
}

// TestStopWhileSinkBlocked: Stop cannot interrupt a sink blocked in
// backpressure; it gives up when its context ends and the input finishes
// once the sink is released.
func TestStopWhileSinkBlocked(t *testing.T) {
	for name, cfg := range streamConfigs(t) {
		t.Run(name, func(t *testing.T) {
			pki := newTestPKI(t)
			if cfg.TLS != nil {
				cfg.TLS = pki.serverConfig(false)
			}
			pool := newRecPool(false)
			cfg.Address, cfg.Name, cfg.EventLoops = "127.0.0.1:0", "blocked", 2
			l, err := Start(cfg, pool, NewMetrics(metrics.NewSet(), cfg.Name), testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			defer pool.unblock()
			c := dial(t, l, pki, false)
			defer c.Close()
			pool.block()
			sendLine(t, c, "stuck")
			waitFor(t, 5*time.Second, "sink blocked", func() bool { return pool.waiting.Load() == 1 })
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			err = l.Stop(ctx)
			if err == nil || !strings.Contains(err.Error(), "deadline") {
				t.Fatalf("Stop = %v, want a deadline error", err)
			}
			pool.unblock()
			waitFor(t, 5*time.Second, "the blocked frame delivered", func() bool { return pool.count.Load() == 1 })
			waitClosedByPeer(t, c, 5*time.Second)
		})
	}
}
