package receiver

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

// proxyV2 builds a v2 header: cmd 0 LOCAL / 1 PROXY, fam 0x11 TCP4 /
// 0x21 TCP6 / 0x00 UNSPEC, plus tlv bytes of padding.
func proxyV2(cmd, fam byte, src, dst netip.AddrPort, tlv int) []byte {
	var body []byte
	switch fam >> 4 {
	case 1:
		s, d := src.Addr().As4(), dst.Addr().As4()
		body = append(append(body, s[:]...), d[:]...)
	case 2:
		s, d := src.Addr().As16(), dst.Addr().As16()
		body = append(append(body, s[:]...), d[:]...)
	}
	if fam>>4 == 1 || fam>>4 == 2 {
		body = binary.BigEndian.AppendUint16(body, src.Port())
		body = binary.BigEndian.AppendUint16(body, dst.Port())
	}
	body = append(body, make([]byte, tlv)...)
	h := append([]byte(nil), proxyV2Sig...)
	h = append(h, 0x20|cmd, fam)
	h = binary.BigEndian.AppendUint16(h, uint16(len(body)))
	return append(h, body...)
}

var (
	srcV4 = netip.MustParseAddrPort("192.0.2.10:51234")
	dstV4 = netip.MustParseAddrPort("198.51.100.2:1514")
	srcV6 = netip.MustParseAddrPort("[2001:db8::7]:40000")
	dstV6 = netip.MustParseAddrPort("[2001:db8::1]:1514")
)

// shortV4Block is a v2 PROXY TCP4 header whose address block has 2 bytes.
func shortV4Block() []byte {
	h := proxyV2(1, 0x00, srcV4, dstV4, 2)
	h[13] = 0x11
	return h
}

func TestParseProxyHeader(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		src     netip.AddrPort
		bad     bool
		missing bool
	}{
		{name: "v1 tcp4", in: "PROXY TCP4 192.0.2.10 198.51.100.2 51234 1514\r\n", src: srcV4},
		{name: "v1 tcp6", in: "PROXY TCP6 2001:db8::7 2001:db8::1 40000 1514\r\n", src: srcV6},
		{name: "v1 unknown", in: "PROXY UNKNOWN\r\n"},
		{name: "v1 unknown with addresses", in: "PROXY UNKNOWN ffff:f...f ffff:f...f 65535 65535\r\n"},
		{name: "v1 family mismatch", in: "PROXY TCP4 2001:db8::7 2001:db8::1 1 2\r\n", bad: true},
		{name: "v1 bad address", in: "PROXY TCP4 192.0.2.300 198.51.100.2 1 2\r\n", bad: true},
		{name: "v1 bad port", in: "PROXY TCP4 192.0.2.1 198.51.100.2 70000 2\r\n", bad: true},
		{name: "v1 too few fields", in: "PROXY TCP4 192.0.2.1\r\n", bad: true},
		{name: "v1 udp", in: "PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n", bad: true},
		{name: "v1 no CRLF within 107 bytes", in: "PROXY TCP4 " + string(make([]byte, 120)), bad: true},
		{name: "v2 tcp4", in: string(proxyV2(1, 0x11, srcV4, dstV4, 0)), src: srcV4},
		{name: "v2 tcp4 with TLVs", in: string(proxyV2(1, 0x11, srcV4, dstV4, 40)), src: srcV4},
		{name: "v2 tcp6", in: string(proxyV2(1, 0x21, srcV6, dstV6, 0)), src: srcV6},
		{name: "v2 local", in: string(proxyV2(0, 0x11, srcV4, dstV4, 0))},
		{name: "v2 unspec", in: string(proxyV2(1, 0x00, srcV4, dstV4, 0))},
		{name: "v2 short ipv4 block", in: string(shortV4Block()), bad: true},
		{name: "v2 too long", in: string(proxyV2(1, 0x11, srcV4, dstV4, 4000)), bad: true},
		{name: "syslog instead", in: "<165>May 14 09:24:00 h darktrace {}\n", missing: true},
		{name: "octet count instead", in: "12 <165>x", missing: true},
		{name: "almost v1", in: "PROXX TCP4", missing: true},
		{name: "almost v2", in: "\r\n\r\nX", missing: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in + "<165>payload")
			n, src, err := parseProxyHeader(in)
			switch {
			case tt.missing:
				if !errors.Is(err, errProxyMissing) {
					t.Fatalf("err = %v, want errProxyMissing", err)
				}
				return
			case tt.bad:
				if !errors.Is(err, ErrProxyHeader) || errors.Is(err, errProxyShort) {
					t.Fatalf("err = %v, want ErrProxyHeader", err)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if n != len(tt.in) || src != tt.src {
				t.Fatalf("n = %d, src = %v; want %d, %v", n, src, len(tt.in), tt.src)
			}
			// Every strict prefix is incomplete, never wrong.
			for i := range len(tt.in) {
				if _, _, err := parseProxyHeader([]byte(tt.in[:i])); !errors.Is(err, errProxyShort) {
					t.Fatalf("prefix of %d bytes: err = %v, want errProxyShort", i, err)
				}
			}
			// Split across reads at every point, the rest is what follows.
			for i := range len(in) {
				var r proxyReader
				done, src, rest, err := r.feed(in[:i])
				if err != nil {
					t.Fatalf("split %d: %v", i, err)
				}
				if !done {
					done, src, rest, err = r.feed(in[i:])
				} else {
					rest = append(rest, in[i:]...)
				}
				if err != nil || !done || src != tt.src || string(rest) != "<165>payload" {
					t.Fatalf("split %d: done %v src %v rest %q err %v", i, done, src, rest, err)
				}
			}
		})
	}
}

func FuzzParseProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.10 198.51.100.2 51234 1514\r\nabc"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(proxyV2(1, 0x11, srcV4, dstV4, 3))
	f.Add(proxyV2(1, 0x21, srcV6, dstV6, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, _, err := parseProxyHeader(b)
		if err == nil && (n <= 0 || n > len(b)) {
			t.Fatalf("n = %d for %d bytes", n, len(b))
		}
	})
}

// TestProxyProtocolOverSockets: allow applies to the proxied source.
func TestProxyProtocolOverSockets(t *testing.T) {
	pki := newTestPKI(t)
	allow := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("127.0.0.1/32")}
	for _, proto := range []string{ProtocolTCP, ProtocolTLS} {
		t.Run(proto, func(t *testing.T) {
			cfg := Config{Protocol: proto, ProxyProtocol: true, Allow: allow, TLS: pki.serverConfig(false),
				TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
			pool := newRecPool(true)
			l, m := startInput(t, cfg, pool)
			// connect writes header in two pieces, then (for TLS) handshakes.
			connect := func(header []byte) net.Conn {
				raw, err := net.Dial("tcp", l.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				half := len(header) / 2
				_, _ = raw.Write(header[:half])
				_, _ = raw.Write(header[half:])
				if proto == ProtocolTLS {
					tc := tls.Client(raw, pki.clientConfig(false))
					_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
					if err := tc.Handshake(); err != nil {
						raw.Close()
						return nil
					}
					_ = tc.SetDeadline(time.Time{})
					return tc
				}
				return raw
			}
			v1 := connect([]byte("PROXY TCP4 192.0.2.10 198.51.100.2 51234 1514\r\n"))
			defer v1.Close()
			sendLine(t, v1, "via v1")
			v2 := connect(proxyV2(1, 0x21, netip.MustParseAddrPort("[::ffff:192.0.2.11]:1"), dstV6, 7))
			defer v2.Close()
			sendLine(t, v2, "via v2")
			local := connect(proxyV2(0, 0x00, srcV4, dstV4, 0))
			defer local.Close()
			sendLine(t, local, "local health check")
			waitFor(t, 5*time.Second, "3 frames", func() bool { return pool.count.Load() == 3 })

			denied := connect(proxyV2(1, 0x11, netip.MustParseAddrPort("198.51.100.9:5"), dstV4, 0))
			if denied != nil {
				waitClosedByPeer(t, denied, 5*time.Second)
				denied.Close()
			}
			waitFor(t, 5*time.Second, "allow rejection", func() bool { return m.rejectAllow.Get() == 1 })

			raw, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			_, _ = raw.Write([]byte("<165>May 14 09:24:00 h darktrace {}\n"))
			waitClosedByPeer(t, raw, 5*time.Second)
			raw.Close()
			waitFor(t, 5*time.Second, "proxy_protocol error", func() bool { return m.proxyErrors.Get() == 1 })
			if pool.count.Load() != 3 {
				t.Fatalf("%d frames, want 3", pool.count.Load())
			}
		})
	}
}
