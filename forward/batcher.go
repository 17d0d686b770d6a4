package forward

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/spool"
)

// OutputSpec describes one output of the pipeline.
type OutputSpec struct {
	Name    string
	Encoder Encoder
	Sender  Sender
	// QueueSize bounds the memory of the blocks waiting for this output.
	QueueSize int64
	// A batch is sent when it holds MaxEvents events or MaxBytes bytes, or
	// MaxWait after its first event. MaxWait 0 sends as soon as the queue is
	// drained (nothing more is waiting), which batches naturally under load.
	MaxEvents int
	MaxBytes  int
	MaxWait   time.Duration
	// NotJSON: the output also carries messages whose payload is not JSON.
	NotJSON bool
}

// Retry backoff: doubling from backoffMin to backoffMax, with full jitter
// over the upper half. An intake's Retry-After (HTTP 3xx, 429, 503) may
// delay a retry longer, up to maxRetryAfter.
const (
	backoffMin    = 100 * time.Millisecond
	backoffMax    = 30 * time.Second
	maxRetryAfter = 10 * time.Minute
)

func backoff(attempt int) time.Duration {
	d := backoffMax
	if attempt < 20 {
		d = min(backoffMin<<uint(attempt), backoffMax)
	}
	return d/2 + rand.N(d/2+1)
}

// retryDelay is how long flush waits after failed attempt number attempt
// (from 0) with err: the backoff, or the intake's Retry-After when that is
// longer, capped at maxRetryAfter.
func retryDelay(attempt int, err error) time.Duration {
	d := backoff(attempt)
	var ra *RetryAfterError
	if errors.As(err, &ra) && ra.After > d {
		d = min(ra.After, maxRetryAfter)
	}
	return d
}

// output is one output's batcher: it pops blocks from its queue, encodes
// the records routed to it into a Batch and delivers the batch.
type output struct {
	OutputSpec
	bit  uint64
	q    *queue
	log  zerolog.Logger
	done chan struct{}

	// send is the context of deliveries; cancelled when the shutdown
	// deadline passes.
	send context.Context

	batch   Batch
	rec     Record
	pending []*Block // fully read blocks with records in the batch
	firstAt time.Time

	events, bytes, batches, retries *metrics.Counter
	skipOversize, skipNotJSON       *metrics.Counter
	dropped                         func(reason string) *metrics.Counter
	latency                         *metrics.Histogram
	overflows                       *metrics.Counter
	undelivered                     int64

	// With a spool (spool.go): the output's reader; overflow is set when a
	// block could not be queued for it, so it reads from the spool until it
	// has caught up; failing while a batch is being retried.
	reader    *spool.Reader
	overflow  atomic.Bool
	failing   atomic.Bool
	noAck     bool
	spooled   int64 // events left in the spool at stop
	carry     *Block
	p         *Pipeline
	memPos    spool.Pos // of the last block taken from memory
	hasMemPos bool
	handed    spool.Pos // of the last block taken, from memory or disk
	marked    spool.Pos // handed, as last marked in the spool
	// batchMemOnly counts the batch's events that are not in the spool;
	// lostMemOnly such events missed while stopping (added by producers).
	batchMemOnly int
	lostMemOnly  atomic.Int64
}

func newOutput(spec OutputSpec, idx int, set *metrics.Set, log zerolog.Logger) *output {
	o := &output{
		OutputSpec: spec,
		bit:        1 << uint(idx),
		q:          newQueue(spec.QueueSize),
		log:        log.With().Str("output", spec.Name).Logger(),
		done:       make(chan struct{}),
	}
	if o.MaxEvents <= 0 {
		o.MaxEvents = 1000
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 4 << 20
	}
	l := fmt.Sprintf(`{output=%q}`, spec.Name)
	o.events = set.GetOrCreateCounter("dtrelay_output_events_total" + l)
	o.bytes = set.GetOrCreateCounter("dtrelay_output_bytes_total" + l)
	o.batches = set.GetOrCreateCounter("dtrelay_output_batches_total" + l)
	o.retries = set.GetOrCreateCounter("dtrelay_output_retries_total" + l)
	o.dropped = func(reason string) *metrics.Counter {
		return set.GetOrCreateCounter(fmt.Sprintf(`dtrelay_output_dropped_total{output=%q,reason=%q}`, spec.Name, reason))
	}
	o.skipOversize = o.dropped("oversize")
	o.skipNotJSON = o.dropped("not_json")
	o.latency = set.GetOrCreateHistogram("dtrelay_output_send_duration_seconds" + l)
	o.overflows = set.GetOrCreateCounter("dtrelay_output_spool_overflows_total" + l)
	set.GetOrCreateGauge("dtrelay_output_queue_bytes"+l, func() float64 { return float64(o.q.bytes()) })
	return o
}

// run is the batcher goroutine. It returns when the queue is closed and
// drained, or when o.send is cancelled.
func (o *output) run() {
	defer close(o.done)
	var cur *Block
	off := 0
	for {
		if cur == nil {
			wait := time.Duration(-1)
			if o.batch.Len() > 0 {
				wait = 0
				if o.MaxWait > 0 {
					wait = max(time.Until(o.firstAt.Add(o.MaxWait)), 0)
				}
			}
			b, done := o.next(wait)
			if b == nil {
				if o.batch.Len() > 0 {
					o.flush()
				}
				if done {
					return
				}
				continue
			}
			cur, off = b, 0
		}
		for off < len(cur.buf) {
			var mask uint64
			mask, off = cur.readRecord(off, &o.rec)
			if mask&o.bit == 0 {
				continue
			}
			data, err := o.Encoder.Append(o.batch.Data, &o.rec)
			if err != nil {
				o.skipped(err)
				continue
			}
			if o.batch.Len() == 0 {
				o.firstAt = time.Now()
			}
			o.batch.Data = data
			o.batch.Ends = append(o.batch.Ends, len(data))
			if o.rec.memOnly {
				o.batchMemOnly++
			}
			if o.batch.Len() >= o.MaxEvents || len(o.batch.Data) >= o.MaxBytes {
				o.flush()
			}
		}
		if o.batch.Len() > 0 {
			o.pending = append(o.pending, cur)
		} else {
			o.releaseBlock(cur)
		}
		cur = nil
	}
}

func (o *output) skipped(err error) {
	switch {
	case errors.Is(err, ErrSkipOversize):
		o.skipOversize.Inc()
	case errors.Is(err, ErrSkipNotJSON):
		o.skipNotJSON.Inc()
	default:
		o.dropped("encode").Inc()
		o.log.Error().Err(err).Msg("cannot encode event")
	}
}

// releaseBlock is called once the block's records for this output are
// delivered (or given up for good). With a spool it acknowledges them there.
func (o *output) releaseBlock(b *Block) {
	if o.reader != nil && b.hasPos && !o.noAck {
		if err := o.reader.Skip(b.pos); err != nil {
			o.log.Error().Err(err).Msg("cannot acknowledge spooled events")
		}
	}
	if b.disk {
		putBlock(b)
		return
	}
	o.q.release(int64(b.Size()))
	b.release()
}

// flush delivers the batch, retrying transient failures with backoff until
// it is accepted, fails permanently, or the send context ends; then it
// releases the blocks the batch referenced.
func (o *output) flush() {
	n := o.batch.Len()
	o.markHanded() // spool.go: before anything can reach the intake
	for attempt := 0; ; attempt++ {
		start := time.Now()
		err := o.Sender.Send(o.send, &o.batch)
		if err == nil {
			o.latency.UpdateDuration(start)
			o.events.Add(n)
			o.bytes.Add(len(o.batch.Data))
			o.batches.Inc()
			break
		}
		if o.send.Err() != nil {
			if o.reader != nil {
				// Still in the spool: delivered after the restart.
				// Acknowledge nothing more, so the cursor stays before it.
				// Events the spool refused are lost.
				o.noAck = true
				mem := o.batchMemOnly
				o.spooled += int64(n - mem)
				if mem > 0 {
					o.undelivered += int64(mem)
					o.dropped("shutdown").Add(mem)
					o.log.Error().Int("events", mem).Msg("stopped before the intake accepted events that are not in the spool")
				}
				break
			}
			o.undelivered += int64(n)
			o.dropped("shutdown").Add(n)
			o.log.Error().Int("events", n).Msg("stopped before the intake accepted the batch")
			break
		}
		var perm *PermanentError
		if errors.As(err, &perm) {
			o.dropped(perm.Reason).Add(n)
			o.log.Error().Err(err).Int("events", n).Str("reason", perm.Reason).Msg("intake rejected the batch permanently; events dropped")
			break
		}
		d := retryDelay(attempt, err)
		o.retries.Inc()
		o.failing.Store(true)
		ev := o.log.Debug()
		if attempt&(attempt+1) == 0 { // attempts 1, 2, 4, 8, ...: a long outage logs rarely
			ev = o.log.Warn()
		}
		ev.Err(err).Int("events", n).Dur("retry_in", d).Int("attempt", attempt+1).Msg("cannot deliver batch; will retry")
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-o.send.Done():
			t.Stop()
		}
	}
	o.failing.Store(false)
	o.batch.Reset()
	o.batchMemOnly = 0
	for i, b := range o.pending {
		o.releaseBlock(b)
		o.pending[i] = nil
	}
	o.pending = o.pending[:0]
}
