package output

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/forward"
)

// Defaults of the syslog sender.
const (
	DefaultDialTimeout  = 10 * time.Second
	DefaultWriteTimeout = 30 * time.Second
	DefaultAckTimeout   = 30 * time.Second
)

// SyslogConfig configures a syslog output: TCP or TLS to Address.
type SyslogConfig struct {
	// Address is host:port.
	Address string
	// TLS enables TLS; TLSClientConfig then applies (the server name
	// defaults to the host of Address).
	TLS bool
	TLSClientConfig
	// SyslogEncoderConfig is the wire format, used by Encoder.
	SyslogEncoderConfig
	// DialTimeout bounds connecting, TLS handshake included.
	DialTimeout time.Duration
	// WriteTimeout bounds writing one batch to the socket.
	WriteTimeout time.Duration
	// AckTimeout bounds the wait, after writing, for the peer's TCP stack to
	// acknowledge every byte. A peer that stops reading makes Send fail
	// after it; the batch is then sent again on a new connection.
	AckTimeout time.Duration
}

// SyslogSender writes batches to a syslog intake over TCP or TLS. The
// batch's Data is written as is: framing is the encoder's job.
//
// Delivery (DESIGN.md §4): Send returns nil only once the peer's TCP stack
// has acknowledged every byte written (the socket's SIOCOUTQ count is back to
// zero), waiting at most AckTimeout. Before writing, Send checks that the
// connection is still alive with a non-blocking MSG_PEEK on the socket; a
// per-connection goroutine also reads (and discards) whatever the peer sends,
// TLS records included, so that a close is seen at once. No keep-alive
// probes are sent: an idle output costs nothing, and a peer that went away
// meanwhile is noticed by the next Send, which reconnects first. On any
// failure the connection is closed and the error returned; the batcher sends
// the batch again, on a new connection, and the events of which at least
// one byte had been written are counted as possible duplicates.
//
// A batch acknowledged by a peer that then reports an error (a TLS alert, a
// reset) is not taken as delivered. With TLS 1.3 and a server that asks for a
// client certificate, a new connection is used only once the server has
// accepted the certificate (see awaitVerdict).
//
// A rejected certificate, the server's or ours, is retried like any other
// failure (counted "tls_certificate"), never dropped. Failure reasons
// counted: connect, tls_handshake, tls_certificate, write, write_timeout,
// unacked (AckTimeout passed), reset (the peer closed with bytes
// unacknowledged, or said why it closed), ack_check. Send and Close are
// called by one goroutine at a time.
type SyslogSender struct {
	cfg   SyslogConfig
	tls   *tls.Config
	conn  *syslogConn
	ever  bool // a connection was made before: the next one is a reconnect
	timer *time.Timer
	bufs  net.Buffers // a vectored batch's slices, for writev
	wr    net.Buffers // what of bufs is still to write
	m     *sendMetrics
	log   zerolog.Logger
}

// NewSyslogSender returns a sender for cfg. It does not connect: the first
// Send does.
func NewSyslogSender(cfg SyslogConfig, set *metrics.Set, name string, log zerolog.Logger) (*SyslogSender, error) {
	host, _, err := net.SplitHostPort(cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("forward: syslog address %q is not host:port", cfg.Address)
	}
	if _, err := NewSyslogEncoder(cfg.SyslogEncoderConfig); err != nil {
		return nil, err
	}
	if set == nil {
		set = metrics.NewSet()
	}
	s := &SyslogSender{cfg: cfg, m: newSendMetrics(set, name), log: log.With().Str("output", name).Logger()}
	if cfg.TLS {
		if s.tls, err = cfg.TLSClientConfig.build(host); err != nil {
			return nil, err
		}
	}
	if s.cfg.DialTimeout <= 0 {
		s.cfg.DialTimeout = DefaultDialTimeout
	}
	if s.cfg.WriteTimeout <= 0 {
		s.cfg.WriteTimeout = DefaultWriteTimeout
	}
	if s.cfg.AckTimeout <= 0 {
		s.cfg.AckTimeout = DefaultAckTimeout
	}
	s.timer = time.NewTimer(time.Hour)
	s.timer.Stop()
	return s, nil
}

// Encoder returns a new SyslogEncoder for the configured format and framing.
// Over plain TCP with octet-counting it is a forward.SplitEncoder: the
// batches are vectored and Send writes them with writev, the payloads
// straight from their blocks.
func (s *SyslogSender) Encoder() forward.Encoder {
	e, _ := NewSyslogEncoder(s.cfg.SyslogEncoderConfig) // validated by NewSyslogSender
	if !s.cfg.TLS && !e.newline {
		return splitSyslogEncoder{e}
	}
	return e
}

// Send implements Sender.
func (s *SyslogSender) Send(ctx context.Context, b *forward.Batch) error {
	if b.Size() == 0 {
		return nil
	}
	if s.conn != nil {
		if err := s.conn.alive(); err != nil {
			s.log.Info().Err(err).Msg("intake closed the idle connection; reconnecting")
			s.drop()
		}
	}
	if s.conn == nil {
		if err := s.connect(ctx); err != nil {
			return err
		}
	}
	var n int
	var err error
	if b.Vectored() {
		s.bufs = b.AppendBuffers(s.bufs[:0])
		s.wr = s.bufs // WriteTo consumes its slice: s.bufs keeps the storage
		n, err = s.conn.writeBuffers(ctx, &s.wr, s.cfg.WriteTimeout)
		clear(s.bufs) // drop the references to blocks
	} else {
		n, err = s.conn.write(ctx, b.Data, s.cfg.WriteTimeout)
	}
	reason := "write"
	if isTimeout(err) {
		reason = "write_timeout"
	}
	if err == nil {
		reason, err = s.conn.waitAcked(ctx, s.cfg.AckTimeout, s.timer)
	}
	if err == nil {
		// Acknowledged; but a peer that said why it closes (a TLS alert, a
		// reset) may not have taken the batch.
		if perr := s.conn.peerError(); perr != nil {
			reason, err = "reset", fmt.Errorf("%w: %w", errPeerClosed, perr)
		}
	} else if perr := s.conn.peerError(); perr != nil {
		err = fmt.Errorf("%w (the intake: %w)", err, perr)
	}
	if err != nil {
		s.drop()
		s.m.duplicates.Add(eventsBefore(b, n))
		if ctx.Err() == nil {
			s.m.failure(reason)
		}
		return fmt.Errorf("cannot deliver batch to %s: %w", s.cfg.Address, err)
	}
	return nil
}

// connect dials the intake (and shakes hands).
func (s *SyslogSender) connect(ctx context.Context) error {
	var verdict *ticketSignal
	if s.tls != nil {
		verdict = &ticketSignal{ch: make(chan struct{})}
	}
	d, err := dialIntake(ctx, s.cfg.Address, s.tls, s.cfg.DialTimeout, verdict, s.m)
	if err != nil {
		return err
	}
	if !d.asked || d.version != tls.VersionTLS13 {
		verdict = nil // nothing left to check (TLS 1.2: the server's Finished was the verdict)
	}
	c := newSyslogConn(d.conn, d.tcp, d.raw)
	if verdict != nil {
		if err := c.awaitVerdict(ctx, verdict.ch, min(s.cfg.DialTimeout, maxVerdictWait)); err != nil {
			c.close(false)
			return s.m.tlsFailure(ctx, s.cfg.Address, err)
		}
	}
	s.conn = c
	if s.ever {
		s.m.reconnects.Inc()
		s.log.Info().Msg("reconnected to the intake")
	}
	s.ever = true
	return nil
}

// isCertAlert reports whether err is a TLS alert from the peer rejecting
// our certificate. crypto/tls reports received alerts as a net.OpError
// "remote error" around an unexported type whose text is AlertError's.
func isCertAlert(err error) bool {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" || op.Err == nil {
		return false
	}
	// bad_certificate, unsupported_certificate, certificate_revoked,
	// certificate_expired, certificate_unknown, unknown_ca, certificate_required
	for _, a := range []tls.AlertError{42, 43, 44, 45, 46, 48, 116} {
		if op.Err.Error() == a.Error() {
			return true
		}
	}
	return false
}

// maxVerdictWait bounds the wait for a TLS 1.3 server's verdict on our
// client certificate (see awaitVerdict).
const maxVerdictWait = time.Second

// ticketSignal is a tls.ClientSessionCache that only tells when the server
// sent a session ticket: no session is resumed.
type ticketSignal struct {
	once sync.Once
	ch   chan struct{}
}

func (t *ticketSignal) Get(string) (*tls.ClientSessionState, bool) { return nil, false }
func (t *ticketSignal) Put(string, *tls.ClientSessionState)        { t.once.Do(func() { close(t.ch) }) }

// drop closes the connection, if any, after a failure: at once, discarding
// what the kernel still holds for it, so that nothing from the old
// connection reaches the intake after the batch is sent again.
func (s *SyslogSender) drop() {
	if s.conn != nil {
		s.conn.close(false)
		s.conn = nil
	}
}

// Close implements Sender. Every batch Send accepted is already
// acknowledged; the TLS session is ended with close_notify.
func (s *SyslogSender) Close() error {
	if s.conn != nil {
		s.conn.close(true)
		s.conn = nil
	}
	return nil
}

// syslogConn is one connection to the intake with its reader goroutine.
type syslogConn struct {
	nc     net.Conn        // *net.TCPConn or *tls.Conn
	tcp    *net.TCPConn    // the TCP connection under nc
	raw    syscall.RawConn // its socket
	probe  *ackProbe       // its unacknowledged count
	closed atomic.Bool     // the reader saw EOF or an error
	done   chan struct{}   // closed when the reader returns
	// readErr is what the reader saw, when not EOF.
	readErr atomic.Pointer[error]
}

func newSyslogConn(nc net.Conn, tcp *net.TCPConn, raw syscall.RawConn) *syslogConn {
	c := &syslogConn{nc: nc, tcp: tcp, raw: raw, probe: newAckProbe(raw), done: make(chan struct{})}
	go c.read()
	return c
}

// read discards what the peer sends (a syslog intake sends nothing; TLS
// sends session tickets and close_notify, which crypto/tls handles here) and
// marks the connection closed when the peer closes it.
func (c *syslogConn) read() {
	defer close(c.done)
	buf := make([]byte, 512)
	for {
		if _, err := c.nc.Read(buf); err != nil {
			if !errors.Is(err, io.EOF) {
				c.readErr.Store(&err)
			}
			c.closed.Store(true)
			return
		}
	}
}

// peerError returns what the reader saw the peer send or do (a TLS alert,
// a reset), or nil.
func (c *syslogConn) peerError() error {
	if p := c.readErr.Load(); p != nil {
		return *p
	}
	return nil
}

// awaitVerdict waits for a TLS 1.3 server to accept our client
// certificate. In TLS 1.3 the client's handshake ends before the server has
// checked the client's certificate: a server that rejects it sends an alert
// and closes, but its kernel may already have acknowledged the first batch,
// which would then count as delivered. Servers (Go's, OpenSSL's) send their
// session tickets once the client is verified, so the first ticket is the
// verdict; an alert or a close is a rejection. A server that sends no ticket
// costs a wait of at most limit per connection.
func (c *syslogConn) awaitVerdict(ctx context.Context, ticket <-chan struct{}, limit time.Duration) error {
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-ticket:
		return nil
	case <-t.C:
		return nil
	case <-c.done:
		if err := c.peerError(); err != nil {
			return err
		}
		return errPeerClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// errPeerClosed: the intake closed (or reset) the connection.
var errPeerClosed = errors.New("forward: intake closed the connection")

// alive returns nil if the connection can be written to: the reader has not
// seen its end, and a non-blocking peek finds no EOF or error pending.
func (c *syslogConn) alive() error {
	if c.closed.Load() {
		return errPeerClosed
	}
	return peekAlive(c.raw)
}

// write writes p, within timeout and ctx, and returns how many bytes were
// written.
func (c *syslogConn) write(ctx context.Context, p []byte, timeout time.Duration) (int, error) {
	stop, err := c.armWrite(ctx, timeout)
	if err != nil {
		return 0, err
	}
	n, err := c.nc.Write(p)
	stop()
	return n, writeErr(ctx, err)
}

// writeBuffers is write for a vectored batch: the slices of *bufs with
// writev (net.Buffers on a *net.TCPConn; Go splits more than IOV_MAX
// slices over several calls). It consumes *bufs.
func (c *syslogConn) writeBuffers(ctx context.Context, bufs *net.Buffers, timeout time.Duration) (int, error) {
	stop, err := c.armWrite(ctx, timeout)
	if err != nil {
		return 0, err
	}
	n, err := bufs.WriteTo(c.nc)
	stop()
	return int(n), writeErr(ctx, err)
}

// armWrite sets the write deadline for a write bounded by timeout and ctx,
// and makes ctx's end cut the write short; stop undoes the latter.
func (c *syslogConn) armWrite(ctx context.Context, timeout time.Duration) (stop func() bool, err error) {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.nc.SetWriteDeadline(deadline); err != nil {
		return nil, err
	}
	return context.AfterFunc(ctx, func() { _ = c.nc.SetWriteDeadline(time.Unix(1, 0)) }), nil
}

// writeErr is a write's error, ctx's when ctx ended it.
func writeErr(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// waitAcked polls the socket until the peer has acknowledged every byte
// written, the peer resets the connection, timeout passes or ctx ends. The
// poll interval doubles from 20µs to 5ms: on a LAN the acks come back within
// the first polls; a slow peer costs at most one syscall pair per 5ms.
func (c *syslogConn) waitAcked(ctx context.Context, timeout time.Duration, t *time.Timer) (reason string, err error) {
	deadline := time.Now().Add(timeout)
	pause := 20 * time.Microsecond
	for {
		unacked, reset, err := c.probe.unacked()
		if err != nil {
			return "ack_check", fmt.Errorf("cannot read the socket's unacknowledged count: %w", err)
		}
		if unacked == 0 {
			return "", nil
		}
		if reset {
			return "reset", fmt.Errorf("%w with %d bytes unacknowledged", errPeerClosed, unacked)
		}
		if !time.Now().Before(deadline) {
			// A timeout (os.ErrDeadlineExceeded): the batcher sends smaller
			// batches to an intake this slow.
			return "unacked", fmt.Errorf("forward: %d bytes not acknowledged by the intake after %v: %w", unacked, timeout, os.ErrDeadlineExceeded)
		}
		t.Reset(min(pause, time.Until(deadline)))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return "", ctx.Err()
		}
		pause = min(2*pause, 5*time.Millisecond)
	}
}

// close closes the connection and waits for its reader to return.
// Graceful sends TLS close_notify and lets the kernel finish sending;
// otherwise the socket is reset (SO_LINGER 0), its unsent data discarded.
func (c *syslogConn) close(graceful bool) {
	if graceful {
		_ = c.nc.Close()
	} else {
		_ = c.tcp.SetLinger(0)
		_ = c.tcp.Close()
	}
	<-c.done
}
