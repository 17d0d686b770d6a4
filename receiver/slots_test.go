package receiver

import (
	"crypto/tls"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

var loopbackProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// slotConfigs are the four ways a connection reaches the framer.
func slotConfigs(p *testPKI) map[string]Config {
	return map[string]Config{
		"tcp":       {Protocol: ProtocolTCP},
		"tcp+proxy": {Protocol: ProtocolTCP, ProxyProtocol: true, TrustedProxies: loopbackProxies},
		"tls":       {Protocol: ProtocolTLS, TLS: p.serverConfig(false)},
		"tls+proxy": {Protocol: ProtocolTLS, TLS: p.serverConfig(false), ProxyProtocol: true, TrustedProxies: loopbackProxies},
	}
}

// sender opens a connection that goes as far as a real sender would before
// its first frame: the PROXY header (claiming src) and the TLS handshake.
func sender(t testing.TB, l *Listener, p *testPKI, src string) net.Conn {
	t.Helper()
	c, err := trySender(t, l, p, src)
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	return c
}

// trySender is sender for a connection that may be refused: on error the
// raw connection is returned with it.
func trySender(t testing.TB, l *Listener, p *testPKI, src string) (net.Conn, error) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	raw, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if l.cfg.ProxyProtocol {
		if _, err := raw.Write([]byte("PROXY TCP4 " + src + " 127.0.0.1 4000 1514\r\n")); err != nil {
			return raw, err
		}
	}
	if l.cfg.Protocol != ProtocolTLS {
		return raw, nil
	}
	tc := tls.Client(raw, p.clientConfig(false))
	_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		return raw, err
	}
	_ = tc.SetDeadline(time.Time{})
	return tc, nil
}

func rawDial(t testing.TB, l *Listener) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", l.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestHandshakeTimeout: one handshake_timeout from the accept bounds
// everything before the first frame (silence, the PROXY header, the TLS
// handshake, a handshake with no frame after it); a connection that sent a
// frame in time is not affected, even with idle_timeout off.
func TestHandshakeTimeout(t *testing.T) {
	const hs = 300 * time.Millisecond
	p := newTestPKI(t)
	for name, cfg := range slotConfigs(p) {
		t.Run(name, func(t *testing.T) {
			cfg.HandshakeTimeout = hs
			pool := newRecPool(false)
			l, m := startInput(t, cfg, pool)
			good := sender(t, l, p, "10.0.0.1")
			defer good.Close()
			sendLine(t, good, "first frame in time")

			stuck := []net.Conn{rawDial(t, l)} // silent from the start
			if cfg.ProxyProtocol {
				c := rawDial(t, l) // half a PROXY header
				_, _ = c.Write([]byte("PROXY TCP4 10.0"))
				stuck = append(stuck, c)
			}
			if cfg.Protocol == ProtocolTLS {
				stuck = append(stuck, sender(t, l, p, "10.0.0.2")) // handshake, then silence
			}
			c := sender(t, l, p, "10.0.0.3") // a partial first frame
			_, _ = c.Write([]byte("<165>no end"))
			stuck = append(stuck, c)

			start := time.Now()
			for _, c := range stuck {
				waitClosedByPeer(t, c, 5*time.Second)
				c.Close()
			}
			if el := time.Since(start); el < hs/2 || el > 3*time.Second {
				t.Fatalf("pre-frame connections closed after %v; handshake_timeout %v", el, hs)
			}
			want := uint64(len(stuck))
			waitFor(t, 5*time.Second, "handshake_timeout closes", func() bool { return m.rejectHandshake.Get() == want })
			if !stillOpen(good, 3*hs) {
				t.Fatal("a connection that sent a frame in time was closed")
			}
			waitFor(t, 5*time.Second, "slots released", func() bool { return l.cm.slots.count() == 1 })
			if pool.count.Load() != 1 || m.idleClosed.Get() != 0 || m.proxyErrors.Get() != 0 || m.rejectTLS.Get() != 0 {
				t.Fatalf("frames %d, idle %d, proxy errors %d, tls %d", pool.count.Load(), m.idleClosed.Get(),
					m.proxyErrors.Get(), m.rejectTLS.Get())
			}
		})
	}
}

// TestSilentConnectsHoldNoMore is issue 9's "3000 silent connects gave
// +3000 file descriptors and goroutines" on tls+proxy_protocol, scaled: 200
// silent connects against max_connections 20 hold at most 20 slots and 20
// goroutines; the rest are closed (each new one evicts the oldest silent
// one); a real sender still gets in.
func TestSilentConnectsHoldNoMore(t *testing.T) {
	p := newTestPKI(t)
	for name, cfg := range slotConfigs(p) {
		t.Run(name, func(t *testing.T) {
			const maxConns, silent = 20, 200
			cfg.MaxConnections = maxConns
			pool := newRecPool(false)
			l, m := startInput(t, cfg, pool)
			base := runtime.NumGoroutine()
			conns := make([]net.Conn, 0, silent)
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			for range silent {
				conns = append(conns, rawDial(t, l))
			}
			waitFor(t, 5*time.Second, "180 evictions", func() bool { return m.evicted.Get() == silent-maxConns })
			if n := l.cm.slots.count(); n > maxConns {
				t.Fatalf("%d slots held, max_connections %d", n, maxConns)
			}
			waitFor(t, 5*time.Second, "at most one goroutine per slot", func() bool {
				return runtime.NumGoroutine()-base <= maxConns+5
			})
			// Which ones were evicted depends on the order the two event
			// loops ran OnOpen in; how many does not.
			closed := 0
			for _, c := range conns {
				if !stillOpen(c, 20*time.Millisecond) {
					closed++
				}
			}
			if closed != silent-maxConns {
				t.Fatalf("%d connections closed, want %d", closed, silent-maxConns)
			}
			c := sender(t, l, p, "10.0.0.9")
			defer c.Close()
			sendLine(t, c, "real sender")
			waitFor(t, 5*time.Second, "the real sender's frame", func() bool { return pool.count.Load() == 1 })
			if m.rejectMax.Get() != 0 {
				t.Fatalf("%d refused while frameless connections could be evicted", m.rejectMax.Get())
			}
		})
	}
}

// TestEvictOldestFrameless: at max_connections the oldest connection that
// has not completed a frame makes room; when every connection has completed
// one, the new connection is refused.
func TestEvictOldestFrameless(t *testing.T) {
	p := newTestPKI(t)
	for name, cfg := range slotConfigs(p) {
		t.Run(name, func(t *testing.T) {
			cfg.MaxConnections = 3
			pool := newRecPool(false)
			l, m := startInput(t, cfg, pool)
			a := sender(t, l, p, "10.0.0.1")
			defer a.Close()
			sendLine(t, a, "a")
			waitFor(t, 5*time.Second, "a's frame", func() bool { return pool.count.Load() == 1 })
			b := rawDial(t, l)
			defer b.Close()
			waitFor(t, 5*time.Second, "b registered", func() bool { return l.cm.slots.count() == 2 })
			c := sender(t, l, p, "10.0.0.3") // frameless, younger than b
			defer c.Close()
			waitFor(t, 5*time.Second, "c registered", func() bool { return l.cm.slots.count() == 3 })

			d := sender(t, l, p, "10.0.0.4")
			defer d.Close()
			sendLine(t, d, "d")
			waitClosedByPeer(t, b, 5*time.Second)
			waitFor(t, 5*time.Second, "d's frame", func() bool { return pool.count.Load() == 2 })
			if m.evicted.Get() != 1 || !stillOpen(a, 20*time.Millisecond) {
				t.Fatalf("evicted %d (want b only)", m.evicted.Get())
			}
			sendLine(t, c, "c")
			waitFor(t, 5*time.Second, "c's frame", func() bool { return pool.count.Load() == 3 })

			// a, c and d have completed frames: e is refused.
			e := rawDial(t, l)
			defer e.Close()
			waitClosedByPeer(t, e, 5*time.Second)
			waitFor(t, 5*time.Second, "max_connections rejection", func() bool { return m.rejectMax.Get() == 1 })
			if m.evicted.Get() != 1 || l.cm.slots.count() != 3 {
				t.Fatalf("evicted %d, slots %d", m.evicted.Get(), l.cm.slots.count())
			}
		})
	}
}

// TestMaxConnectionsPerSource: the N+1th concurrent connection of one
// source is refused and counted; other sources are not affected; closing
// one frees its place. With proxy_protocol the source is the header's.
func TestMaxConnectionsPerSource(t *testing.T) {
	p := newTestPKI(t)
	for name, cfg := range slotConfigs(p) {
		t.Run(name, func(t *testing.T) {
			cfg.MaxConnectionsPerSource = 2
			cfg.MaxConnections = 10
			pool := newRecPool(false)
			l, m := startInput(t, cfg, pool)
			// from opens a connection from source addr: the claimed one
			// with a PROXY header, else the dialer's local address.
			from := func(addr string) net.Conn {
				if cfg.ProxyProtocol {
					c, _ := trySender(t, l, p, addr) // fails when refused
					return c
				}
				d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(addr)}}
				raw, err := d.Dial("tcp", l.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				if cfg.Protocol != ProtocolTLS {
					return raw
				}
				tc := tls.Client(raw, p.clientConfig(false))
				_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
				_ = tc.Handshake() // fails for a refused connection
				_ = tc.SetDeadline(time.Time{})
				return tc
			}
			one, two := "127.0.0.1", "127.0.0.2"
			if cfg.ProxyProtocol {
				one, two = "10.1.2.3", "10.1.2.4"
			}
			c1, c2 := from(one), from(one)
			defer c1.Close()
			defer c2.Close()
			sendLine(t, c1, "1")
			sendLine(t, c2, "2")
			waitFor(t, 5*time.Second, "2 frames", func() bool { return pool.count.Load() == 2 })
			c3 := from(one)
			_, _ = c3.Write([]byte("3\n"))
			waitClosedByPeer(t, c3, 5*time.Second)
			c3.Close()
			waitFor(t, 5*time.Second, "per_source_limit rejection", func() bool { return m.rejectPerSource.Get() == 1 })
			other := from(two)
			defer other.Close()
			sendLine(t, other, "other source")
			waitFor(t, 5*time.Second, "the other source's frame", func() bool { return pool.count.Load() == 3 })
			c1.Close()
			waitFor(t, 5*time.Second, "a freed place", func() bool { return l.cm.slots.count() == 2 })
			c4 := from(one)
			defer c4.Close()
			sendLine(t, c4, "4")
			waitFor(t, 5*time.Second, "4 frames", func() bool { return pool.count.Load() == 4 })
			if m.rejectPerSource.Get() != 1 || m.rejectMax.Get() != 0 {
				t.Fatalf("per source %d, max %d", m.rejectPerSource.Get(), m.rejectMax.Get())
			}
		})
	}
}
