package receiver

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// Listener is one running input. Addr and Stop are safe for concurrent use.
type Listener struct {
	cfg      Config
	cm       *common
	addr     net.Addr
	log      zerolog.Logger
	stopFn   func(context.Context) error
	running  func() bool // see Running
	gnet     *gnetServer // tcp and udp inputs
	stopped  atomic.Bool // Stop was called
	stopOnce sync.Once
	stopErr  error
}

// common is what the gnet and TLS servers share: configuration, sink pool,
// metrics, loggers, the connection table and the partial-frame budget. It
// is read-only after Start (slots, partial and metrics are
// concurrency-safe).
type common struct {
	cfg     Config
	pool    SinkPool
	peers   PeerPool // pool, when it is one
	m       *Metrics
	log     zerolog.Logger
	logs    *sampledLogs // per-message and per-connection problems, sampled per reason
	slots   *slots
	partial *PartialBudget
}

func newCommon(cfg Config, pool SinkPool, m *Metrics, log zerolog.Logger) *common {
	peers, _ := pool.(PeerPool)
	return &common{
		peers:   peers,
		cfg:     cfg,
		pool:    pool,
		m:       m,
		log:     log,
		logs:    newSampledLogs(log),
		slots:   newSlots(cfg.MaxConnections, cfg.MaxConnectionsPerSource, cfg.ProxyProtocol || cfg.Protocol == ProtocolTLS),
		partial: cfg.Partial,
	}
}

// Start opens the input described by cfg and delivers its frames to sinks
// from pool. It returns once the input accepts traffic; the listen address
// is logged. Frames are handed to a sink obtained with pool.Get for the
// duration of one read, followed by one Flush and pool.Put. A sink that
// blocks stops reading on that event loop (tcp, udp) or connection (tls)
// until it returns.
func Start(cfg Config, pool SinkPool, m *Metrics, log zerolog.Logger) (*Listener, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	log = log.With().Str("input", cfg.Name).Str("protocol", cfg.Protocol).Logger()
	cm := newCommon(cfg, pool, m, log)
	l := &Listener{cfg: cfg, cm: cm, log: log}
	switch cfg.Protocol {
	case ProtocolTLS:
		ts, err := startTLS(cm)
		if err != nil {
			return nil, err
		}
		l.addr, l.stopFn, l.running = ts.ln.Addr(), ts.stop, ts.running
	default:
		gs, stop, err := startGnet(cm)
		if err != nil {
			return nil, err
		}
		l.addr, l.stopFn, l.running, l.gnet = gs.boundAddr, stop, gs.running, gs
	}
	log.Info().Str("address", l.addr.String()).Int("max_message_size", cfg.MaxMessageSize).
		Int("max_connections", cfg.MaxConnections).Int("max_connections_per_source", cfg.MaxConnectionsPerSource).
		Dur("handshake_timeout", cfg.HandshakeTimeout).Dur("idle_timeout", cfg.IdleTimeout).
		Bool("proxy_protocol", cfg.ProxyProtocol).Int("trusted_proxies", len(cfg.TrustedProxies)).
		Int("allow", len(cfg.Allow)).Msg("listening")
	return l, nil
}

// Name returns the input's name (Config.Name).
func (l *Listener) Name() string { return l.cfg.Name }

// Addr returns the bound address (with the real port when Config.Address
// asked for port 0).
func (l *Listener) Addr() net.Addr { return l.addr }

// Running reports whether the input still runs, for a liveness check: a
// tcp or udp input's gnet engine has ticked within the last
// engineStaleAfter (it ticks about every second, and its ticker ends with
// the engine); a tls input's accept loop has not ended. Event loops held
// by backpressure (a sink that blocks) run: they wait on purpose. False
// after Stop. Safe for concurrent use.
func (l *Listener) Running() bool { return !l.stopped.Load() && l.running() }

// Stop stops accepting, lets the reads in progress finish (a sink blocked
// in backpressure must be released by the pipeline's own shutdown), and
// closes every connection. It returns an error if ctx ends first. Calling
// Stop again returns the first result.
func (l *Listener) Stop(ctx context.Context) error {
	l.stopped.Store(true)
	l.stopOnce.Do(func() {
		start := time.Now()
		l.stopErr = l.stopFn(ctx)
		l.log.Info().Err(l.stopErr).Dur("took", time.Since(start)).Msg("stopped")
	})
	return l.stopErr
}

// checkPeer decides on a new connection from its TCP peer, before anything
// is read: with proxy_protocol the peer must be a trusted proxy (allow is
// applied later, to the source in the header), else it must be allowed. It
// returns the source to count against max_connections_per_source (invalid
// with proxy_protocol, where it is not known yet).
func (cm *common) checkPeer(peer netip.AddrPort) (netip.Addr, bool) {
	if cm.cfg.ProxyProtocol {
		if !inPrefixes(cm.cfg.TrustedProxies, peer.Addr()) {
			cm.m.rejectUntrusted.Inc()
			cm.sampled(logUntrusted).Warn().Str("peer", peer.String()).
				Msg("connection rejected: peer not in trusted_proxies may not send a PROXY header")
			return netip.Addr{}, false
		}
		return netip.Addr{}, true
	}
	if !allowedBy(cm.cfg.Allow, peer.Addr()) {
		cm.m.rejectAllow.Inc()
		cm.sampled(logAllow).Warn().Str("peer", peer.String()).Msg("connection rejected: source not in allow")
		return netip.Addr{}, false
	}
	return peer.Addr().Unmap(), true
}

// checkSource applies allow and max_connections_per_source to the source
// a trusted proxy's header carries. A LOCAL header (claimed is false; v2
// LOCAL, v1 UNKNOWN: a load balancer's health check) names no source: the
// connection is the trusted proxy's own, so allow, which is about the
// senders behind it, does not apply; it is counted
// (dtrelay_input_proxy_local_total) and logged at debug level only, and
// max_connections_per_source counts it against the proxy's address.
func (cm *common) checkSource(sl *slot, source netip.AddrPort, claimed bool) bool {
	if !claimed {
		cm.m.proxyLocal.Inc()
		cm.sampled(logProxyLocal).Debug().Str("peer", sl.peer.String()).
			Msg("PROXY LOCAL from a trusted proxy (health check): accepted")
	} else if !allowedBy(cm.cfg.Allow, source.Addr()) {
		cm.m.rejectAllow.Inc()
		cm.sampled(logAllow).Warn().Str("peer", sl.peer.String()).Str("source", source.String()).
			Msg("connection rejected: source in PROXY header not in allow")
		return false
	}
	if cm.slots.source(sl, source.Addr().Unmap()) != admitted {
		cm.rejectPerSource(sl.peer, source.Addr())
		return false
	}
	return true
}

// admit takes a slot for a connection whose peer passed checkPeer, closing
// the oldest connection without a frame when the cap is reached.
func (cm *common) admit(sl *slot, src netip.Addr) bool {
	res, victim := cm.slots.open(sl, src)
	switch res {
	case refusedPerSource:
		cm.rejectPerSource(sl.peer, src)
		return false
	case refusedFull:
		cm.m.rejectMax.Inc()
		cm.sampled(logMaxConns).Warn().Str("peer", sl.peer.String()).Int("max_connections", cm.cfg.MaxConnections).
			Msg("connection rejected: max_connections reached and every connection has completed a frame")
		return false
	}
	if victim != nil {
		cm.m.evicted.Inc()
		cm.sampled(logEvicted).Warn().Str("peer", victim.peer.String()).Str("new_peer", sl.peer.String()).
			Int("max_connections", cm.cfg.MaxConnections).
			Msg("max_connections reached: closed the oldest connection that has not completed a frame")
	}
	return true
}

func (cm *common) rejectAllow(remote netip.AddrPort) {
	cm.m.rejectAllow.Inc()
	cm.sampled(logAllow).Warn().Str("remote", remote.String()).Msg("datagram rejected: source not in allow")
}

func (cm *common) rejectPerSource(peer netip.AddrPort, src netip.Addr) {
	cm.m.rejectPerSource.Inc()
	cm.sampled(logPerSource).Warn().Str("peer", peer.String()).Str("source", src.String()).
		Int("max_connections_per_source", cm.cfg.MaxConnectionsPerSource).
		Msg("connection rejected: max_connections_per_source reached")
}

func (cm *common) idleClosed(peer netip.AddrPort) {
	cm.m.idleClosed.Inc()
	cm.sampled(logIdle).Info().Str("peer", peer.String()).Dur("idle_timeout", cm.cfg.IdleTimeout).Msg("closing idle connection")
}

// handshakeTimedOut counts and logs a connection closed in its handshake
// phase ("PROXY header" or "TLS handshake").
func (cm *common) handshakeTimedOut(peer netip.AddrPort, phase string) {
	cm.m.rejectHandshake.Inc()
	cm.sampled(logHandshake).Info().Str("peer", peer.String()).Str("phase", phase).Dur("handshake_timeout", cm.cfg.HandshakeTimeout).
		Msg("connection closed: handshake not done within handshake_timeout")
}

// partialOver closes a connection chosen by the partial-frame budget.
func (cm *common) partialOver(sl *slot, held int64) {
	if !cm.slots.kill(sl) {
		return
	}
	cm.m.partialCap.Inc()
	cm.sampled(logPartialCap).Warn().Str("peer", sl.peer.String()).Int64("held", held).Int64("max_partial_bytes", cm.partial.Max()).
		Msg("connection closed: partial frames above max_partial_bytes; it held the largest")
}

func (cm *common) proxyFailed(peer netip.AddrPort, err error) {
	cm.m.proxyErrors.Inc()
	cm.sampled(logProxyBad).Warn().Err(err).Str("peer", peer.String()).Msg("connection closed: bad PROXY protocol header")
}

// publish adds one read's counters to the metrics and logs (sampled) what
// was dropped.
func (cm *common) publish(st FramerStats, remote netip.AddrPort) {
	cm.m.publish(st)
	if st.Oversize > 0 {
		cm.sampled(logOversize).Warn().Str("remote", remote.String()).Uint64("count", st.Oversize).
			Int("max_message_size", cm.cfg.MaxMessageSize).Msg("frame over max_message_size skipped")
	}
	if st.Truncated > 0 {
		cm.sampled(logTruncated).Warn().Str("remote", remote.String()).Uint64("count", st.Truncated).
			Msg("datagram with an octet count past its end dropped")
	}
}

// closed publishes the counters of a connection's end: a last line
// delivered at its clean end, or a partial frame counted truncated.
func (cm *common) closed(st FramerStats, remote netip.AddrPort) {
	if st == (FramerStats{}) {
		return
	}
	cm.m.publish(st)
	if st.Truncated > 0 {
		cm.sampled(logTruncated).Warn().Str("remote", remote.String()).Msg("connection closed inside a frame; partial frame dropped")
	}
}

// reservePort prepares a UDP address for gnet, which binds one
// SO_REUSEPORT socket per event loop. A given port is probed first with a
// plain bind, since SO_REUSEPORT would otherwise share it silently with
// another process. Port 0 is made concrete (each loop would get its own
// port): a placeholder socket, itself SO_REUSEPORT, holds the port until
// release is called, once gnet has bound it. TCP addresses are returned
// unchanged.
func reservePort(cfg Config) (string, func(), error) {
	host, port, _ := net.SplitHostPort(cfg.Address)
	if cfg.Protocol != ProtocolUDP {
		return cfg.Address, func() {}, nil
	}
	if port != "0" && port != "" {
		probe, err := net.ListenPacket("udp", cfg.Address)
		if err != nil {
			return "", nil, fmt.Errorf("cannot listen on udp %s: %w", cfg.Address, err)
		}
		_ = probe.Close()
		return cfg.Address, func() {}, nil
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); serr == nil {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp", cfg.Address)
	if err != nil {
		return "", nil, fmt.Errorf("cannot listen on udp %s: %w", cfg.Address, err)
	}
	p := pc.LocalAddr().(*net.UDPAddr).Port
	return net.JoinHostPort(host, strconv.Itoa(p)), func() { _ = pc.Close() }, nil
}
