package poller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/internal/retry"
)

// forward hands the new events of the response in p.body to the sink and,
// once the pipeline confirmed them, commits the window [start, end]: the
// keys join the de-duplication memory, the checkpoint moves to end and the
// state is saved. On error nothing is committed.
func (p *Poller) forward(ctx context.Context, e *epState, start, end int64) error {
	items, err := p.x.extract(p.body.Bytes(), e.ep)
	if err != nil {
		return fmt.Errorf("cannot read the answer of GET %s: %w", e.ep.path, err)
	}
	clear(p.pending)
	p.again = p.again[:0]
	var (
		pr      Producer
		sent    int
		dups    int
		drops   map[string]int
		dropKey map[string]string // one example key per reason, for the log
	)
	for i := range items {
		it := &items[i]
		if _, ok := p.pending[it.key]; ok {
			dups++
			continue
		}
		if e.seen.has(it.key) {
			p.again = append(p.again, it.key)
			dups++
			continue
		}
		p.pending[it.key] = struct{}{}
		if it.drop != "" {
			if drops == nil {
				drops, dropKey = map[string]int{}, map[string]string{}
			}
			drops[it.drop]++
			dropKey[it.drop] = it.key
			continue
		}
		if pr == nil {
			pr = p.sink.Get()
		}
		pr.Frame(it.ev)
		sent++
	}
	if pr != nil {
		err := pr.FlushWait(ctx)
		p.sink.Put(pr)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%w of %d events from %s: %w", errDelivery, sent, e.ep.path, err)
		}
	}
	p.commit(e, end)
	e.events.Add(sent)
	p.dups.Add(dups)
	for r, n := range drops {
		p.errorsFor(r).Add(n)
		key := redact(errors.New(dropKey[r]), &p.c.secrets).Error()
		p.log.Warn().Str("endpoint", e.ep.name).Str("reason", r).Int("events", n).Str("example_key", key).
			Int("max_event_size", p.cfg.MaxEventSize).Msg("events dropped, counted in dtrelay_poller_errors_total")
	}
	ev := p.log.Debug()
	if sent > 0 {
		ev = p.log.Info()
	}
	ev.Str("endpoint", e.ep.name).Int("events", sent).Int("duplicates", dups).
		Time("from", time.UnixMilli(start)).Time("to", time.UnixMilli(end)).Msg("polled")
	return nil
}

// commit records the confirmed window ending at end. Keys seen again are
// refreshed: their event may come back as long as windows return it.
func (p *Poller) commit(e *epState, end int64) {
	evicted := 0
	for _, k := range p.again {
		evicted += e.seen.add(k, end)
	}
	for k := range p.pending {
		evicted += e.seen.add(k, end)
	}
	e.checkpoint = end
	e.seen.expire(end - p.cfg.Overlap.Milliseconds())
	e.gauge.Set(float64(end) / 1e3)
	if evicted > 0 {
		p.errorsFor("dedup_full").Add(evicted)
		p.log.Warn().Str("endpoint", e.ep.name).Int("forgotten", evicted).Int("max_seen", p.cfg.MaxSeen).
			Msg("de-duplication memory full: the oldest keys were forgotten, their events may be forwarded again")
	}
	if len(p.pending) > 0 || time.Since(p.savedAt) >= saveEvery {
		p.save()
	}
}

// saveEvery is how often the state is saved when only checkpoints moved;
// new keys are saved at once, and Run saves when it returns.
const saveEvery = 5 * time.Second

// save writes the committed state of every endpoint to the state file, if
// there is one.
func (p *Poller) save() {
	if p.statePath == "" {
		return
	}
	st := &savedState{Version: stateVersion, Endpoints: map[string]savedEndpoint{}}
	for _, o := range p.eps {
		st.Endpoints[o.ep.name] = savedEndpoint{Checkpoint: o.checkpoint, Seen: o.seen.entries()}
	}
	p.savedAt = time.Now()
	if err := saveState(p.statePath, st); err != nil {
		p.errorsFor("state").Inc()
		p.log.Error().Err(err).Msg("cannot save the poller checkpoint; a restart may forward some events again")
	}
}

// failed counts err and schedules the next attempt of e with backoff.
func (p *Poller) failed(e *epState, err error) {
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
	case e.failures&(e.failures-1) != 0: // attempts 1, 2, 4, 8...: a long outage logs rarely
		ev = p.log.Debug()
	case r == "signature" || r == "date" || r == "login_redirect" || r == "forbidden" || r == "unauthorized":
		ev = p.log.Error() // configuration problems
	default:
		ev = p.log.Warn()
	}
	ev.Err(err).Str("endpoint", e.ep.name).Str("reason", r).Int("attempt", e.failures).Dur("retry_in", d).
		Msg("cannot poll the Darktrace API; will retry")
}

// backoff returns the delay before attempt n+1 after n failures: from
// min(Interval, 1s), doubling, capped at MaxBackoff, jittered down to half.
func (p *Poller) backoff(n int) time.Duration {
	return retry.Backoff(n-1, min(p.cfg.Interval, time.Second), p.cfg.MaxBackoff)
}
