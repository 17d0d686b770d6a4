package output

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/internal/relp"
)

// Defaults of the RELP sender.
const (
	// DefaultRelpWindow is the number of messages in flight. rsyslog
	// omrelp's default, 128, moves about 2,800 alerts/s to an imrelp on
	// loopback (an answer per 40 ms delayed ACK, see transfer) and 128 per
	// round trip on a WAN; 1024 is its fastest.
	DefaultRelpWindow = 1024
	// DefaultRelpMaxMessage is the largest message sent: an imrelp whose
	// maxDataSize is smaller aborts the session on a larger frame, so
	// larger messages go to the dead-letter file instead.
	DefaultRelpMaxMessage = 256 << 10
	// DefaultRelpTimeout bounds the wait for a window's acknowledgements.
	DefaultRelpTimeout = 30 * time.Second
	// MaxRelpWindow is the largest window accepted.
	MaxRelpWindow = 65536
)

// relpMaxResponse bounds an intake's response frame: an open's offers
// are a few hundred bytes, a message's status a few.
const relpMaxResponse = 64 << 10

// relpIdlePeek bounds the read of what an idle session's intake sent (a
// serverclose hint) before the next batch.
const relpIdlePeek = 100 * time.Millisecond

// relpCloseWait bounds the wait for the answer to "close" on Close.
const relpCloseWait = time.Second

// RelpConfig configures a RELP output: RFC 5424 (or the line as received)
// over RELP, on TCP or TLS to Address.
type RelpConfig struct {
	// Address is host:port.
	Address string
	// TLS enables TLS; TLSClientConfig then applies (the server name
	// defaults to the host of Address).
	TLS bool
	TLSClientConfig
	// SyslogEncoderConfig's Format and IntakeKey are the message format;
	// its Framing is ignored (RELP frames the messages).
	SyslogEncoderConfig
	// Window is the number of messages sent and not yet acknowledged, at
	// most (default DefaultRelpWindow).
	Window int
	// MaxMessage is the largest message, in bytes, sent; larger ones go to
	// the dead-letter file (default DefaultRelpMaxMessage).
	MaxMessage int
	// DialTimeout bounds the connect, the TLS handshake and the RELP open,
	// each (default DefaultDialTimeout).
	DialTimeout time.Duration
	// Timeout bounds each refill of the window: its write and the wait
	// for the answers to what is in flight, until the next refill or the
	// batch's last answer (default DefaultRelpTimeout).
	Timeout time.Duration
	// Software is this client's relp_software offer
	// ("dtrelay,VERSION,URL"); empty: "dtrelay".
	Software string
}

// RelpSender delivers batches over RELP (librelp's doc/relp.md), the
// protocol of rsyslog's omrelp and imrelp and of Sekoia.io's RELP intake:
// each message is a "syslog" command that the intake answers with its own
// "rsp", sent only once it took the message. A session opens with "open"
// (offers relp_version=0, commands=syslog) and, on Close, ends with
// "close".
//
// Send writes the batch's messages pipelined, at most Window in flight,
// refilling the window once half of it is answered, and marks each
// message with Batch.Ack when its "rsp 200" arrives; it returns nil once
// every message is answered. Delivery is thus what the intake application
// acknowledged, not what its kernel did: an intake that dies with messages
// in flight has not acknowledged them, and they are sent again.
//
// When the session breaks (the connection ends or resets, a serverclose
// hint, a malformed frame, no acknowledgement within Timeout) Send returns
// an error; the batcher sends the batch again on a new session, which
// skips the messages already acknowledged, and the messages that were in
// flight are counted as possible duplicates (the intake may have taken
// them before it could answer): at most Window per break.
//
// A response other than 200 refuses that one message: it is marked with
// Batch.Reject (reason "rejected_relp_CODE") and kept in the dead-letter
// file. An intake that refuses every message of a batch and has taken none
// since the session before is refusing the session, not the messages (a
// server whose syslog command is disabled answers "500 command disabled"):
// that is a FixableError, retried, and the messages are kept. Transaction
// numbers restart at 1 on each session; a session is renewed before they
// would wrap. Failure reasons counted: connect, tls_handshake,
// tls_certificate, open, write, write_timeout, unacked, serverclose,
// closed, protocol. Send and Close are called by one goroutine at a time.
type RelpSender struct {
	cfg     RelpConfig
	tls     *tls.Config
	offers  []byte
	sess    *relpSession
	ever    bool // a session was opened before: the next one is a reconnect
	trusted bool // the intake took a message in this session or the one before
	logged  int  // the status last logged as refusing everything, 0 after a success
	renewAt int  // renew the session before its txnr exceeds this
	m       *sendMetrics
	log     zerolog.Logger
	sampled zerolog.Logger

	wbuf    []byte
	flight  []relpTxn // messages written and not yet answered, from head
	head    int
	due     int           // messages in flight not answered
	refused []relpRefusal // in this Send
	took    int           // messages answered 200 in this Send
	frame   relp.Frame
}

// relpTxn is a message in flight: its transaction number and its index in
// the batch.
type relpTxn struct {
	txnr, idx int
	done      bool
}

// relpRefusal is a message the intake answered with a status other than 200.
type relpRefusal struct {
	idx, code int
}

// relpSession is one RELP session: its connection and its last
// transaction number.
type relpSession struct {
	d        *dialed
	r        *relp.Reader
	txnr     int
	quickAck func(fd uintptr)
	// delayed > 0: a recent wait for answers between two writes took
	// longer than relpAckStall, the mark of an intake holding its answers
	// for our delayed ACK: the next delayed waits acknowledge first.
	delayed int

	// The receive low-water mark (see awaitMany): lowat is the mark the
	// socket has, setLowat sets it to want, guard lowers it to one byte
	// when a wait takes longer than relpLowatGuard.
	lowat, want int
	setLowat    func(fd uintptr)
	guard       *time.Timer
	minAnswer   int // the fewest bytes an answer takes on the wire
}

// Receive low-water marks. An answer is at least relpMinAnswer bytes
// ("1 rsp 3 200\n"), plus relpMinTLSRecord when each comes in its own TLS
// record, as librelp writes them. Waiting for answers with the socket's
// mark set to the bytes of half the answers still due (at most
// relpLowatAnswers of them) turns one wake-up, read and TLS record per
// answer into one wake-up per many: at 35,000 answers/s, those were a
// third of the sender's CPU. The mark never exceeds what the answers due
// will bring, but one partly read; should an intake pack answers tighter
// (several per record), relpLowatGuard lowers the mark to one byte and
// the wait ends as it would have without it. relpLowatGuard also bounds
// the delay added when the intake holds its answers for our ACK (see
// transfer), which a reader that has not read yet does not send.
const (
	relpMinTLSRecord = 22 // TLS 1.3: 5 bytes of header, 1 of type, 16 of tag
	relpLowatAnswers = 256
	relpLowatMin     = 8 // fewer answers due: no mark, nothing to gain
	relpLowatGuard   = 2 * time.Millisecond
)

// relpMinAnswer is the fewest bytes an answer takes: "1 rsp 3 200\n". A
// variable so that a test can play an intake packing its answers tighter
// than the mark assumes.
var relpMinAnswer = 12

// lowatOne is the default mark, one byte, for the guard's reset.
var (
	lowatOne   = 1
	resetLowat = rcvLowatFunc(&lowatOne)
)

// awaitMany sets the socket's receive low-water mark for a wait on due
// answers, and arms its guard when the mark is above one byte. The guard
// bounds what a mark can cost a wait at relpLowatGuard: 2 ms, in which
// librelp answers about 70 messages here.
func (sess *relpSession) awaitMany(due int) {
	want := 1
	if n := (due - 1) / 2; n >= relpLowatMin {
		n = min(n, relpLowatAnswers)
		want = (1 << (bits.Len(uint(n)) - 1)) * sess.minAnswer // a power of two answers: few changes
	}
	if want != sess.lowat {
		sess.want = want
		_ = sess.d.raw.Control(sess.setLowat)
		sess.lowat = want
	}
	if want > 1 {
		sess.guard.Reset(relpLowatGuard)
	}
}

// awaited stops the guard of the wait that ended. Had it fired, the mark
// is one byte now.
func (sess *relpSession) awaited() {
	if sess.lowat > 1 && !sess.guard.Stop() {
		sess.lowat = 1
	}
}

// clearLowat returns the mark to one byte for reads that expect a single
// small frame (an idle session's serverclose, close's answer).
func (sess *relpSession) clearLowat() {
	if sess.lowat != 1 {
		sess.guard.Stop()
		sess.want = 1
		_ = sess.d.raw.Control(sess.setLowat)
		sess.lowat = 1
	}
}

// relpAckWaits is how many waits acknowledge first after a stall, before
// the sender tries again without (a stall may be a one-off: a busy intake,
// a scheduling delay).
const relpAckWaits = 256

// relpAckStall is how long a wait for answers between two writes must take
// to be taken for a delayed-ACK stall (Linux delays an ACK 40 ms at least).
const relpAckStall = 30 * time.Millisecond

// Errors of a broken session.
var (
	errRelpServerClose = errors.New("forward: the intake closed the RELP session (serverclose)")
	errRelpProtocol    = errors.New("forward: RELP protocol error")
)

// NewRelpSender returns a sender for cfg. It does not connect: the first
// Send does.
func NewRelpSender(cfg RelpConfig, set *metrics.Set, name string, log zerolog.Logger) (*RelpSender, error) {
	host, _, err := net.SplitHostPort(cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("forward: relp address %q is not host:port", cfg.Address)
	}
	cfg.Framing = FramingOctetCounting
	if _, err := NewSyslogEncoder(cfg.SyslogEncoderConfig); err != nil {
		return nil, err
	}
	switch {
	case cfg.Window == 0:
		cfg.Window = DefaultRelpWindow
	case cfg.Window < 0 || cfg.Window > MaxRelpWindow:
		return nil, fmt.Errorf("forward: relp window %d is not 1 to %d", cfg.Window, MaxRelpWindow)
	}
	if cfg.MaxMessage <= 0 {
		cfg.MaxMessage = DefaultRelpMaxMessage
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultRelpTimeout
	}
	if cfg.Software == "" {
		cfg.Software = "dtrelay"
	}
	if set == nil {
		set = metrics.NewSet()
	}
	s := &RelpSender{cfg: cfg, offers: relp.OpenOffers(cfg.Software), renewAt: relp.MaxTxnr,
		m: newSendMetrics(set, name), log: log.With().Str("output", name).Logger()}
	s.sampled = s.log.Sample(&zerolog.BurstSampler{Burst: 5, Period: 10 * time.Second})
	if cfg.TLS {
		if s.tls, err = cfg.TLSClientConfig.build(host); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Encoder returns a new encoder for the configured format: octet-counted
// messages ("LEN SP MSG", which is RELP's "DATALEN SP DATA"), those over
// MaxMessage bytes refused as oversize.
func (s *RelpSender) Encoder() forward.Encoder {
	e, _ := NewSyslogEncoder(s.cfg.SyslogEncoderConfig) // validated by NewRelpSender
	return &relpEncoder{e: e, max: s.cfg.MaxMessage}
}

// relpEncoder is a SyslogEncoder with octet-counting and a size limit.
type relpEncoder struct {
	e   *SyslogEncoder
	max int
}

// Append implements forward.Encoder.
func (e *relpEncoder) Append(dst []byte, r *forward.Record) ([]byte, error) {
	n := len(dst)
	out, err := e.e.Append(dst, r)
	if err != nil {
		return out, err
	}
	sp := bytes.IndexByte(out[n:], ' ')
	switch msg := len(out) - n - sp - 1; {
	case msg > e.max:
		return out[:n], forward.ErrSkipOversize
	case msg == 0:
		return out[:n], errEmptyMessage // RELP has no empty syslog message
	}
	return out, nil
}

var errEmptyMessage = errors.New("forward: empty message")

// Send implements forward.Sender.
func (s *RelpSender) Send(ctx context.Context, b *forward.Batch) error {
	if b.Len() == 0 {
		return nil
	}
	if s.sess != nil && s.sess.txnr > s.renewAt-b.Len()-1 {
		// The next transaction numbers would wrap: librelp counts past
		// MaxTxnr and then refuses its own 10-digit number. A new session
		// starts again at 1.
		s.closeSession()
	}
	if s.sess != nil {
		if err := s.idle(); err != nil {
			s.log.Info().Err(err).Msg("intake ended the idle RELP session; opening a new one")
			s.drop()
		}
	}
	if s.sess == nil {
		if err := s.open(ctx); err != nil {
			return err
		}
	}
	reason, err := s.transfer(ctx, b)
	if err != nil {
		s.m.duplicates.Add(s.inFlight())
		s.drop()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.m.failure(reason)
		return fmt.Errorf("cannot deliver batch to %s: %w", s.cfg.Address, err)
	}
	return s.settle(b)
}

// inFlight returns how many messages are written and not answered.
func (s *RelpSender) inFlight() int {
	n := 0
	for _, t := range s.flight[s.head:] {
		if !t.done {
			n++
		}
	}
	return n
}

// transfer sends b's messages not yet acknowledged and reads the answers
// until every one is answered. On error, reason is the failure's label.
func (s *RelpSender) transfer(ctx context.Context, b *forward.Batch) (reason string, err error) {
	conn := s.sess.d.conn
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	s.flight, s.head, s.refused, s.took, s.due = s.flight[:0], 0, s.refused[:0], 0, 0
	next := 0
	for {
		if next < b.Len() && len(s.flight)-s.head <= s.cfg.Window/2 {
			// A deadline per refill, for its write and for the answers
			// that follow: the messages in flight must be answered
			// within Timeout of their write. (A deadline per answer,
			// as librelp sends each in its own TLS record, was a clock
			// read and a poller timer per message: 6% of the sender's
			// CPU at full load.)
			if err := conn.SetDeadline(time.Now().Add(s.cfg.Timeout)); err != nil {
				return "closed", err
			}
			if err := ctx.Err(); err != nil {
				return "canceled", err // stop's deadline came before this one
			}
			if reason, err := s.fill(b, &next); err != nil {
				return reason, err
			}
		}
		if s.head == len(s.flight) {
			// Every message answered, none left to send. Between
			// batches, a single small frame (serverclose) must wake
			// the reader.
			s.sess.clearLowat()
			return "", nil
		}
		// librelp writes each answer on its own with Nagle's algorithm on,
		// so it holds all but the first until our kernel acknowledges that
		// one, which the kernel delays (up to 40 ms on loopback, where no
		// burst of answers fills a segment) unless a write of ours carries
		// the ACK. So a wait with nothing left to write acknowledges first
		// (TCP_QUICKACK). Between refills of a batch larger than the
		// window, our writes usually carry it; after one such wait stalled,
		// the next relpAckWaits waits acknowledge first too.
		var waitFrom time.Time
		if s.sess.r.Buffered() == 0 {
			if next >= b.Len() || s.sess.delayed > 0 {
				quickAck(s.sess.d.raw, s.sess.quickAck)
				if next < b.Len() {
					s.sess.delayed--
				}
			} else {
				waitFrom = time.Now()
			}
			s.sess.awaitMany(s.due)
		}
		for first := true; ; first = false {
			reason, err := s.answer(b)
			if first {
				s.sess.awaited()
			}
			if err != nil {
				return reason, err
			}
			if first && !waitFrom.IsZero() && time.Since(waitFrom) > relpAckStall {
				s.sess.delayed = relpAckWaits
				s.log.Debug().Msg("intake delays its RELP answers until acknowledged: acknowledging before the next waits")
			}
			if s.sess.r.Buffered() == 0 || s.head == len(s.flight) {
				break
			}
		}
	}
}

// fill writes the next messages of b, from *next, until Window are in
// flight. The connection's deadline is transfer's.
func (s *RelpSender) fill(b *forward.Batch, next *int) (reason string, err error) {
	n := copy(s.flight, s.flight[s.head:])
	s.flight, s.head = s.flight[:n], 0
	s.wbuf = s.wbuf[:0]
	for *next < b.Len() && len(s.flight) < s.cfg.Window {
		i := *next
		*next++
		if b.Acked(i) {
			continue
		}
		s.sess.txnr = relp.NextTxnr(s.sess.txnr)
		s.wbuf = relp.AppendSyslog(s.wbuf, s.sess.txnr, b.Event(i))
		s.flight = append(s.flight, relpTxn{txnr: s.sess.txnr, idx: i})
		s.due++
	}
	if len(s.wbuf) == 0 {
		return "", nil
	}
	if _, err := s.sess.d.conn.Write(s.wbuf); err != nil { // under transfer's deadline
		if isTimeout(err) {
			return "write_timeout", err
		}
		return "write", err
	}
	return "", nil
}

// answer reads one frame and applies it to the messages in flight.
func (s *RelpSender) answer(b *forward.Batch) (reason string, err error) {
	f := &s.frame
	if err := s.sess.r.Read(f); err != nil {
		return s.readFailure(err)
	}
	if f.Txnr == 0 && f.Is(relp.CmdServerclose) {
		return "serverclose", errRelpServerClose
	}
	if !f.Is(relp.CmdRsp) {
		return "protocol", fmt.Errorf("%w: the intake sent %q, not a response", errRelpProtocol, clipText(f.Command))
	}
	rsp, err := relp.ParseResponse(f.Data)
	if err != nil {
		return "protocol", fmt.Errorf("%w: %w", errRelpProtocol, err)
	}
	t := s.find(f.Txnr)
	if t == nil {
		return "protocol", fmt.Errorf("%w: a response to transaction %d, which is not in flight", errRelpProtocol, f.Txnr)
	}
	t.done = true
	s.due--
	if rsp.OK() {
		b.Ack(t.idx)
		s.took++
	} else {
		s.refused = append(s.refused, relpRefusal{idx: t.idx, code: rsp.Code})
		s.sampled.Warn().Int("status", rsp.Code).Str("intake", string(clipText(rsp.Text))).
			Msg("intake refused a message")
	}
	for s.head < len(s.flight) && s.flight[s.head].done {
		s.head++
	}
	return "", nil
}

// find returns the message in flight numbered txnr: the oldest, as a
// librelp server answers in order, else searched for (the protocol allows
// any order).
func (s *RelpSender) find(txnr int) *relpTxn {
	for i := s.head; i < len(s.flight); i++ {
		if t := &s.flight[i]; t.txnr == txnr && !t.done {
			return t
		}
	}
	return nil
}

// readFailure labels an error reading the intake's frames.
func (s *RelpSender) readFailure(err error) (string, error) {
	switch {
	case errors.Is(err, relp.ErrFrame):
		return "protocol", fmt.Errorf("%w: %w", errRelpProtocol, err)
	case isTimeout(err):
		return "unacked", fmt.Errorf("forward: %d messages not acknowledged by the intake within %v: %w",
			s.inFlight(), s.cfg.Timeout, err)
	case isCertAlert(err):
		// TLS 1.3: the server checks our certificate after our handshake
		// ended, and its alert arrives with the first read.
		return "tls_certificate", fmt.Errorf("the intake rejected the client certificate: %w", err)
	}
	return "closed", fmt.Errorf("%w: %w", errPeerClosed, err)
}

// settle handles the refusals of a batch whose messages were all
// answered.
func (s *RelpSender) settle(b *forward.Batch) error {
	took := s.took > 0
	if len(s.refused) == 0 {
		s.trusted, s.logged = true, 0
		return nil
	}
	first := s.refused[0].code
	if !took && !s.trusted {
		s.m.failure("relp_" + strconv.Itoa(first))
		if s.logged != first {
			s.logged = first
			s.log.Error().Int("status", first).Int("messages", len(s.refused)).
				Msg("intake refuses every message, each with this status: check the intake (is its syslog command enabled?) and the output's format; messages are kept and retried")
		}
		return forward.Fixable("relp_"+strconv.Itoa(first),
			fmt.Errorf("cannot deliver batch to %s: RELP status %d for every message", s.cfg.Address, first))
	}
	for _, r := range s.refused {
		b.Reject(r.idx, "rejected_relp_"+strconv.Itoa(r.code))
	}
	s.trusted = took
	return nil
}

// idle checks an idle session before a batch: a closed connection, or a
// serverclose hint (or anything else) the intake sent meanwhile, ends it.
func (s *RelpSender) idle() error {
	pending, err := peekPending(s.sess.d.raw)
	if err != nil || (!pending && s.sess.r.Buffered() == 0) {
		return err
	}
	conn := s.sess.d.conn
	if err := conn.SetReadDeadline(time.Now().Add(relpIdlePeek)); err != nil {
		return err
	}
	if err := s.sess.r.Read(&s.frame); err != nil {
		if isTimeout(err) && s.sess.r.Buffered() == 0 {
			return nil // TLS records without data (a session ticket)
		}
		return err
	}
	if s.frame.Is(relp.CmdServerclose) {
		return errRelpServerClose
	}
	return fmt.Errorf("%w: the intake sent %q while no message was in flight", errRelpProtocol, clipText(s.frame.Command))
}

// open connects and opens a RELP session.
func (s *RelpSender) open(ctx context.Context) error {
	d, err := dialIntake(ctx, s.cfg.Address, s.tls, s.cfg.DialTimeout, nil, s.m)
	if err != nil {
		return err
	}
	sess := &relpSession{d: d, r: relp.NewReader(d.conn, relpMaxResponse), txnr: 1, quickAck: quickAckFunc(),
		lowat: 1, minAnswer: relpMinAnswer}
	if s.cfg.TLS {
		sess.minAnswer += relpMinTLSRecord
	}
	sess.setLowat = rcvLowatFunc(&sess.want)
	raw := d.raw
	sess.guard = time.AfterFunc(time.Hour, func() { _ = raw.Control(resetLowat) })
	sess.guard.Stop()
	if err := s.handshake(ctx, sess); err != nil {
		_ = d.tcp.SetLinger(0)
		_ = d.conn.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if isCertAlert(err) {
			s.m.failure("tls_certificate")
			return fmt.Errorf("cannot open a RELP session with %s: the intake rejected the client certificate: %w", s.cfg.Address, err)
		}
		s.m.failure("open")
		return fmt.Errorf("cannot open a RELP session with %s: %w", s.cfg.Address, err)
	}
	s.sess = sess
	if s.ever {
		s.m.reconnects.Inc()
		s.log.Info().Msg("reconnected to the intake")
	}
	s.ever = true
	return nil
}

// handshake sends "open" on sess and checks the intake's answer: status
// 200, a relp_version offer, and the syslog command among those offered.
func (s *RelpSender) handshake(ctx context.Context, sess *relpSession) error {
	conn := sess.d.conn
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := conn.SetDeadline(time.Now().Add(s.cfg.DialTimeout)); err != nil {
		return err
	}
	if _, err := conn.Write(relp.AppendFrame(s.wbuf[:0], sess.txnr, relp.CmdOpen, s.offers)); err != nil {
		return err
	}
	f := &s.frame
	if err := sess.r.Read(f); err != nil {
		if isTimeout(err) {
			return fmt.Errorf("no answer to open within %v: %w", s.cfg.DialTimeout, err)
		}
		return err
	}
	if f.Txnr == 0 && f.Is(relp.CmdServerclose) {
		return errRelpServerClose
	}
	if f.Txnr != sess.txnr || !f.Is(relp.CmdRsp) {
		return fmt.Errorf("%w: the intake answered open with %q for transaction %d", errRelpProtocol, clipText(f.Command), f.Txnr)
	}
	rsp, err := relp.ParseResponse(f.Data)
	if err != nil {
		return fmt.Errorf("%w: %w", errRelpProtocol, err)
	}
	if !rsp.OK() {
		return fmt.Errorf("the intake refused the session: status %d %q", rsp.Code, clipText(rsp.Text))
	}
	offers := relp.Offers(rsp.Body)
	if _, ok := offers.Get("relp_version"); !ok {
		return fmt.Errorf("%w: the intake's answer to open has no relp_version", errRelpProtocol)
	}
	if !offers.Has("commands", relp.CmdSyslog) {
		return fmt.Errorf("the intake does not offer the syslog command (offers %q)", clipText(rsp.Body))
	}
	return conn.SetDeadline(time.Time{})
}

// closeSession ends the session with "close" and waits, briefly, for its
// answer, and reports whether it came. Every message sent was answered
// already (it is called between batches).
func (s *RelpSender) closeSession() (answered bool) {
	if s.sess == nil {
		return false
	}
	s.sess.clearLowat()
	conn := s.sess.d.conn
	_ = conn.SetDeadline(time.Now().Add(relpCloseWait))
	txnr := relp.NextTxnr(s.sess.txnr)
	if _, err := conn.Write(relp.AppendFrame(s.wbuf[:0], txnr, relp.CmdClose, nil)); err == nil {
		for s.sess.r.Read(&s.frame) == nil {
			if s.frame.Txnr == txnr && s.frame.Is(relp.CmdRsp) {
				answered = true
				break
			}
		}
	}
	_ = conn.Close() // TLS: with close_notify, within the deadline
	s.sess = nil
	return answered
}

// drop closes the session after a failure, at once, discarding what the
// kernel still holds for it, so that nothing from it reaches the intake
// after the messages are sent again.
func (s *RelpSender) drop() {
	if s.sess != nil {
		s.sess.guard.Stop()
		_ = s.sess.d.tcp.SetLinger(0)
		_ = s.sess.d.tcp.Close()
		s.sess = nil
	}
}

// Close implements forward.Sender: the session ends with "close".
func (s *RelpSender) Close() error {
	s.closeSession()
	return nil
}

// clipText returns at most 200 bytes of b with bytes outside printable
// ASCII as '?', for a log line or an error about what an intake sent.
func clipText(b []byte) []byte {
	b = b[:min(len(b), 200)]
	out := make([]byte, len(b))
	for i, c := range b {
		if c < 32 || c > 126 {
			c = '?'
		}
		out[i] = c
	}
	return out
}
