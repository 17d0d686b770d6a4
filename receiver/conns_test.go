package receiver

import (
	"crypto/tls"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// connLog records a ConnObserver's calls and a PeerPool's read addresses.
type connLog struct {
	*recPool
	mu     sync.Mutex
	opened []netip.AddrPort
	closed []netip.AddrPort
	reads  []netip.AddrPort
}

func (c *connLog) Opened(a netip.AddrPort) {
	c.mu.Lock()
	c.opened = append(c.opened, a)
	c.mu.Unlock()
}
func (c *connLog) Closed(a netip.AddrPort) {
	c.mu.Lock()
	c.closed = append(c.closed, a)
	c.mu.Unlock()
}
func (c *connLog) GetFrom(a netip.AddrPort) FrameSink {
	c.mu.Lock()
	c.reads = append(c.reads, a)
	c.mu.Unlock()
	return c.Get()
}

func (c *connLog) get() (opened, closed, reads []netip.AddrPort) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.opened), slices.Clone(c.closed), slices.Clone(c.reads)
}

// TestConnObserverAndPeerPool: with proxy_protocol, the connection hooks
// and every read name the source of the PROXY header, not the proxy; a
// connection refused before it is admitted is not reported; Closed
// follows Opened.
func TestConnObserverAndPeerPool(t *testing.T) {
	pki := newTestPKI(t)
	src := netip.MustParseAddrPort("192.0.2.10:51234")
	for _, proto := range []string{ProtocolTCP, ProtocolTLS} {
		t.Run(proto, func(t *testing.T) {
			obs := &connLog{recPool: newRecPool(false)}
			cfg := Config{Protocol: proto, ProxyProtocol: true, TLS: pki.serverConfig(false), Conns: obs,
				TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
			l, m := startInput(t, cfg, obs)
			raw, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			_, _ = raw.Write([]byte("PROXY TCP4 192.0.2.10 198.51.100.2 51234 1514\r\n"))
			var c net.Conn = raw
			if proto == ProtocolTLS {
				tc := tls.Client(raw, pki.clientConfig(false))
				_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
				if err := tc.Handshake(); err != nil {
					t.Fatal(err)
				}
				c = tc
			}
			sendLine(t, c, "one")
			waitFor(t, 5*time.Second, "a frame", func() bool { return obs.count.Load() == 1 })
			opened, closed, reads := obs.get()
			if !slices.Equal(opened, []netip.AddrPort{src}) || len(closed) != 0 {
				t.Fatalf("opened %v closed %v, want opened [%v] only", opened, closed, src)
			}
			if len(reads) == 0 || slices.ContainsFunc(reads, func(a netip.AddrPort) bool { return a != src }) {
				t.Fatalf("reads from %v, want %v", reads, src)
			}
			// A bad header: the connection is never admitted, not reported.
			bad, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			_, _ = bad.Write([]byte("<165>May 14 09:24:00 h darktrace {}\n"))
			waitClosedByPeer(t, bad, 5*time.Second)
			bad.Close()
			waitFor(t, 5*time.Second, "proxy_protocol error", func() bool { return m.proxyErrors.Get() == 1 })
			c.Close()
			waitFor(t, 5*time.Second, "Closed", func() bool { _, closed, _ := obs.get(); return len(closed) == 1 })
			opened, closed, _ = obs.get()
			if !slices.Equal(opened, []netip.AddrPort{src}) || !slices.Equal(closed, []netip.AddrPort{src}) {
				t.Fatalf("opened %v closed %v, want [%v] each", opened, closed, src)
			}
		})
	}
}
