package receiver

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"
)

// Protocols accepted in Config.Protocol.
const (
	ProtocolTCP = "tcp"
	ProtocolUDP = "udp"
	ProtocolTLS = "tls"
)

// DefaultKeepAlive is the TCP keep-alive idle time and probe interval used
// when Config.KeepAlive is zero.
const DefaultKeepAlive = 15 * time.Second

// Errors returned by Start for a Config that cannot work.
var (
	ErrProtocol  = errors.New("receiver: protocol must be tcp, udp or tls")
	ErrNoTLS     = errors.New("receiver: tls input without a TLS configuration")
	ErrProxyUDP  = errors.New("receiver: proxy_protocol is not supported on udp")
	ErrNoAddress = errors.New("receiver: address is empty")
)

// Config describes one input. The config package validates the user's file
// and fills it in; Start rejects only what cannot work.
type Config struct {
	// Name labels metrics and logs.
	Name string
	// Protocol is "tcp", "udp" or "tls".
	Protocol string
	// Address is host:port; port 0 picks a free port (see Listener.Addr).
	Address string
	// MaxMessageSize is the frame size limit (DefaultMaxMessageSize if 0).
	MaxMessageSize int
	// Allow lists the accepted source prefixes; empty accepts all. With
	// ProxyProtocol it applies to the source given in the PROXY header.
	Allow []netip.Prefix
	// MaxConnections caps concurrent connections (tcp, tls); 0 = no cap.
	MaxConnections int
	// IdleTimeout closes a connection that sent nothing, or that has held
	// a partial frame, for this long; 0 = never.
	IdleTimeout time.Duration
	// TLS is the server configuration (certificates, ClientCAs and
	// ClientAuth for mTLS) of a tls input; MinVersion is raised to TLS 1.2.
	TLS *tls.Config
	// ProxyProtocol expects a PROXY protocol v1 or v2 header at the start
	// of every tcp/tls connection.
	ProxyProtocol bool
	// KeepAlive is the TCP keep-alive idle time and interval
	// (DefaultKeepAlive if 0, disabled if negative).
	KeepAlive time.Duration
	// EventLoops is the number of gnet event loops (GOMAXPROCS if 0).
	EventLoops int
}

func (c *Config) normalize() error {
	if c.Address == "" {
		return ErrNoAddress
	}
	if _, _, err := net.SplitHostPort(c.Address); err != nil {
		return fmt.Errorf("cannot parse address %q: %w", c.Address, err)
	}
	switch c.Protocol {
	case ProtocolTCP:
	case ProtocolUDP:
		if c.ProxyProtocol {
			return ErrProxyUDP
		}
	case ProtocolTLS:
		if c.TLS == nil {
			return ErrNoTLS
		}
		t := c.TLS.Clone()
		if t.MinVersion < tls.VersionTLS12 {
			t.MinVersion = tls.VersionTLS12
		}
		c.TLS = t
	default:
		return fmt.Errorf("%w, not %q", ErrProtocol, c.Protocol)
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.KeepAlive > 0 && c.KeepAlive < time.Second {
		c.KeepAlive = time.Second
	}
	if c.EventLoops <= 0 {
		c.EventLoops = runtime.GOMAXPROCS(0)
	}
	return nil
}

// gate applies the allow list and the connection cap. It is safe for
// concurrent use.
type gate struct {
	allow  []netip.Prefix
	max    int64
	active atomic.Int64
}

// allowed reports whether addr may connect.
func (g *gate) allowed(addr netip.Addr) bool {
	if len(g.allow) == 0 {
		return true
	}
	addr = addr.Unmap()
	for _, p := range g.allow {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// acquire takes a connection slot; it fails when MaxConnections are open.
func (g *gate) acquire() bool {
	for {
		n := g.active.Load()
		if g.max > 0 && n >= g.max {
			return false
		}
		if g.active.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (g *gate) release() { g.active.Add(-1) }

// addrPortOf returns the IP and port of a TCP or UDP address.
func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort()
	case *net.UDPAddr:
		return a.AddrPort()
	}
	return netip.AddrPort{}
}
