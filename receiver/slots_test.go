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

// TestHandshakeTimeout: on the inputs with a handshake phase (a PROXY
// header, a TLS handshake) one handshake_timeout from the accept bounds it:
// silence, half a PROXY header, a PROXY header and no ClientHello, half a
// ClientHello. A connection past its handshake is not affected, even with
// idle_timeout off (see TestHandshakenFramelessStaysOpen).
func TestHandshakeTimeout(t *testing.T) {
	const hs = 300 * time.Millisecond
	p := newTestPKI(t)
	for name, cfg := range slotConfigs(p) {
		if !cfg.ProxyProtocol && cfg.Protocol == ProtocolTCP {
			continue // no handshake phase
		}
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
				c := rawDial(t, l)
				if cfg.ProxyProtocol { // the PROXY header, then no ClientHello
					_, _ = c.Write([]byte("PROXY TCP4 10.0.0.2 127.0.0.1 4000 1514\r\n"))
					stuck = append(stuck, c)
					c = rawDial(t, l)
					_, _ = c.Write([]byte("PROXY TCP4 10.0.0.3 127.0.0.1 4000 1514\r\n"))
				}
				_, _ = c.Write([]byte{0x16, 0x03, 0x01, 0x00, 0xc0, 0x01}) // half a ClientHello
				stuck = append(stuck, c)
			}

			start := time.Now()
			for _, c := range stuck {
				waitClosedByPeer(t, c, 5*time.Second)
				c.Close()
			}
			if el := time.Since(start); el < hs/2 || el > 3*time.Second {
				t.Fatalf("connections in their handshake closed after %v; handshake_timeout %v", el, hs)
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

// TestHandshakenFramelessStaysOpen: a connection past its handshake (a
// plain tcp one from its accept) that has not completed a frame is not
// closed by time: silent, or inside its first frame, for twice
// handshake_timeout with idle_timeout off, it stays open and then
// delivers. Real senders (syslog-ng, a Darktrace master between alerts)
// connect ahead of their first message.
func TestHandshakenFramelessStaysOpen(t *testing.T) {
	const hs = 400 * time.Millisecond // room for a TLS handshake under -race on a busy machine
	p := newTestPKI(t)
	for name, cfg := range slotConfigs(p) {
		t.Run(name, func(t *testing.T) {
			cfg.HandshakeTimeout = hs
			pool := newRecPool(false)
			l, m := startInput(t, cfg, pool)
			silent := sender(t, l, p, "10.0.0.1")
			defer silent.Close()
			partial := sender(t, l, p, "10.0.0.2")
			defer partial.Close()
			if _, err := partial.Write([]byte("<165>first frame, ")); err != nil {
				t.Fatal(err)
			}
			waitHandshaken(t, l, m, 2)
			if !stillOpen(silent, 2*hs) || !stillOpen(partial, 20*time.Millisecond) {
				t.Fatalf("a handshaken connection without a frame was closed within 2x handshake_timeout (%v)", hs)
			}
			sendLine(t, silent, "after the silence")
			sendLine(t, partial, "in two pieces")
			waitFor(t, 5*time.Second, "both frames", func() bool { return pool.count.Load() == 2 })
			if m.rejectHandshake.Get() != 0 || m.idleClosed.Get() != 0 || m.truncated.Get() != 0 {
				t.Fatalf("handshake_timeout %d, idle %d, truncated %d", m.rejectHandshake.Get(), m.idleClosed.Get(),
					m.truncated.Get())
			}
		})
	}
}

// TestEvictHandshakenFrameless: a connection left open past
// handshake_timeout because its handshake is done (see
// TestHandshakenFramelessStaysOpen) is still a candidate for eviction
// until its first frame: when max_connections is full, a new connection
// closes it and delivers.
func TestEvictHandshakenFrameless(t *testing.T) {
	const hs = 400 * time.Millisecond
	p := newTestPKI(t)
	for name, cfg := range slotConfigs(p) {
		t.Run(name, func(t *testing.T) {
			cfg.HandshakeTimeout = hs
			cfg.MaxConnections = 2
			pool := newRecPool(false)
			l, m := startInput(t, cfg, pool)
			a := sender(t, l, p, "10.0.0.1")
			defer a.Close()
			sendLine(t, a, "a")
			waitFor(t, 5*time.Second, "a's frame", func() bool { return pool.count.Load() == 1 })
			b := sender(t, l, p, "10.0.0.2") // handshaken, silent
			defer b.Close()
			waitHandshaken(t, l, m, 2)
			if !stillOpen(b, 2*hs) {
				t.Fatal("b closed by time")
			}
			c := sender(t, l, p, "10.0.0.3")
			defer c.Close()
			sendLine(t, c, "c")
			waitClosedByPeer(t, b, 5*time.Second)
			waitFor(t, 5*time.Second, "c's frame", func() bool { return pool.count.Load() == 2 })
			if m.evicted.Get() != 1 || m.rejectMax.Get() != 0 || m.rejectHandshake.Get() != 0 || !stillOpen(a, 20*time.Millisecond) {
				t.Fatalf("evicted %d (want b only), refused %d, handshake_timeout %d", m.evicted.Get(), m.rejectMax.Get(),
					m.rejectHandshake.Get())
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

// waitHandshaken waits until l holds n connections and has marked every
// one's handshake done (the server's side of it: a client's TLS handshake
// ends before the server's). It fails at once if one timed out instead.
func waitHandshaken(t testing.TB, l *Listener, m *Metrics, n int) {
	t.Helper()
	waitFor(t, 5*time.Second, "handshakes done on the server", func() bool {
		if m.rejectHandshake.Get() != 0 {
			t.Fatalf("a handshake exceeded handshake_timeout %v on the server", l.cfg.HandshakeTimeout)
		}
		tb := l.cm.slots
		tb.mu.Lock()
		defer tb.mu.Unlock()
		return tb.n == n && tb.handshaking.head == nil
	})
}
