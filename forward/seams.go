package forward

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dtrelay/dtrelay/parser"
)

// Record is one received message as an output sees it. Its slices point into
// a Block owned by the pipeline and stay valid until the Sender.Send call of
// the batch that holds the record's encoding has returned; an Encoder must not
// keep them.
type Record struct {
	Raw       []byte // the syslog message as received, without framing
	Payload   []byte // the JSON alert, byte for byte (the MSG part when NotJSON)
	Timestamp []byte // RFC 5424 TIMESTAMP as received; nil for other styles
	Host      []byte // HOSTNAME from the header; nil when absent
	App       []byte // APP-NAME / TAG from the header; nil when absent
	Pri       int16  // syslog PRI, or -1 when absent
	Received  int64  // reception time, Unix nanoseconds
	Kind      parser.Kind
	Priority  parser.Priority
	Input     uint16 // index of the input in the configuration
	NotJSON   bool   // the payload is not a JSON object

	memOnly bool // with a spool: not in it (refused), in memory only
}

// Encoder writes records in one output's wire format. An Encoder is used by
// one goroutine (its output's batcher) and may keep scratch state.
type Encoder interface {
	// Append appends the encoding of r to dst and returns the extended
	// slice. When r must not go to this output it returns dst unchanged and
	// a skip reason: ErrSkipOversize or ErrSkipNotJSON.
	Append(dst []byte, r *Record) ([]byte, error)
}

// Skip reasons returned by Encoder.Append. A message that is not JSON is
// not for the output (counted dropped, reason "not_json"); an event too
// large for it is kept in the output's dead-letter file (reason
// "oversize"). Neither is sent.
var (
	ErrSkipOversize = errors.New("forward: event too large for this output")
	ErrSkipNotJSON  = errors.New("forward: not a JSON alert")
)

// A SplitEncoder is an Encoder whose encoding of a record is a head
// followed by a byte range of the record (its Payload or Raw) unchanged.
// The batcher then keeps only the heads in the batch and refers to the
// record's bytes where they are, in their block (Batch.Vectored): a Sender
// that writes with vectored I/O hands the kernel the payload without the
// copy into the batch. Append must give the same bytes as AppendSplit's
// head followed by its body.
type SplitEncoder interface {
	Encoder
	// AppendSplit appends r's head to dst and returns it with body, the
	// bytes that follow the head: a subslice of r's Raw, nil for none. It
	// skips as Append does.
	AppendSplit(dst []byte, r *Record) (head, body []byte, err error)
}

// Batch is a run of encoded events ready to deliver. Data holds the events
// back to back; event i is Data[Ends[i-1]:Ends[i]] (Data[:Ends[0]] for i=0).
// A Sender may frame or wrap the events further (e.g. a JSON array) but
// must not modify Data or keep it after Send returns.
//
// A batch built with AppendSplit is vectored: Data is then empty, Ends are
// offsets in the events' bytes as if they were back to back, and
// AppendBuffers gives those bytes. Only the Senders whose Encoder is a
// SplitEncoder get vectored batches; every batch has Size.
type Batch struct {
	Data []byte
	Ends []int

	// A vectored batch: event i is heads[parts[i].hs:parts[i].he]
	// followed by parts[i].body.
	heads []byte
	parts []part

	rejects []Rejection // marked by the Sender during one Send
	acked   []bool      // acked[i]: event i acknowledged (Ack)
}

// Rejection is an event of a Batch that the intake refused for its content
// (Sender.Send, Batch.Reject). Index is the event's index in the batch;
// Reason a short metric label such as "rejected_413".
type Rejection struct {
	Index  int
	Reason string
}

// Reject marks event i as refused by the intake for its content: retrying
// it cannot succeed. A Sender calls it during Send, which then returns nil
// once every other event is accepted; the batcher keeps the marked events
// in the output's dead-letter file. Marks made during a Send that returns
// an error are discarded (the batch is sent again).
func (b *Batch) Reject(i int, reason string) {
	b.rejects = append(b.rejects, Rejection{Index: i, Reason: reason})
}

// Rejected returns the events marked with Reject, in the order marked.
// The slice is valid until the next Reset or Send.
func (b *Batch) Rejected() []Rejection { return b.rejects }

// Ack marks event i as taken by the intake, on its own: a Sender whose
// intake acknowledges events one at a time (RELP) calls it as each
// acknowledgement arrives. Unlike Reject's, Ack's marks outlive a Send that
// returns an error: the batcher sends the same events again, and the
// Sender skips those that Acked reports, so that a broken session costs
// duplicates of only what was unacknowledged on it.
func (b *Batch) Ack(i int) {
	if i < 0 || i >= len(b.Ends) {
		return
	}
	if len(b.acked) < len(b.Ends) { // a Batch built by hand; the batcher sizes its own
		b.acked = append(b.acked, make([]bool, len(b.Ends)-len(b.acked))...)
	}
	b.acked[i] = true
}

// Acked reports whether event i was marked with Ack, in this Send or an
// earlier attempt at the same events.
func (b *Batch) Acked(i int) bool { return i >= 0 && i < len(b.acked) && b.acked[i] }

// Len returns the number of events in b.
func (b *Batch) Len() int { return len(b.Ends) }

// Event returns event i of b, which must not be vectored.
func (b *Batch) Event(i int) []byte {
	start := 0
	if i > 0 {
		start = b.Ends[i-1]
	}
	return b.Data[start:b.Ends[i]]
}

// Start returns the offset where event i begins: in Data, or in the bytes
// of AppendBuffers for a vectored batch.
func (b *Batch) Start(i int) int {
	if i == 0 {
		return 0
	}
	return b.Ends[i-1]
}

// part is one event of a vectored Batch.
type part struct {
	hs, he int
	body   []byte
}

// Vectored reports whether b was built with AppendSplit: its bytes are
// then in AppendBuffers, not in Data.
func (b *Batch) Vectored() bool { return len(b.parts) > 0 }

// Size returns the number of bytes of b's events.
func (b *Batch) Size() int {
	if len(b.Ends) == 0 {
		return 0
	}
	return b.Ends[len(b.Ends)-1]
}

// AppendSplit appends r to b, encoded by enc, as a vectored event: its head
// is copied, its body referred to (it stays valid while r's block is held,
// which the batcher guarantees until Send returns). b must not hold events
// appended to Data. A skip reason from enc is returned, b unchanged.
func (b *Batch) AppendSplit(enc SplitEncoder, r *Record) error {
	hs := len(b.heads)
	heads, body, err := enc.AppendSplit(b.heads, r)
	if err != nil {
		return err
	}
	b.heads = heads
	b.parts = append(b.parts, part{hs: hs, he: len(heads), body: body})
	b.Ends = append(b.Ends, b.Size()+len(heads)-hs+len(body))
	return nil
}

// AppendBuffers appends the bytes of b's events, in order, to bufs as
// slices (a head and a body per event, the empty ones left out) and
// returns the extended slice: what net.Buffers writes with one writev. For
// a batch that is not vectored that is Data.
func (b *Batch) AppendBuffers(bufs [][]byte) [][]byte {
	if !b.Vectored() {
		if len(b.Data) > 0 {
			bufs = append(bufs, b.Data)
		}
		return bufs
	}
	for _, p := range b.parts {
		if p.he > p.hs {
			bufs = append(bufs, b.heads[p.hs:p.he])
		}
		if len(p.body) > 0 {
			bufs = append(bufs, p.body)
		}
	}
	return bufs
}

// sub makes s events [lo, hi) of b, with no marks; s's Data (or heads)
// aliases b's.
func (b *Batch) sub(s *Batch, lo, hi int) {
	start := b.Start(lo)
	s.Ends = s.Ends[:0]
	for _, e := range b.Ends[lo:hi] {
		s.Ends = append(s.Ends, e-start)
	}
	s.rejects = s.rejects[:0]
	if b.Vectored() {
		s.Data, s.heads, s.parts = nil, b.heads, b.parts[lo:hi:hi]
		return
	}
	s.Data, s.heads, s.parts = b.Data[start:b.Ends[hi-1]], nil, nil
}

// Reset empties b, keeping its storage.
func (b *Batch) Reset() {
	b.Data, b.Ends, b.rejects = b.Data[:0], b.Ends[:0], b.rejects[:0]
	b.heads = b.heads[:0]
	clear(b.parts) // drop the references to blocks
	b.parts = b.parts[:0]
	clear(b.acked)
	b.acked = b.acked[:0]
}

// Sender delivers batches to one intake. Send is called by one goroutine at
// a time (the output's batcher).
type Sender interface {
	// Send returns nil once the intake has accepted every event of the
	// batch (HTTP 2xx; for syslog, the peer's TCP stack acknowledged every
	// byte) except those it marked with b.Reject: events the intake refused
	// for their content (an event too large, a per-event status), which the
	// batcher keeps in the dead-letter file. Any error is retried with
	// capped backoff: one wrapped by RetryAfter no earlier than its delay;
	// one wrapped by Fixable (a rejected key, a wrong url) likewise, with
	// its retries logged at debug level only, as the Sender logged the fix.
	// An error wrapped by Permanent is not retried: the events are kept in
	// the dead-letter file. Send must return promptly when ctx is done.
	// Errors must never contain secrets (intake keys, tokens).
	Send(ctx context.Context, b *Batch) error
	// Close releases connections. Send is not called after Close.
	Close() error
}

// PermanentError marks a delivery failure of the whole batch that retrying
// cannot fix. The senders of this package do not return it: what an
// operator can fix (HTTP 401/403/404, a redirect, a rejected certificate)
// is retried, and a refusal of one event's content is marked with
// Batch.Reject. A batch failed with it is kept in the dead-letter file.
// Reason is a short metric label.
type PermanentError struct {
	Reason string
	Err    error
}

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError with the given metric reason.
func Permanent(reason string, err error) error {
	return &PermanentError{Reason: reason, Err: err}
}

// FixableError marks a failure that lasts until the operator changes
// something (an intake key the intake rejects, a url that is wrong): the
// batcher retries it with capped backoff like any failure and keeps the
// events (queue, backpressure or spool), and the output reports itself
// down. The Sender that returns it has logged, once per episode, what to
// fix; the batcher logs its retries at debug level only. Reason is the
// failure's metric label ("http_401").
type FixableError struct {
	Reason string
	Err    error
}

func (e *FixableError) Error() string { return e.Err.Error() }
func (e *FixableError) Unwrap() error { return e.Err }

// Fixable wraps err as a FixableError with the given metric reason.
func Fixable(reason string, err error) error {
	return &FixableError{Reason: reason, Err: err}
}

// RetryAfterError asks for the batch to be retried no earlier than After
// (HTTP 429/503 with Retry-After).
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %v)", e.Err, e.After)
}
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter wraps err as a RetryAfterError.
func RetryAfter(d time.Duration, err error) error {
	return &RetryAfterError{After: d, Err: err}
}
