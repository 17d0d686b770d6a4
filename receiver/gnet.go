package receiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// readBufferCap is gnet's per-event-loop read size: the most one OnTraffic
// sees. Every byte is consumed inside OnTraffic, so gnet's per-connection
// inbound buffer stays empty. 64 KiB also holds any UDP datagram whole.
const readBufferCap = 64 << 10

// DefaultUDPRecvBuffer is the kernel receive buffer asked for UDP sockets
// (capped by net.core.rmem_max) to absorb bursts while a sink blocks, when
// Config.UDPRecvBuffer is zero. What overflows it is dropped by the kernel
// and counted kernel_drop.
const DefaultUDPRecvBuffer = 4 << 20

// gnetServer is the gnet.EventHandler of one tcp or udp input. Callbacks
// other than OnTick run on the connection's event loop; OnTick runs on the
// engine's ticker goroutine and touches only atomics and the connection
// table (cm.slots, under its mutex).
type gnetServer struct {
	gnet.BuiltinEventEngine
	*common

	udp   bool
	tick  time.Duration
	clock atomic.Int64 // UnixNano, refreshed by OnTick
	beat  atomic.Int64 // monoNow of the last OnTick (running)

	engine    gnet.Engine
	bootErr   error
	boundAddr net.Addr
	ready     chan struct{}
	readyOnce sync.Once
}

// gconn is the state of one TCP connection, kept in gnet.Conn's context.
// Everything but the atomics (and the slot, see slots) belongs to the
// connection's event loop.
type gconn struct {
	slot
	c        gnet.Conn
	remote   netip.AddrPort // the peer, or the source from the PROXY header
	framer   Framer
	proxy    *proxyReader // non-nil until the PROXY header is read (the handshake phase)
	framed   bool         // a frame was completed
	opened   bool         // ConnObserver.Opened was called
	hold     partialHold
	lastRead atomic.Int64 // clock of the last read
	progress atomic.Int64 // clock of the last read that left no partial frame or completed one
}

func newGnetServer(cm *common) *gnetServer {
	s := &gnetServer{
		common: cm,
		udp:    cm.cfg.Protocol == ProtocolUDP,
		ready:  make(chan struct{}),
		tick:   time.Second,
	}
	ticks := []time.Duration{cm.cfg.IdleTimeout / 4}
	if cm.cfg.ProxyProtocol { // the only handshake phase on this path
		ticks = append(ticks, cm.cfg.HandshakeTimeout/4)
	}
	for _, t := range ticks {
		if t > 0 && t < s.tick {
			s.tick = max(t, 5*time.Millisecond)
		}
	}
	if !s.udp {
		// A connection whose bytes wait unread in the kernel is held back
		// by a blocked event loop (backpressure), not by its sender.
		cm.slots.evictable = func(sl *slot) bool { return unreadBytes(sl.fd) == 0 }
	}
	s.clock.Store(time.Now().UnixNano())
	s.beat.Store(monoNow())
	return s
}

// startGnet runs a gnet engine for cm's tcp or udp input and returns once
// it accepts traffic.
func startGnet(cm *common) (*gnetServer, func(context.Context) error, error) {
	s := newGnetServer(cm)
	addr, release, err := reservePort(cm.cfg)
	if err != nil {
		return nil, nil, err
	}
	defer release()
	opts := []gnet.Option{
		gnet.WithNumEventLoop(cm.cfg.EventLoops),
		gnet.WithReuseAddr(true),
		gnet.WithReadBufferCap(readBufferCap),
		gnet.WithTicker(true),
		gnet.WithLogger(gnetLogger{cm.log.With().Str("component", "gnet").Logger()}),
		gnet.WithLoadBalancing(gnet.LeastConnections),
	}
	if s.udp {
		opts = append(opts, gnet.WithSocketRecvBuffer(cm.cfg.UDPRecvBuffer))
	}
	runErr := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		runErr <- gnet.Run(s, cm.cfg.Protocol+"://"+addr, opts...)
	}()
	select {
	case <-s.ready:
	case err := <-runErr:
		if err == nil {
			err = s.bootErr
		}
		return nil, nil, fmt.Errorf("cannot listen on %s %s: %w", cm.cfg.Protocol, cm.cfg.Address, err)
	}
	if s.bootErr != nil {
		_ = s.stop(context.Background(), done)
		return nil, nil, fmt.Errorf("cannot listen on %s %s: %w", cm.cfg.Protocol, cm.cfg.Address, s.bootErr)
	}
	if s.udp {
		if s.boundAddr, err = net.ResolveUDPAddr("udp", addr); err != nil {
			_ = s.stop(context.Background(), done)
			return nil, nil, fmt.Errorf("cannot resolve udp %s: %w", addr, err)
		}
		release() // the placeholder must not be taken for one of ours
		s.watchKernelDrops()
	}
	return s, func(ctx context.Context) error { return s.stop(ctx, done) }, nil
}

// engineStaleAfter is how long a gnet engine may go without a tick before
// Listener.Running reports it stopped: many ticks (one a second at most).
const engineStaleAfter = 15 * time.Second

var monoBase = time.Now()

// monoNow is a monotonic clock in nanoseconds.
func monoNow() int64 { return int64(time.Since(monoBase)) }

// running reports whether the engine ticked lately (Listener.Running).
func (s *gnetServer) running() bool {
	return monoNow()-s.beat.Load() <= int64(engineStaleAfter)
}

// watchKernelDrops exports the kernel's drop counter of the udp input's
// sockets, every event loop's one being bound once the engine ticks.
func (s *gnetServer) watchKernelDrops() {
	k := newKernelDrops(addrPortOf(s.boundAddr))
	if k == nil {
		s.log.Warn().Msg("cannot find this input's UDP sockets: datagrams the kernel drops are not counted (kernel_drop)")
		return
	}
	s.m.watchKernelDrops(k.total)
	s.log.Debug().Int("sockets", k.sockets()).Msg("counting kernel drops of the UDP sockets")
}

// stop shuts the engine down: the listener closes, each event loop finishes
// its current callback, then every connection is closed (OnClose).
func (s *gnetServer) stop(ctx context.Context, done <-chan struct{}) error {
	go func() { _ = s.engine.Stop(ctx) }() // polls every 500 ms; done is quicker
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cannot stop input %s: %w", s.cfg.Name, ctx.Err())
	}
}

// OnBoot records the engine and, for TCP, the bound address.
func (s *gnetServer) OnBoot(eng gnet.Engine) gnet.Action {
	s.engine = eng
	if s.udp {
		return gnet.None
	}
	fd, err := eng.Dup()
	if err != nil {
		s.bootErr = fmt.Errorf("cannot duplicate listener: %w", err)
		return gnet.None
	}
	defer unix.Close(fd)
	sa, err := unix.Getsockname(fd)
	if err != nil {
		s.bootErr = fmt.Errorf("cannot read listener address: %w", err)
		return gnet.None
	}
	s.boundAddr = sockaddrToTCP(sa)
	return gnet.None
}

// OnTick refreshes the coarse clock, signals readiness and closes
// connections past handshake_timeout or idle_timeout.
func (s *gnetServer) OnTick() (time.Duration, gnet.Action) {
	now := time.Now().UnixNano()
	s.clock.Store(now)
	s.beat.Store(monoNow())
	s.readyOnce.Do(func() { close(s.ready) })
	if !s.udp {
		s.sweep(now)
	}
	return s.tick, gnet.None
}

// sweep closes the connections (proxy_protocol) that have not sent their
// PROXY header within HandshakeTimeout of their accept and, with an
// IdleTimeout, those silent for that long or holding a partial frame for
// that long. Past the header (a plain tcp connection from its accept)
// nothing but IdleTimeout closes a connection by time, framed or not. A
// connection being read, or with bytes waiting in the kernel that its
// event loop has not read yet, is held back by a blocked sink
// (backpressure): by us, not by the sender; it is left alone.
func (s *gnetServer) sweep(now int64) {
	stuck := func(sl *slot) bool { return sl.busy.Load() || unreadBytes(sl.fd) > 0 }
	s.slots.expired(now-s.cfg.HandshakeTimeout.Nanoseconds(), func(sl *slot) bool {
		if stuck(sl) || !sl.closing.CompareAndSwap(false, true) {
			return false
		}
		s.handshakeTimedOut(sl.peer, "PROXY header")
		sl.kill()
		return true
	})
	if s.cfg.IdleTimeout <= 0 {
		return
	}
	limit := s.cfg.IdleTimeout.Nanoseconds()
	s.slots.each(func(sl *slot) {
		gc := sl.owner.(*gconn)
		if now-gc.lastRead.Load() <= limit && now-gc.progress.Load() <= limit {
			return
		}
		if stuck(sl) || !sl.closing.CompareAndSwap(false, true) {
			return
		}
		s.idleClosed(sl.peer)
		sl.kill()
	})
}

// OnOpen checks the peer before anything is read: with proxy_protocol it
// must be in trusted_proxies, else in allow. It then takes a slot (see
// slots.open) and sets up the connection.
func (s *gnetServer) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	peer := addrPortOf(c.RemoteAddr())
	src, ok := s.checkPeer(peer)
	if !ok {
		return nil, gnet.Close
	}
	fd := c.Fd()
	gc := &gconn{c: c, remote: peer}
	gc.slot = slot{peer: peer, fd: fd, opened: time.Now().UnixNano(), owner: gc,
		// Called with the table locked while gc is registered: OnClose,
		// which unregisters it, runs before gnet closes the descriptor,
		// so fd is still gc's. The shutdown wakes the event loop, whose
		// read sees the end of the stream and closes the connection.
		kill: func() { _ = unix.Shutdown(fd, unix.SHUT_RDWR) }}
	if !s.admit(&gc.slot, src) {
		return nil, gnet.Close
	}
	if ka := s.cfg.KeepAlive; ka > 0 {
		if err := c.SetKeepAlive(true, ka, keepAliveInterval(ka), KeepAliveProbes); err != nil {
			s.sampled(logSocket).Warn().Err(err).Msg("cannot set TCP keep-alive")
		}
	}
	gc.framer.Init(s.cfg.MaxMessageSize)
	if s.cfg.ProxyProtocol {
		gc.proxy = &proxyReader{}
	} else {
		gc.opened = true
		s.connOpened(gc.remote)
	}
	gc.hold.over = func(held int64) { s.partialOver(&gc.slot, held) }
	s.partial.register(&gc.hold)
	now := s.clock.Load()
	gc.lastRead.Store(now)
	gc.progress.Store(now)
	c.SetContext(gc)
	s.m.opened()
	return nil, gnet.None
}

// OnClose releases the slot of an accepted connection. At a clean end of
// file (the peer's FIN, not a reset, a shutdown or our own close: those
// set closing first) a last line without its LF or NUL is delivered if the
// sink takes it as a complete message (Framer.Finish); any other partial
// frame is counted truncated.
func (s *gnetServer) OnClose(c gnet.Conn, err error) gnet.Action {
	gc, ok := c.Context().(*gconn)
	if !ok {
		return gnet.None // rejected in OnOpen
	}
	c.SetContext(nil)
	s.slots.close(&gc.slot)
	s.m.closed()
	if gc.framer.Pending() && errors.Is(err, io.EOF) && !gc.closing.Load() {
		sink := s.getSink(gc.remote)
		gc.framer.Finish(sink)
		sink.Flush()
		s.pool.Put(sink)
	} else {
		gc.framer.End()
	}
	s.partial.release(&gc.hold)
	s.closed(gc.framer.TakeStats(), gc.remote)
	if gc.opened {
		s.connClosed(gc.remote)
	}
	return gnet.None
}

// OnTraffic frames everything gnet read and discards it: nothing from Peek
// survives the call and the inbound buffer stays empty.
func (s *gnetServer) OnTraffic(c gnet.Conn) gnet.Action {
	data, _ := c.Peek(-1)
	if s.udp {
		s.datagram(c, data)
		_, _ = c.Discard(-1)
		return gnet.None
	}
	gc, ok := c.Context().(*gconn)
	if !ok || gc.closing.Load() {
		// Closing (timeout, eviction, partial cap): what the peer sent
		// since the decision is dropped with the connection.
		_, _ = c.Discard(-1)
		return gnet.Close
	}
	gc.busy.Store(true)
	defer gc.busy.Store(false)
	gc.lastRead.Store(s.clock.Load())
	if gc.proxy != nil {
		var act gnet.Action
		if data, act = s.proxyHeader(gc, data); data == nil {
			_, _ = c.Discard(-1)
			return act
		}
	}
	sink := s.getSink(gc.remote)
	gc.framer.Feed(data, sink)
	sink.Flush()
	s.pool.Put(sink)
	_, _ = c.Discard(-1)
	// Read the clock after the sink returned: time spent blocked in it
	// (backpressure) is not the sender's idleness.
	now := s.clock.Load()
	gc.lastRead.Store(now)
	st := gc.framer.TakeStats()
	if st.Frames > 0 || !gc.framer.Pending() {
		gc.progress.Store(now)
	}
	if st.Frames > 0 && !gc.framed {
		gc.framed = true
		s.slots.framed(&gc.slot) // once per connection: no longer evictable
	}
	s.partial.set(&gc.hold, int64(gc.framer.Held()))
	s.publish(st, gc.remote)
	return gnet.None
}

// proxyHeader reads the PROXY header, then applies allow and
// max_connections_per_source to the source it names (gc.remote from then
// on). A LOCAL header (v2 LOCAL, v1 UNKNOWN) names no source: the
// connection is the proxy's own, and its source is the proxy. It returns
// the data after the header, or nil and the action to take: None while the
// header is incomplete, Close when it is bad or the source is refused.
func (s *gnetServer) proxyHeader(gc *gconn, data []byte) ([]byte, gnet.Action) {
	done, src, rest, err := gc.proxy.feed(data)
	switch {
	case err != nil:
		s.proxyFailed(gc.peer, err)
		return nil, gnet.Close
	case !done:
		return nil, gnet.None
	}
	gc.proxy = nil
	s.slots.handshaken(&gc.slot) // once per connection: handshake_timeout no longer applies
	if src.IsValid() {
		gc.remote = src
	}
	if !s.checkSource(&gc.slot, gc.remote, src.IsValid()) {
		return nil, gnet.Close
	}
	gc.opened = true
	s.connOpened(gc.remote)
	if rest == nil {
		rest = data[:0]
	}
	return rest, gnet.None
}

// datagram frames one UDP datagram. The Framer lives on the stack: a
// datagram never leaves a partial frame.
func (s *gnetServer) datagram(c gnet.Conn, data []byte) {
	remote := addrPortOf(c.RemoteAddr())
	if !allowedBy(s.cfg.Allow, remote.Addr()) {
		s.rejectAllow(remote)
		return
	}
	var f Framer
	f.max = s.cfg.MaxMessageSize
	sink := s.getSink(remote)
	f.FeedDatagram(data, sink)
	sink.Flush()
	s.pool.Put(sink)
	s.publish(f.stats, remote)
}

// sockaddrToTCP converts a bound listener's address.
func sockaddrToTCP(sa unix.Sockaddr) net.Addr {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]).To16(), Port: sa.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]), Port: sa.Port}
	}
	return nil
}

// gnetLogger routes gnet's own log lines to zerolog (gnet's default logger
// writes to stdout, which carries data only). gnet's Info is demoted to
// Debug; Fatalf logs an error and does not exit.
type gnetLogger struct{ log zerolog.Logger }

func (l gnetLogger) Debugf(format string, args ...any) { l.log.Debug().Msgf(format, args...) }
func (l gnetLogger) Infof(format string, args ...any)  { l.log.Debug().Msgf(format, args...) }
func (l gnetLogger) Warnf(format string, args ...any)  { l.log.Warn().Msgf(format, args...) }
func (l gnetLogger) Errorf(format string, args ...any) { l.log.Error().Msgf(format, args...) }
func (l gnetLogger) Fatalf(format string, args ...any) { l.log.Error().Msgf(format, args...) }
