package poller

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
)

// epState is the polling state of one endpoint, owned by its goroutine
// (run), except snap (under snapMu, read by Poller.save) and the atomics
// the metrics read.
type epState struct {
	p       *Poller
	ep      *endpoint
	log     zerolog.Logger
	x       extractor
	body    bytes.Buffer
	pending map[string]struct{} // keys new in the current poll
	again   []string            // keys of the current poll already seen

	checkpoint int64 // end of the last confirmed window, Unix ms
	frontier   int64 // end of the last window forwarded (>= checkpoint)
	seen       *seenSet
	maybe      maybeSet  // forwarded, never confirmed, since forgotten
	inflight   []*window // forwarded, not confirmed yet, in order
	span       time.Duration
	failures   int
	next       time.Time
	savedAt    time.Time
	dirty      bool // keys added since the last snapshot
	limited    sampler

	snapMu sync.Mutex
	snap   savedEndpoint

	cp          atomic.Int64 // checkpoint, for the age gauge
	unconfirmed atomic.Int64 // events forwarded, not confirmed
	events      *metrics.Counter
	forwarded   *metrics.Counter
	resent      *metrics.Counter
	repeats     *metrics.Counter
	gauge       *metrics.Gauge
}

// window is one poll's window whose events are in the pipeline.
type window struct {
	start, end   int64
	d            Delivery
	sent, resent int
}

func newEpState(p *Poller, ep *endpoint, start int64) *epState {
	e := &epState{p: p, ep: ep, log: p.log.With().Str("endpoint", ep.name).Logger(),
		x:       extractor{maxSize: p.cfg.MaxEventSize, secrets: &p.c.secrets},
		pending: make(map[string]struct{}), seen: newSeenSet(), maybe: maybeSet{},
		checkpoint: start, frontier: start, span: p.cfg.MaxWindow, savedAt: time.Now(),
	}
	l := fmt.Sprintf(`{input=%q,endpoint=%q}`, p.cfg.Name, ep.name)
	set := p.set
	e.events = set.GetOrCreateCounter("dtrelay_poller_events_total" + l)
	e.forwarded = set.GetOrCreateCounter("dtrelay_poller_forwarded_total" + l)
	e.resent = set.GetOrCreateCounter("dtrelay_poller_resent_total" + l)
	e.repeats = set.GetOrCreateCounter("dtrelay_poller_repeats_total" + l)
	e.gauge = set.GetOrCreateGauge("dtrelay_poller_checkpoint_timestamp_seconds"+l, nil)
	set.GetOrCreateGauge("dtrelay_poller_checkpoint_age_seconds"+l, func() float64 {
		return float64(p.cfg.now().UnixMilli()-e.cp.Load()) / 1e3
	})
	set.GetOrCreateGauge("dtrelay_poller_unconfirmed_events"+l, func() float64 { return float64(e.unconfirmed.Load()) })
	e.setCheckpoint(start)
	return e
}

// load takes the saved state of the endpoint.
func (e *epState) load(s savedEndpoint) {
	e.setCheckpoint(s.Checkpoint)
	e.frontier = s.Checkpoint
	for _, se := range s.Seen {
		if se.U {
			e.maybe[se.K] = se.E
			continue
		}
		e.seen.keys[se.K] = seenVal{first: min(se.E, s.Checkpoint), last: se.E}
		e.seen.order = append(e.seen.order, seenEntry{K: se.K, E: se.E})
	}
	slices.SortFunc(e.seen.order, func(a, b seenEntry) int { return cmp.Compare(a.E, b.E) })
}

func (e *epState) setCheckpoint(ms int64) {
	e.checkpoint = ms
	e.cp.Store(ms)
	e.gauge.Set(float64(ms) / 1e3)
}

// run polls the endpoint until ctx is done, then settles (RunSettle).
func (e *epState) run(ctx context.Context, settled <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		e.settle(false)
		if ctx.Err() != nil {
			e.finish(settled)
			return
		}
		var head <-chan struct{}
		if len(e.inflight) > 0 {
			head = e.inflight[0].d.Done()
		}
		if d := time.Until(e.next); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				continue
			case <-head:
				timer.Stop()
				continue
			case <-timer.C:
			}
		}
		if ctx.Err() == nil {
			e.poll(ctx)
		}
	}
}

// finish waits for the deliveries under way until settled is closed (nil:
// not at all), commits those that succeed and saves.
func (e *epState) finish(settled <-chan struct{}) {
	for len(e.inflight) > 0 && settled != nil {
		select {
		case <-e.inflight[0].d.Done():
			e.settle(true)
		case <-settled:
			settled = nil
		}
	}
	e.settle(true)
	e.snapshot()
}

// poll requests one window of the endpoint and forwards what is new; then
// it schedules the next poll. The window starts Overlap before the end of
// the last one forwarded, whether or not its events are confirmed yet.
func (e *epState) poll(ctx context.Context) {
	cfg := &e.p.cfg
	now := cfg.now().UnixMilli()
	if e.frontier > now {
		e.log.Warn().Time("checkpoint", time.UnixMilli(e.frontier)).
			Msg("checkpoint is in the future (clock set back?): polling from now")
		e.frontier = now
		if e.checkpoint > now {
			e.setCheckpoint(now)
		}
	}
	start, end := e.frontier-cfg.Overlap.Milliseconds(), now
	caughtUp := true
	if span := e.span.Milliseconds(); end-start > span {
		end, caughtUp = start+span, false
	}
	q := maps.Clone(e.ep.params)
	q.Set("starttime", strconv.FormatInt(start, 10))
	q.Set("endtime", strconv.FormatInt(end, 10))
	status, err := e.p.c.get(ctx, e.ep.path, q, &e.body)
	st := "error"
	if status != 0 {
		st = strconv.Itoa(status)
	}
	e.p.set.GetOrCreateCounter(fmt.Sprintf(`dtrelay_poller_requests_total{input=%q,endpoint=%q,status=%q}`, cfg.Name, e.ep.name, st)).Inc()
	if err == nil {
		err = e.forward(start, end)
	}
	if e.body.Cap() > 32<<20 {
		e.body = bytes.Buffer{} // do not pin a rare huge answer
	}
	if ctx.Err() != nil {
		return // stopping: not a failure
	}
	if err != nil {
		e.failed(err)
		return
	}
	if e.failures > 0 {
		e.log.Info().Int("failures", e.failures).Msg("polling recovered")
	}
	e.failures = 0
	e.span = min(e.span*2, cfg.MaxWindow)
	e.next = time.Now()
	if caughtUp {
		e.next = e.next.Add(cfg.Interval)
	}
}

// forward hands the new events of the response in e.body to the sink and
// puts the window in flight: its keys join the de-duplication memory at
// once (the next window, which overlaps it, must not forward them again),
// and the checkpoint reaches its end once its delivery and those of the
// windows before it succeeded (settle).
func (e *epState) forward(start, end int64) error {
	items, err := e.x.extract(e.body.Bytes(), e.ep)
	if err != nil {
		return fmt.Errorf("cannot read the answer of GET %s: %w", e.ep.path, err)
	}
	clear(e.pending)
	e.again = e.again[:0]
	var (
		pr                 Producer
		sent, resent, dups int
		drops              map[string]int
		dropKey            map[string]string // one example key per reason, for the log
	)
	for i := range items {
		it := &items[i]
		if _, ok := e.pending[it.key]; ok {
			dups++
			continue
		}
		if e.seen.has(it.key) {
			e.again = append(e.again, it.key)
			dups++
			continue
		}
		e.pending[it.key] = struct{}{}
		if it.drop != "" {
			if drops == nil {
				drops, dropKey = map[string]int{}, map[string]string{}
			}
			drops[it.drop]++
			dropKey[it.drop] = it.key
			continue
		}
		if _, ok := e.maybe[it.key]; ok {
			delete(e.maybe, it.key)
			resent++
		}
		if pr == nil {
			pr = e.p.sink.Get()
		}
		pr.Frame(it.ev)
		sent++
	}
	w := &window{start: start, end: end, sent: sent, resent: resent}
	if pr != nil {
		w.d = pr.Publish()
		e.p.sink.Put(pr)
	}
	for _, k := range e.again {
		e.seen.add(k, end)
	}
	for k := range e.pending {
		e.seen.add(k, end)
	}
	e.dirty = e.dirty || len(e.pending) > 0
	e.frontier = end
	e.inflight = append(e.inflight, w)
	e.unconfirmed.Add(int64(sent))
	e.forwarded.Add(sent)
	e.resent.Add(resent)
	e.repeats.Add(dups)
	e.p.dups.Add(dups)
	for r, n := range drops {
		e.p.errorsFor(r).Add(n)
		key := redact(errors.New(dropKey[r]), &e.p.c.secrets).Error()
		e.log.Warn().Str("reason", r).Int("events", n).Str("example_key", key).
			Int("max_event_size", e.p.cfg.MaxEventSize).Msg("events dropped, counted in dtrelay_poller_errors_total")
	}
	ev := e.log.Debug()
	if sent > 0 {
		ev = e.log.Info()
	}
	if resent > 0 {
		ev = ev.Int("resent", resent)
	}
	ev.Int("events", sent).Int("duplicates", dups).
		Time("from", time.UnixMilli(start)).Time("to", time.UnixMilli(end)).Msg("polled")
	return nil
}

// settle commits the windows in flight whose delivery succeeded, in order,
// up to the first one still under way; a failed delivery sends the poller
// back to the checkpoint (stopping: not counted as a failure).
func (e *epState) settle(stopping bool) {
	committed := false
	for len(e.inflight) > 0 {
		w := e.inflight[0]
		if w.d != nil {
			select {
			case <-w.d.Done():
			default:
				e.saveIfDue(committed)
				return
			}
			if err := w.d.Err(); err != nil {
				e.deliveryFailed(w, err, stopping)
				return
			}
		}
		e.inflight[0] = nil
		e.inflight = e.inflight[1:]
		e.setCheckpoint(w.end)
		cut := w.end - e.p.cfg.Overlap.Milliseconds()
		e.seen.expire(cut)
		e.maybe.expire(cut)
		e.unconfirmed.Add(-int64(w.sent))
		e.events.Add(w.sent)
		committed = true
	}
	e.saveIfDue(committed)
}

// deliveryFailed forgets the windows in flight from w on: their events are
// forwarded again from the checkpoint (possible duplicates, counted
// resent_total then).
func (e *epState) deliveryFailed(w *window, err error, stopping bool) {
	for _, x := range e.inflight {
		e.unconfirmed.Add(-int64(x.sent))
	}
	clear(e.inflight)
	e.inflight = e.inflight[:0]
	maps.Copy(e.maybe, e.seen.forgetAfter(e.checkpoint))
	e.frontier = e.checkpoint
	e.dirty = true
	if !stopping {
		e.failed(fmt.Errorf("%w of %d events from %s: %w", errDelivery, w.sent, e.ep.path, err))
	}
}

// saveEvery is how often the state is saved when only checkpoints moved;
// a commit that confirmed new keys saves at once, and Run saves when it
// returns.
const saveEvery = 5 * time.Second

func (e *epState) saveIfDue(committed bool) {
	if !committed || (!e.dirty && time.Since(e.savedAt) < saveEvery) {
		return
	}
	e.snapshot()
	e.p.save()
}

// snapshot makes the state to save: the checkpoint and the keys held,
// those of windows not confirmed (and maybe's) marked U.
func (e *epState) snapshot() {
	seen := e.seen.entries(e.checkpoint)
	for k, last := range e.maybe {
		seen = append(seen, seenEntry{K: k, E: last, U: true})
	}
	e.snapMu.Lock()
	e.snap = savedEndpoint{Checkpoint: e.checkpoint, Seen: seen}
	e.snapMu.Unlock()
	e.dirty = false
	e.savedAt = time.Now()
}

// failed counts err and schedules the next attempt with backoff.
func (e *epState) failed(err error) {
	p := e.p
	err = redact(err, &p.c.secrets)
	e.failures++
	r := reason(err)
	p.errorsFor(r).Inc()
	if errors.Is(err, ErrTooLarge) {
		e.span = max(e.span/2, p.cfg.Overlap+min(p.cfg.Interval, time.Second))
	}
	d := p.backoff(e.failures)
	var ra *retryAfterError
	if errors.As(err, &ra) {
		d = max(d, min(ra.after, p.cfg.MaxBackoff))
	}
	e.next = time.Now().Add(d)
	var ev *zerolog.Event
	switch {
	case r == "rate_limited":
		// Rate limiting comes and goes between successful polls: the
		// first is logged, then one summary per minute at most.
		n, ok := e.limited.take(time.Now())
		if !ok {
			ev = e.log.Debug()
			break
		}
		ev = e.log.Warn()
		if n > 0 {
			ev = ev.Int("since_last_logged", n)
		}
	case e.failures&(e.failures-1) != 0: // attempts 1, 2, 4, 8...: a long outage logs rarely
		ev = e.log.Debug()
	case r == "signature" || r == "date" || r == "login_redirect" || r == "forbidden" || r == "unauthorized" || r == "tls":
		ev = e.log.Error() // configuration problems
	default:
		ev = e.log.Warn()
	}
	ev.Err(err).Str("reason", r).Int("attempt", e.failures).Dur("retry_in", d).
		Msg("cannot poll the Darktrace API; will retry")
}

// sampler lets one event through per period, counting the others.
type sampler struct {
	last   time.Time
	missed int
}

const samplePeriod = time.Minute

// take reports whether to log now, and how many were not logged since the
// last one.
func (s *sampler) take(now time.Time) (missed int, ok bool) {
	if !s.last.IsZero() && now.Sub(s.last) < samplePeriod {
		s.missed++
		return 0, false
	}
	missed, s.missed, s.last = s.missed, 0, now
	return missed, true
}
