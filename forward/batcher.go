package forward

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/internal/retry"
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
	// DeadLetter keeps the events the output gives up on (reject.go); nil:
	// they are counted as dropped and logged.
	DeadLetter *DeadLetter
	// Timeout is the sender's budget for one request (or write): after a
	// delivery attempt times out the batch goes in smaller requests, and
	// grows back while they take under a quarter of it (see shrink). 0:
	// grow back after each success.
	Timeout time.Duration
	// Dedup, when set, de-duplicates what is routed to this output
	// (DedupSpec).
	Dedup *DedupSpec
}

// Retry backoff: doubling from backoffMin to backoffMax, with full jitter
// over the upper half (retry.Backoff). An intake's Retry-After (HTTP 3xx,
// 429, 503) may delay a retry longer, up to maxRetryAfter.
const (
	backoffMin    = 100 * time.Millisecond
	backoffMax    = 30 * time.Second
	maxRetryAfter = retry.MaxAfter
)

func backoff(attempt int) time.Duration { return retry.Backoff(attempt, backoffMin, backoffMax) }

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
	refs    []recRef // where event i of the batch came from
	sub     Batch    // a chunk of batch, when it goes in parts
	limit   int      // events per request after timeouts; 0: no limit
	pending []*Block // fully read blocks with records in the batch
	firstAt time.Time

	events, bytes, batches, retries *metrics.Counter
	skipNotJSON                     *metrics.Counter
	dropped, deadLettered           func(reason string) *metrics.Counter
	latency, delivery               *metrics.PrometheusHistogram
	// lastOK is when a chunk was last accepted (Unix ns, 0: never); oldest
	// the reception time (Unix ns, 0: none) of the oldest record in the
	// batch under way, set by the batcher as records join the batch (its
	// own copy in batchOldest) and read on scrape.
	lastOK, oldest atomic.Int64
	batchOldest    int64
	overflows      *metrics.Counter
	undelivered    int64
	down           atomic.Bool    // the last delivery attempt failed
	sampled        zerolog.Logger // per-event problems: a few lines per period

	// src gives the blocks and keeps what survives a stop (source.go).
	src source
	// lastErr is the last delivery error, for the status page (status.go).
	lastErr atomic.Pointer[lastError]
	// failing is set while a batch is being retried: with a spool, Stop
	// does not wait for a failing output (its events stay in the spool).
	failing atomic.Bool
	// For health checks (health.go), as monoNow, 0 when not: since the
	// first failed attempt after the last accepted one, and since the
	// start of the Sender.Send under way.
	failingSince, sendingSince atomic.Int64

	// repl is a replacement of the spec waiting for a batch boundary
	// (replace.go); replReady cuts a retry's wait short when one comes.
	repl      atomic.Pointer[replacement]
	replReady chan struct{}
	reRefs    []recRef // reencode's scratch
	reAcked   []bool
}

func newOutput(spec OutputSpec, idx int, set *metrics.Set, log zerolog.Logger) *output {
	o := &output{
		OutputSpec: spec,
		bit:        1 << uint(idx),
		q:          newQueue(spec.QueueSize),
		log:        log.With().Str("output", spec.Name).Logger(),
		done:       make(chan struct{}),
		replReady:  make(chan struct{}, 1),
	}
	o.sampled = o.log.Sample(&zerolog.BurstSampler{Burst: 5, Period: 10 * time.Second})
	o.defaults()
	l := fmt.Sprintf(`{output=%q}`, spec.Name)
	o.events = set.GetOrCreateCounter("dtrelay_output_events_total" + l)
	o.bytes = set.GetOrCreateCounter("dtrelay_output_bytes_total" + l)
	o.batches = set.GetOrCreateCounter("dtrelay_output_batches_total" + l)
	o.retries = set.GetOrCreateCounter("dtrelay_output_retries_total" + l)
	o.dropped = func(reason string) *metrics.Counter {
		return set.GetOrCreateCounter(fmt.Sprintf(`dtrelay_output_dropped_total{output=%q,reason=%q}`, spec.Name, reason))
	}
	o.deadLettered = func(reason string) *metrics.Counter {
		return set.GetOrCreateCounter(fmt.Sprintf(`dtrelay_output_dead_letter_total{output=%q,reason=%q}`, spec.Name, reason))
	}
	o.skipNotJSON = o.dropped("not_json")
	set.GetOrCreateGauge("dtrelay_output_up"+l, func() float64 {
		if o.down.Load() {
			return 0
		}
		return 1
	})
	o.latency = set.GetOrCreatePrometheusHistogramExt("dtrelay_output_send_duration_seconds"+l, DurationBuckets)
	o.delivery = set.GetOrCreatePrometheusHistogramExt("dtrelay_output_delivery_latency_seconds"+l, DurationBuckets)
	o.overflows = set.GetOrCreateCounter("dtrelay_output_spool_overflows_total" + l)
	set.GetOrCreateGauge("dtrelay_output_queue_bytes"+l, func() float64 { return float64(o.q.bytes()) })
	set.GetOrCreateGauge("dtrelay_output_queue_capacity_bytes"+l, func() float64 { return float64(o.q.capacity()) })
	set.GetOrCreateGauge("dtrelay_output_last_success_timestamp_seconds"+l, func() float64 {
		return float64(o.lastOK.Load()) / 1e9
	})
	set.GetOrCreateGauge("dtrelay_output_oldest_pending_seconds"+l, func() float64 {
		return o.oldestPending(time.Now().UnixNano())
	})
	return o
}

// DurationBuckets are the upper bounds, in seconds, of the relay's
// Prometheus histograms (send duration, delivery latency): 1 ms to 10 min.
var DurationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// oldestPending returns the age at now (Unix ns) of the oldest record
// waiting for this output: in the batch under way or first in its memory
// queue; 0 when none waits. Read on scrape: it costs the batcher one
// comparison per record. What an overflowed output has still to read from
// the spool is younger than the batch it reads it into (the spool is read
// in order), so the batch's oldest stands for it.
func (o *output) oldestPending(now int64) float64 {
	t := o.oldest.Load()
	if q := o.q.oldestReceived(o.bit); q > 0 && (t == 0 || q < t) {
		t = q
	}
	if t == 0 || now <= t {
		return 0
	}
	return float64(now-t) / 1e9
}

// defaults fills in the batch limits left zero.
func (o *output) defaults() {
	if o.MaxEvents <= 0 {
		o.MaxEvents = 1000
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 4 << 20
	}
}

// run is the batcher goroutine. It returns when the queue is closed and
// drained, or when o.send is cancelled.
func (o *output) run() {
	defer close(o.done)
	var cur *Block
	off := 0
	for {
		if cur == nil {
			if o.repl.Load() != nil { // a reload rebuilt the output: flush, it applies
				if o.batch.Len() > 0 {
					o.flush()
				}
				o.applyNext()
			}
			wait := time.Duration(-1)
			if o.batch.Len() > 0 {
				wait = 0
				if o.MaxWait > 0 {
					wait = max(time.Until(o.firstAt.Add(o.MaxWait)), 0)
				}
			}
			b, done := o.src.next(wait)
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
			at := off
			mask, off = cur.readRecord(off, &o.rec)
			if mask&o.bit == 0 {
				continue
			}
			first := o.batch.Len() == 0
			var err error
			if se, ok := o.Encoder.(SplitEncoder); ok && len(o.batch.Data) == 0 {
				err = o.batch.AppendSplit(se, &o.rec)
			} else {
				o.batch.Data, err = o.Encoder.Append(o.batch.Data, &o.rec)
				if err == nil {
					o.batch.Ends = append(o.batch.Ends, len(o.batch.Data))
				}
			}
			if err != nil {
				o.skipped(err)
				continue
			}
			if first {
				o.firstAt = time.Now()
			}
			if r := o.rec.Received; r > 0 && (o.batchOldest == 0 || r < o.batchOldest) {
				o.batchOldest = r
				o.oldest.Store(r)
			}
			o.refs = append(o.refs, recRef{cur, at})
			if o.batch.Len() >= o.MaxEvents || o.batch.Size() >= o.MaxBytes {
				o.flush()
			}
		}
		if o.batch.Len() > 0 {
			o.pending = append(o.pending, cur)
		} else {
			o.src.delivered(cur)
		}
		cur = nil
	}
}

// skipped handles an event the encoder refused (o.rec): a message that is
// not JSON is not for this output; one too large for it, or that cannot be
// encoded, goes to the dead-letter file.
func (o *output) skipped(err error) {
	switch {
	case errors.Is(err, ErrSkipOversize):
		o.deadLetter(&o.rec, "oversize")
	case errors.Is(err, ErrSkipNotJSON):
		o.skipNotJSON.Inc()
	default:
		o.sampled.Error().Err(err).Msg("cannot encode event")
		o.deadLetter(&o.rec, "encode")
	}
}

// flush delivers the batch: whole, or in chunks of at most o.limit events
// while the intake is too slow for the timeout (shrink). A chunk that fails
// is retried with backoff until it is accepted or the send context ends.
// Events the intake refused for their content, and a chunk that failed
// permanently, go to the dead-letter file (reject.go). Then flush releases
// the blocks the batch referenced.
func (o *output) flush() {
	n := o.batch.Len()
	// Ack marks, one per event, kept across the retries of this batch.
	o.batch.acked = slices.Grow(o.batch.acked[:0], n)[:n]
	o.src.sending() // before anything can reach the intake
	attempt := 0
	for lo := 0; lo < n; {
		hi := n
		if o.limit > 0 {
			hi = min(n, lo+o.limit)
		}
		b := o.chunk(lo, hi)
		start := time.Now()
		o.sendingSince.Store(monoNow())
		err := o.Sender.Send(o.send, b)
		o.sendingSince.Store(0)
		if err == nil {
			o.accepted(b, lo, time.Since(start), attempt)
			lo, attempt = hi, 0
			continue
		}
		if o.send.Err() != nil {
			o.stopped(n - lo)
			break
		}
		var perm *PermanentError
		if errors.As(err, &perm) {
			o.failingSince.Store(0) // the intake answers: not an outage
			o.rejectRange(lo, hi, perm.Reason, err)
			lo, attempt = hi, 0
			continue
		}
		o.retry(attempt, err, hi-lo)
		attempt++
		if o.repl.Load() != nil { // rebuilt by a reload: the rest goes the new way
			n, lo, attempt = o.reencode(lo), 0, 0
		}
	}
	o.failing.Store(false)
	o.batchOldest = 0
	o.oldest.Store(0)
	o.batch.Reset()
	clear(o.refs)
	o.refs = o.refs[:0]
	o.src.deliveredAll(o.pending)
	clear(o.pending)
	o.pending = o.pending[:0]
	o.applyNext() // a batch boundary: a reload's rebuild takes over here
}

// chunk returns events [lo, hi) of the batch as a Batch of their own, with
// no marks: the batch itself when that is all of it, else o.sub (its Data,
// or its heads and parts, alias the batch's).
func (o *output) chunk(lo, hi int) *Batch {
	if lo == 0 && hi == o.batch.Len() {
		o.batch.rejects = o.batch.rejects[:0]
		return &o.batch
	}
	o.batch.sub(&o.sub, lo, hi)
	o.sub.acked = o.batch.acked[lo:hi] // marks on the chunk are the batch's
	return &o.sub
}

// accepted counts chunk b, events [lo, lo+b.Len()) of the batch, delivered
// in took after attempt failed attempts; the events it marked rejected go
// to the dead-letter file.
func (o *output) accepted(b *Batch, lo int, took time.Duration, attempt int) {
	o.latency.Update(took.Seconds())
	rej := b.Rejected()
	now := time.Now().UnixNano()
	o.lastOK.Store(now)
	o.observeDelivery(lo, b.Len(), rej, now)
	o.events.Add(b.Len() - len(rej))
	o.bytes.Add(b.Size())
	o.batches.Inc()
	for _, r := range rej {
		if r.Index >= 0 && r.Index < b.Len() {
			o.rejectEvent(lo+r.Index, r.Reason)
		}
	}
	o.grow(took)
	o.failingSince.Store(0)
	if o.down.Swap(false) || attempt > 0 {
		o.log.Info().Int("failed_attempts", attempt).Msg("intake accepts events again")
	}
}

// observeDelivery records in the delivery latency histogram, for each of
// the n events of the batch from lo that the intake accepted (not in rej),
// how long ago at now its record was received: one observation per record,
// read from the record headers of the blocks the batch still holds.
func (o *output) observeDelivery(lo, n int, rej []Rejection, now int64) {
	for i := range n {
		if len(rej) > 0 && slices.ContainsFunc(rej, func(r Rejection) bool { return r.Index == i }) {
			continue
		}
		ref := o.refs[lo+i]
		if recv := recordReceived(ref.b.buf, ref.off); recv > 0 {
			o.delivery.Update(float64(max(now-recv, 0)) / 1e9)
		}
	}
}

// stopped handles the rem events left when the send context ended: the
// source keeps what it can for the next start (the spool); the rest is
// lost, counted.
func (o *output) stopped(rem int) {
	lost := o.src.stopped(o.refs[o.batch.Len()-rem:])
	if lost == 0 {
		return
	}
	o.undelivered += int64(lost)
	o.dropped("shutdown").Add(lost)
	o.log.Error().Int("events", lost).Msg("stopped before the intake accepted the batch")
}

// retry waits before attempt+2 at delivering a chunk of events whose
// attempt+1 failed with err, and marks the output down meanwhile. A
// timeout halves the chunk. A Fixable error was logged by the sender, with
// what to fix: its retries are logged at debug level only; other failures
// warn at attempts 1, 2, 4, 8...
func (o *output) retry(attempt int, err error, events int) {
	d := retryDelay(attempt, err)
	o.noteError(err)
	o.retries.Inc()
	o.failing.Store(true)
	o.down.Store(true)
	o.failingSince.CompareAndSwap(0, monoNow())
	if isSlowSend(err) {
		o.shrink(events)
	}
	ev := o.log.Debug()
	var fix *FixableError
	if !errors.As(err, &fix) && attempt&(attempt+1) == 0 { // a long outage logs rarely
		ev = o.log.Warn()
	}
	if o.limit > 0 {
		ev = ev.Int("next_events", o.limit)
	}
	ev.Err(err).Int("events", events).Dur("retry_in", d).Int("attempt", attempt+1).Msg("cannot deliver batch; will retry")
	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-o.send.Done():
		t.Stop()
	case <-o.replReady: // a reload rebuilt the output (flush re-encodes)
		t.Stop()
	}
}

// shrink halves the requests after one of events timed out: an intake too
// slow to take a whole batch within the sender's timeout still takes
// smaller ones, down to one event (DESIGN.md §4: nothing stalls for good).
func (o *output) shrink(events int) {
	if events > 1 {
		o.limit = events / 2
	}
}

// grow doubles the requests again after one went through in took, while
// that is under a quarter of the timeout, up to the whole batch.
func (o *output) grow(took time.Duration) {
	if o.limit == 0 || (o.Timeout > 0 && took >= o.Timeout/4) {
		return
	}
	if o.limit *= 2; o.limit >= o.MaxEvents {
		o.limit = 0
	}
}

// isSlowSend reports whether err is a timeout while sending or waiting for
// the intake's answer, not while connecting: what a smaller request can
// cure (the batcher halves the next one).
func isSlowSend(err error) bool {
	var ne net.Error
	var op *net.OpError
	timeout := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
	return timeout && !(errors.As(err, &op) && op.Op == "dial")
}
