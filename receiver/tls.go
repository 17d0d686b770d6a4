package receiver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// tlsReadBuffer is the per-connection read buffer of the TLS path.
const tlsReadBuffer = 64 << 10

// tlsServer runs one tls input: an accept goroutine and one goroutine per
// connection, each with its own Framer and read buffer. The accept
// goroutine checks the peer and takes the connection's slot before a
// goroutine is started or a byte read, so silent connects cost a slot
// (bounded by max_connections and handshake_timeout; past the handshake,
// evictable until the first frame), nothing more. conns
// is guarded by mu; everything else is read-only or atomic.
type tlsServer struct {
	*common
	ln      net.Listener
	bufs    sync.Pool // *[]byte of tlsReadBuffer bytes
	closing atomic.Bool
	done    chan struct{} // closed when the accept loop ends

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startTLS(cm *common) (*tlsServer, error) {
	lc := net.ListenConfig{Control: reuseAddrControl}
	if ka := cm.cfg.KeepAlive; ka > 0 {
		lc.KeepAliveConfig = net.KeepAliveConfig{Enable: true, Idle: ka, Interval: keepAliveInterval(ka), Count: KeepAliveProbes}
	} else {
		lc.KeepAlive = -1
	}
	ln, err := lc.Listen(context.Background(), "tcp", cm.cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on tls %s: %w", cm.cfg.Address, err)
	}
	s := &tlsServer{common: cm, ln: ln, done: make(chan struct{}), conns: make(map[net.Conn]struct{})}
	s.bufs.New = func() any { b := make([]byte, tlsReadBuffer); return &b }
	go s.acceptLoop()
	return s, nil
}

// running reports whether the accept loop runs (Listener.Running).
func (s *tlsServer) running() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// reuseAddrControl sets SO_REUSEADDR so that a restart binds at once while
// old connections linger.
func reuseAddrControl(_, _ string, rc syscall.RawConn) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}); err != nil {
		return err
	}
	return serr
}

func (s *tlsServer) acceptLoop() {
	defer close(s.done)
	var delay time.Duration
	for {
		raw, err := s.ln.Accept()
		if err != nil {
			if s.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: back off as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.sampled(logAccept).Error().Err(err).Dur("retry_in", delay).Msg("cannot accept connection")
			time.Sleep(delay)
			continue
		}
		delay = 0
		sl, ok := s.admitConn(raw)
		if !ok {
			_ = raw.Close()
			continue
		}
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			s.slots.close(sl)
			_ = raw.Close()
			return
		}
		s.conns[raw] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(raw, sl)
	}
}

// admitConn applies trusted_proxies or allow to the peer and takes a slot
// (possibly evicting the oldest connection without a frame).
func (s *tlsServer) admitConn(raw net.Conn) (*slot, bool) {
	peer := addrPortOf(raw.RemoteAddr())
	src, ok := s.checkPeer(peer)
	if !ok {
		return nil, false
	}
	// Close is safe from any goroutine and never reaches another
	// connection: the serving goroutine's Read returns an error.
	sl := &slot{peer: peer, fd: -1, opened: time.Now().UnixNano(), kill: func() { _ = raw.Close() }}
	if !s.admit(sl, src) {
		return nil, false
	}
	return sl, true
}

// stop closes the listener, interrupts every read with a past deadline so
// that data already read is framed and delivered, and waits for the
// connection goroutines; when ctx ends first it closes the connections.
func (s *tlsServer) stop(ctx context.Context) error {
	s.closing.Store(true)
	_ = s.ln.Close()
	<-s.done
	s.mu.Lock()
	for c := range s.conns {
		_ = c.SetReadDeadline(time.Unix(1, 0))
	}
	s.mu.Unlock()
	finished := make(chan struct{})
	go func() { s.wg.Wait(); close(finished) }()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
		return fmt.Errorf("cannot stop input %s: %w", s.cfg.Name, ctx.Err())
	}
}

// setReadDeadline sets d unless the server is stopping, in which case the
// past deadline set by stop must stand; it reports whether to go on.
func (s *tlsServer) setReadDeadline(c net.Conn, d time.Time) bool {
	_ = c.SetReadDeadline(d)
	return !s.closing.Load()
}

// serve runs one admitted connection. One deadline, handshake_timeout
// after the accept, bounds the handshake phase: the PROXY header and the
// TLS handshake. Past it only idle_timeout closes the connection by time,
// whether it has completed a frame or not.
func (s *tlsServer) serve(raw net.Conn, sl *slot) {
	defer s.wg.Done()
	defer func() {
		s.slots.close(sl)
		s.mu.Lock()
		delete(s.conns, raw)
		s.mu.Unlock()
		_ = raw.Close()
	}()
	remote := sl.peer
	opened := time.Unix(0, sl.opened)
	hs := opened.Add(s.cfg.HandshakeTimeout)
	// A shorter idle_timeout closes a connection silent since the accept
	// earlier, as on the gnet path.
	idleFirst := false
	if idle := s.cfg.IdleTimeout; idle > 0 && opened.Add(idle).Before(hs) {
		hs, idleFirst = opened.Add(idle), true
	}
	timedOut := func(phase string) {
		if idleFirst {
			s.idleClosed(sl.peer)
		} else {
			s.handshakeTimedOut(sl.peer, phase)
		}
	}
	if !s.setReadDeadline(raw, hs) {
		return
	}
	_ = raw.SetWriteDeadline(hs)
	var conn net.Conn = raw
	if s.cfg.ProxyProtocol {
		src, rest, err := readProxyHeader(raw)
		switch {
		case sl.closing.Load(), s.closing.Load(): // evicted, or the input stops
			return
		case errors.Is(err, os.ErrDeadlineExceeded):
			timedOut("PROXY header")
			return
		case err != nil:
			s.proxyFailed(sl.peer, err)
			return
		}
		if src.IsValid() {
			remote = src
		}
		if !s.checkSource(sl, remote, src.IsValid()) {
			return
		}
		conn = &prefixConn{Conn: raw, pre: rest}
	}
	tc := tls.Server(conn, s.cfg.TLS)
	if err := tc.Handshake(); err != nil {
		switch {
		case sl.closing.Load(), s.closing.Load():
		case errors.Is(err, os.ErrDeadlineExceeded):
			timedOut("TLS handshake")
		default:
			s.m.rejectTLS.Inc()
			s.sampled(logTLS).Warn().Err(err).Str("remote", remote.String()).Msg("connection rejected: TLS handshake failed")
		}
		return
	}
	_ = raw.SetWriteDeadline(time.Time{})
	s.slots.handshaken(sl)
	s.m.opened()
	defer s.m.closed()
	s.connOpened(remote)
	defer s.connClosed(remote)
	s.readLoop(tc, raw, sl, remote)
}

// readLoop frames the connection until EOF, an error, an idle timeout or
// stop. The read deadline is the idle timeout counted from the last read
// (the handshake's end at first), or from the last progress while a
// partial frame is pending; none without idle_timeout.
func (s *tlsServer) readLoop(tc *tls.Conn, raw net.Conn, sl *slot, remote netip.AddrPort) {
	bufp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bufp)
	buf := *bufp
	var f Framer
	f.Init(s.cfg.MaxMessageSize)
	hold := partialHold{over: func(held int64) { s.partialOver(sl, held) }}
	s.partial.register(&hold)
	idle := s.cfg.IdleTimeout
	framed := false
	lastRead := time.Now()
	progress := lastRead
	for {
		var deadline time.Time
		if idle > 0 {
			deadline = lastRead.Add(idle)
			if f.Pending() {
				deadline = progress.Add(idle)
			}
		}
		if !s.setReadDeadline(raw, deadline) {
			break
		}
		n, err := tc.Read(buf)
		if n > 0 {
			sl.busy.Store(true)
			sink := s.getSink(remote)
			f.Feed(buf[:n], sink)
			sink.Flush()
			s.pool.Put(sink)
			sl.busy.Store(false)
			// Idleness counts from when the sink returned, not from the
			// read: time blocked in it (backpressure) is ours.
			lastRead = time.Now()
			st := f.TakeStats()
			if st.Frames > 0 || !f.Pending() {
				progress = lastRead
			}
			if st.Frames > 0 && !framed {
				framed = true
				s.slots.framed(sl) // once per connection: no longer evictable
			}
			s.partial.set(&hold, int64(f.Held()))
			s.publish(st, remote)
		}
		if err != nil {
			s.readEnded(err, sl, remote)
			s.endStream(&f, err, sl, remote)
			break
		}
	}
	f.End() // when stopped by setReadDeadline
	s.partial.release(&hold)
	s.closed(f.TakeStats(), remote)
}

// endStream ends f when its connection's read failed with err. At a clean
// end of file (io.EOF: the peer's close_notify, or its FIN at a record
// boundary; not our own close or stop) a last line without its LF or NUL
// is delivered if the sink takes it as a complete message (Framer.Finish).
func (s *tlsServer) endStream(f *Framer, err error, sl *slot, remote netip.AddrPort) {
	if !f.Pending() || !errors.Is(err, io.EOF) || sl.closing.Load() || s.closing.Load() {
		f.End()
		return
	}
	sink := s.getSink(remote)
	f.Finish(sink)
	sink.Flush()
	s.pool.Put(sink)
}

// readEnded logs and counts why a read failed.
func (s *tlsServer) readEnded(err error, sl *slot, remote netip.AddrPort) {
	switch {
	case s.closing.Load(), sl.closing.Load(), errors.Is(err, io.EOF):
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.idleClosed(remote)
	default:
		s.sampled(logReadEnded).Debug().Err(err).Str("remote", remote.String()).Msg("connection read ended")
	}
}

// readProxyHeader reads a PROXY header from c without reading past it into
// the TLS stream more than one read's worth; the bytes after the header are
// returned for the TLS layer.
func readProxyHeader(c net.Conn) (netip.AddrPort, []byte, error) {
	buf := make([]byte, proxyMaxHeader)
	have := 0
	for {
		k, err := c.Read(buf[have:])
		have += k
		n, src, perr := parseProxyHeader(buf[:have])
		switch {
		case perr == nil:
			return src, buf[n:have], nil
		case !errors.Is(perr, errProxyShort):
			return src, nil, perr
		case err != nil:
			return src, nil, fmt.Errorf("cannot read PROXY header: %w", err)
		case have == len(buf):
			return src, nil, fmt.Errorf("%w: longer than %d bytes", ErrProxyHeader, len(buf))
		}
	}
}

// prefixConn serves pre before reading from the connection.
type prefixConn struct {
	net.Conn
	pre []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(b, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}
