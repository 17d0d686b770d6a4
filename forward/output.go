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

// Skip reasons returned by Encoder.Append. They are counted per output
// (reason "oversize", "not_json"), never sent.
var (
	ErrSkipOversize = errors.New("forward: event too large for this output")
	ErrSkipNotJSON  = errors.New("forward: not a JSON alert")
)

// Batch is a run of encoded events ready to deliver. Data holds the events
// back to back; event i is Data[Ends[i-1]:Ends[i]] (Data[:Ends[0]] for i=0).
// A Sender may frame or wrap the events further (e.g. a JSON array) but
// must not modify Data or keep it after Send returns.
type Batch struct {
	Data []byte
	Ends []int
}

// Len returns the number of events in b.
func (b *Batch) Len() int { return len(b.Ends) }

// Event returns event i of b.
func (b *Batch) Event(i int) []byte {
	start := 0
	if i > 0 {
		start = b.Ends[i-1]
	}
	return b.Data[start:b.Ends[i]]
}

// Reset empties b, keeping its storage.
func (b *Batch) Reset() { b.Data, b.Ends = b.Data[:0], b.Ends[:0] }

// Sender delivers batches to one intake. Send is called by one goroutine at
// a time (the output's batcher).
type Sender interface {
	// Send returns nil once the intake has accepted the whole batch (HTTP
	// 2xx; for syslog, the peer's TCP stack acknowledged every byte). An
	// error wrapped by Permanent is not retried; one wrapped by RetryAfter
	// is retried no earlier than the given delay; any other error is retried
	// with backoff. Send must return promptly when ctx is done. Errors must
	// never contain secrets (intake keys, tokens).
	Send(ctx context.Context, b *Batch) error
	// Close releases connections. Send is not called after Close.
	Close() error
}

// PermanentError marks a delivery failure that retrying cannot fix: the
// batcher drops the batch and counts it under Reason, a short metric label
// such as "http_401". Today only the HTTP senders return one (HTTP 400,
// 401, 403, 404); a rejected TLS certificate is not permanent: it is
// retried, since certificates get fixed or renewed.
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
