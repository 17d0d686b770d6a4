package receiver

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// Listener is one running input. Addr and Stop are safe for concurrent use.
type Listener struct {
	cfg      Config
	addr     net.Addr
	log      zerolog.Logger
	stopFn   func(context.Context) error
	stopOnce sync.Once
	stopErr  error
}

// common is what the gnet and TLS servers share: configuration, sink pool,
// metrics, loggers and the connection gate. It is read-only after Start
// (the gate and metrics are concurrency-safe).
type common struct {
	cfg     Config
	pool    SinkPool
	m       *Metrics
	log     zerolog.Logger
	sampled zerolog.Logger // per-message and per-connection problems
	gate    gate
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
	cm := &common{
		cfg:     cfg,
		pool:    pool,
		m:       m,
		log:     log,
		sampled: log.Sample(&zerolog.BurstSampler{Burst: 5, Period: 10 * time.Second}),
		gate:    gate{allow: cfg.Allow, max: int64(cfg.MaxConnections)},
	}
	l := &Listener{cfg: cfg, log: log}
	switch cfg.Protocol {
	case ProtocolTLS:
		ts, err := startTLS(cm)
		if err != nil {
			return nil, err
		}
		l.addr, l.stopFn = ts.ln.Addr(), ts.stop
	default:
		gs, stop, err := startGnet(cm)
		if err != nil {
			return nil, err
		}
		l.addr, l.stopFn = gs.boundAddr, stop
	}
	log.Info().Str("address", l.addr.String()).Int("max_message_size", cfg.MaxMessageSize).
		Int("max_connections", cfg.MaxConnections).Dur("idle_timeout", cfg.IdleTimeout).
		Bool("proxy_protocol", cfg.ProxyProtocol).Int("allow", len(cfg.Allow)).Msg("listening")
	return l, nil
}

// Addr returns the bound address (with the real port when Config.Address
// asked for port 0).
func (l *Listener) Addr() net.Addr { return l.addr }

// Stop stops accepting, lets the reads in progress finish (a sink blocked
// in backpressure must be released by the pipeline's own shutdown), and
// closes every connection. It returns an error if ctx ends first. Calling
// Stop again returns the first result.
func (l *Listener) Stop(ctx context.Context) error {
	l.stopOnce.Do(func() {
		start := time.Now()
		l.stopErr = l.stopFn(ctx)
		l.log.Info().Err(l.stopErr).Dur("took", time.Since(start)).Msg("stopped")
	})
	return l.stopErr
}

func (cm *common) rejectAllow(remote netip.AddrPort) {
	cm.m.rejectAllow.Inc()
	cm.sampled.Warn().Str("remote", remote.String()).Msg("connection rejected: source not in allow")
}

func (cm *common) rejectMax(remote netip.AddrPort) {
	cm.m.rejectMax.Inc()
	cm.sampled.Warn().Str("remote", remote.String()).Int("max_connections", cm.cfg.MaxConnections).
		Msg("connection rejected: max_connections reached")
}

func (cm *common) proxyFailed(remote netip.AddrPort, err error) {
	cm.m.proxyErrors.Inc()
	cm.sampled.Warn().Err(err).Str("remote", remote.String()).Msg("connection closed: bad PROXY protocol header")
}

// publish adds one read's counters to the metrics and logs (sampled) what
// was dropped.
func (cm *common) publish(st FramerStats, remote netip.AddrPort) {
	cm.m.publish(st)
	if st.Oversize > 0 {
		cm.sampled.Warn().Str("remote", remote.String()).Uint64("count", st.Oversize).
			Int("max_message_size", cm.cfg.MaxMessageSize).Msg("frame over max_message_size skipped")
	}
	if st.Truncated > 0 {
		cm.sampled.Warn().Str("remote", remote.String()).Uint64("count", st.Truncated).
			Msg("datagram with an octet count past its end dropped")
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
