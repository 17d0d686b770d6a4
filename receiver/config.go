package receiver

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"time"
)

// Protocols accepted in Config.Protocol.
const (
	ProtocolTCP = "tcp"
	ProtocolUDP = "udp"
	ProtocolTLS = "tls"
)

// DefaultKeepAlive is the TCP keep-alive idle time of accepted tcp and tls
// connections when Config.KeepAlive is zero. A connection silent for that
// long is probed every KeepAlive/KeepAliveProbes, and closed by the kernel
// when KeepAliveProbes probes in a row go unanswered: the connection of a
// dead peer (powered off, cut off by a firewall) is closed about twice
// KeepAlive after its last sign of life, 2 minutes by default, while a live
// sender that writes one alert an hour keeps its connection, and the probes
// keep the state that NATs and firewalls hold for it fresh (they drop idle
// flows after 4 to 60 minutes). These are the kernel's
// net.ipv4.tcp_keepalive_time, _intvl and _probes, set per socket.
const DefaultKeepAlive = 60 * time.Second

// KeepAliveProbes is the number of unanswered keep-alive probes after which
// the kernel closes a connection (TCP_KEEPCNT); they go every
// Config.KeepAlive/KeepAliveProbes (TCP_KEEPINTVL, at least 1s).
const KeepAliveProbes = 4

// keepAliveInterval is the probe interval for the idle time idle.
func keepAliveInterval(idle time.Duration) time.Duration {
	return max(idle/KeepAliveProbes, time.Second)
}

// DefaultHandshakeTimeout is Config.HandshakeTimeout when it is zero.
const DefaultHandshakeTimeout = 5 * time.Second

// Errors returned by Start for a Config that cannot work.
var (
	ErrProtocol  = errors.New("receiver: protocol must be tcp, udp or tls")
	ErrNoTLS     = errors.New("receiver: tls input without a TLS configuration")
	ErrProxyUDP  = errors.New("receiver: proxy_protocol is not supported on udp")
	ErrNoAddress = errors.New("receiver: address is empty")
	// ErrNoTrustedProxies: with proxy_protocol, trusted_proxies must name
	// the load balancers; anyone else could claim any source.
	ErrNoTrustedProxies = errors.New("receiver: proxy_protocol requires trusted_proxies")
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
	// ProxyProtocol it applies to the source given in the PROXY header,
	// after TrustedProxies; a LOCAL header (a trusted proxy's own
	// connection, e.g. its health check) is accepted whatever Allow says.
	Allow []netip.Prefix
	// TrustedProxies lists the peers that may send PROXY headers; it is
	// required with ProxyProtocol. A connection from another peer is
	// refused before anything is read from it.
	TrustedProxies []netip.Prefix
	// MaxConnections caps concurrent connections (tcp, tls); 0 = no cap.
	// When the cap is reached, the oldest connection that has not completed
	// a frame is closed to make room; a new one is refused only when every
	// connection has completed a frame (or is being read).
	MaxConnections int
	// MaxConnectionsPerSource caps concurrent connections from one source
	// address (the PROXY header's with ProxyProtocol); 0 = no cap.
	MaxConnectionsPerSource int
	// HandshakeTimeout bounds a connection's handshake phase, counted from
	// the accept: the PROXY header (with ProxyProtocol) and the TLS
	// handshake (tls); a plain tcp connection has none
	// (DefaultHandshakeTimeout if 0). Within the phase, whichever of it and
	// IdleTimeout ends first closes the connection. Past it only
	// IdleTimeout closes a connection by time, whether it has completed a
	// frame or not; one that has not stays a candidate for eviction at
	// MaxConnections.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a connection that sent nothing, or that has held
	// a partial frame, for this long; 0 = never.
	IdleTimeout time.Duration
	// Partial caps the bytes held in partial frames; the relay shares one
	// across all inputs of the process. Nil gives the input a budget of its
	// own of DefaultMaxPartialBytes.
	Partial *PartialBudget
	// Conns, when set, is told of every accepted connection's open and
	// close (see ConnObserver).
	Conns ConnObserver
	// TLS is the server configuration (certificates, ClientCAs and
	// ClientAuth for mTLS) of a tls input; MinVersion is raised to TLS 1.2.
	TLS *tls.Config
	// ProxyProtocol expects a PROXY protocol v1 or v2 header at the start
	// of every tcp/tls connection.
	ProxyProtocol bool
	// KeepAlive is the TCP keep-alive idle time of accepted tcp and tls
	// connections, at least 1s (DefaultKeepAlive if 0, disabled if
	// negative); see DefaultKeepAlive for the probes.
	KeepAlive time.Duration
	// EventLoops is the number of gnet event loops (GOMAXPROCS if 0).
	EventLoops int
	// UDPRecvBuffer is the kernel receive buffer (SO_RCVBUF) of each of a
	// udp input's sockets, capped by net.core.rmem_max
	// (DefaultUDPRecvBuffer if 0).
	UDPRecvBuffer int
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
		if c.ProxyProtocol && len(c.TrustedProxies) == 0 {
			return ErrNoTrustedProxies
		}
	case ProtocolUDP:
		if c.ProxyProtocol {
			return ErrProxyUDP
		}
	case ProtocolTLS:
		if c.TLS == nil {
			return ErrNoTLS
		}
		if c.ProxyProtocol && len(c.TrustedProxies) == 0 {
			return ErrNoTrustedProxies
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
	if c.UDPRecvBuffer <= 0 {
		c.UDPRecvBuffer = DefaultUDPRecvBuffer
	}
	if c.EventLoops <= 0 {
		c.EventLoops = runtime.GOMAXPROCS(0)
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.MaxConnectionsPerSource < 0 {
		c.MaxConnectionsPerSource = 0
	}
	if c.Partial == nil {
		c.Partial = NewPartialBudget(0)
	}
	return nil
}

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
