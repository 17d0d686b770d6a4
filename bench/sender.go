package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// SendConfig describes one load.
type SendConfig struct {
	Network   string      // "tcp", "tls" or "udp"
	Addr      string      // the relay's input, host:port
	TLS       *tls.Config // client configuration for "tls"
	Conns     int         // connections (sockets for udp); at least 1
	Framing   Framing     // stream framing (tcp, tls); udp sends one message per datagram
	Header    HeaderStyle //
	Rate      float64     // alerts per second over all connections; 0: as fast as the relay takes them
	Count     uint64      // stop after this many alerts (0: no count limit)
	Duration  time.Duration
	BatchSize int // alerts per write when unpaced (default 64)
	// Stall bounds how long the relay may take nothing while a write is
	// blocked (default 10 s); past it the relay counts as stuck and Run
	// fails instead of hanging.
	Stall time.Duration
}

// SendStats is what Send did. Every sequence number below Sent was handed to
// the kernel (or was in a write that failed, counted in WriteErrors).
type SendStats struct {
	Sent        uint64
	Bytes       uint64
	WriteErrors uint64
	Elapsed     time.Duration
}

// Sender sends one load; its counters can be read while it runs (for a
// progress bar) from any goroutine.
type Sender struct {
	cfg   SendConfig
	gen   *Generator
	next  atomic.Uint64 // next sequence number to hand out
	sent  atomic.Uint64
	bytes atomic.Uint64
	errs  atomic.Uint64
}

// NewSender returns a sender of gen's alerts per cfg.
func NewSender(cfg SendConfig, gen *Generator) (*Sender, error) {
	switch cfg.Network {
	case "tcp", "udp":
	case "tls":
		if cfg.TLS == nil {
			return nil, errors.New("bench: tls sender without a TLS config")
		}
	default:
		return nil, fmt.Errorf("bench: unknown network %q (want tcp, tls or udp)", cfg.Network)
	}
	if cfg.Conns < 1 {
		cfg.Conns = 1
	}
	if cfg.Count == 0 && cfg.Duration <= 0 {
		return nil, errors.New("bench: a load needs a count or a duration")
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 64
	}
	if cfg.Stall <= 0 {
		cfg.Stall = 10 * time.Second
	}
	return &Sender{cfg: cfg, gen: gen}, nil
}

// Sent returns the number of alerts sent so far.
func (s *Sender) Sent() uint64 { return s.sent.Load() }

// Run opens the connections and sends until the count or the duration is
// reached, ctx is done, or every connection failed. The first connection
// error is returned with the stats of what was sent.
func (s *Sender) Run(ctx context.Context) (SendStats, error) {
	conns := make([]net.Conn, 0, s.cfg.Conns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	d := net.Dialer{Timeout: 5 * time.Second}
	for i := 0; i < s.cfg.Conns; i++ {
		var c net.Conn
		var err error
		switch s.cfg.Network {
		case "tls":
			td := tls.Dialer{NetDialer: &d, Config: s.cfg.TLS}
			c, err = td.DialContext(ctx, "tcp", s.cfg.Addr)
		default:
			c, err = d.DialContext(ctx, s.cfg.Network, s.cfg.Addr)
		}
		if err != nil {
			return SendStats{}, fmt.Errorf("cannot connect to %s: %w", s.cfg.Addr, err)
		}
		conns = append(conns, c)
	}
	start := time.Now()
	end := time.Time{}
	if s.cfg.Duration > 0 {
		end = start.Add(s.cfg.Duration)
	}
	// The load ends by count or duration with every write finished: a write
	// cut short would lose alerts that are not the relay's fault. Writes are
	// interrupted only when ctx is done or the relay stalls past Stall.
	unblock := func() {
		for _, c := range conns {
			c.SetWriteDeadline(time.Now())
		}
	}
	stop := context.AfterFunc(ctx, unblock)
	defer stop()
	done := make(chan struct{})
	defer close(done)
	var stalled atomic.Bool
	go s.watchdog(done, &stalled, unblock)
	var g errgroup.Group
	for _, c := range conns {
		g.Go(func() error {
			if s.cfg.Network == "udp" {
				return s.loop(ctx, c, start, end)
			}
			// Read what the relay sends (TLS session tickets) as it comes:
			// closing a socket with unread input resets the connection,
			// and the relay would lose what it had not read yet.
			drained := make(chan struct{})
			go func() { defer close(drained); io.Copy(io.Discard, c) }()
			err := s.loop(ctx, c, start, end)
			if err == nil {
				closeGracefully(c, drained, 2*time.Second)
			}
			return err
		})
	}
	err := g.Wait()
	if err != nil && stalled.Load() {
		err = fmt.Errorf("bench: relay took nothing for %v: %w", s.cfg.Stall, err)
	}
	st := SendStats{Sent: s.sent.Load(), Bytes: s.bytes.Load(), WriteErrors: s.errs.Load(), Elapsed: time.Since(start)}
	return st, err
}

// watchdog unblocks the writers when no alert was sent for cfg.Stall, until
// done is closed. Paced loads idle between batches, so the wait is counted
// only while the sent count stays put.
func (s *Sender) watchdog(done <-chan struct{}, stalled *atomic.Bool, unblock func()) {
	t := time.NewTicker(max(s.cfg.Stall/10, 10*time.Millisecond))
	defer t.Stop()
	last, since := s.sent.Load(), time.Now()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			if n := s.sent.Load(); n != last {
				last, since = n, now
			} else if now.Sub(since) > s.cfg.Stall && (s.cfg.Rate == 0 || float64(s.cfg.Stall)*s.cfg.Rate > 10*float64(time.Second)) {
				stalled.Store(true)
				unblock()
				return
			}
		}
	}
}

// closeGracefully half-closes c (TLS close_notify, then TCP FIN) and waits
// up to limit for the relay to close its side, which it does once it has read
// everything, before c is closed.
func closeGracefully(c net.Conn, drained <-chan struct{}, limit time.Duration) {
	switch cc := c.(type) {
	case *tls.Conn:
		cc.CloseWrite()
		if tc, ok := cc.NetConn().(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	case *net.TCPConn:
		cc.CloseWrite()
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-drained:
	case <-t.C:
	}
}

// take hands out up to n sequence numbers, fewer near the count limit.
func (s *Sender) take(n uint64) (first, count uint64) {
	for {
		cur := s.next.Load()
		if s.cfg.Count > 0 {
			if cur >= s.cfg.Count {
				return cur, 0
			}
			n = min(n, s.cfg.Count-cur)
		}
		if s.next.CompareAndSwap(cur, cur+n) {
			return cur, n
		}
	}
}

func (s *Sender) loop(ctx context.Context, c net.Conn, start, end time.Time) error {
	b := NewMessageBuilder(s.gen, s.cfg.Header, s.cfg.Framing)
	buf := make([]byte, 0, 256<<10)
	perConn := s.cfg.Rate / float64(s.cfg.Conns)
	var done uint64 // alerts this connection sent, for pacing
	udp := s.cfg.Network == "udp"
	for ctx.Err() == nil {
		now := time.Now()
		if !end.IsZero() && !now.Before(end) {
			break
		}
		want := uint64(s.cfg.BatchSize)
		if perConn > 0 {
			due := uint64(perConn * now.Sub(start).Seconds())
			if due <= done {
				wait := time.Duration(float64(done+1-due) / perConn * float64(time.Second))
				if !end.IsZero() {
					wait = min(wait, end.Sub(now))
				}
				if !sleepCtx(ctx, max(wait, 200*time.Microsecond)) {
					break
				}
				continue
			}
			want = min(want, due-done)
		}
		first, n := s.take(want)
		if n == 0 {
			break
		}
		buf = buf[:0]
		var err error
		if udp {
			err = s.writeDatagrams(c, b, first, n, now, buf)
		} else {
			for seq := first; seq < first+n; seq++ {
				buf = b.AppendFramed(buf, seq, now)
			}
			_, err = c.Write(buf)
			if err == nil {
				s.bytes.Add(uint64(len(buf)))
			}
		}
		// The numbers were taken: they count as sent even if the write
		// failed, so a failed write shows as missing, never as unseen.
		s.sent.Add(n)
		done += n
		if err != nil {
			s.errs.Add(1)
			return fmt.Errorf("cannot write to %s: %w", s.cfg.Addr, err)
		}
	}
	return nil
}

func (s *Sender) writeDatagrams(c net.Conn, b *MessageBuilder, first, n uint64, now time.Time, buf []byte) error {
	for seq := first; seq < first+n; seq++ {
		buf = b.AppendMessage(buf[:0], seq, now)
		if _, err := c.Write(buf); err != nil {
			var se interface{ Timeout() bool }
			if errors.As(err, &se) && se.Timeout() {
				return err
			}
			// ECONNREFUSED from an earlier datagram: the relay is not
			// listening; the alert is lost and shows as missing.
			s.errs.Add(1)
			continue
		}
		s.bytes.Add(uint64(len(buf)))
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
