package poller

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/internal/secret"
)

// Defaults of Config's optional fields.
const (
	DefaultInterval        = 60 * time.Second
	DefaultOverlap         = 5 * time.Minute
	DefaultMaxWindow       = time.Hour
	DefaultTimeout         = 60 * time.Second
	DefaultMaxEventSize    = 256 << 10
	DefaultMaxResponseSize = 256 << 20
	DefaultMaxSeen         = 100_000
	DefaultMaxBackoff      = 5 * time.Minute
)

// Config configures a Poller. The first fields mirror config.Input
// (protocol darktrace-api); zero optional fields take the defaults above.
type Config struct {
	// Name is the input's name, in metrics and logs.
	Name string
	// URL is the base URL of the Darktrace instance
	// (https://example.cloud.darktrace.com); endpoint paths are appended.
	URL string
	// PublicToken and PrivateToken sign requests. Secrets: they never
	// appear in logs, metrics or errors.
	PublicToken, PrivateToken string
	// Interval is the polling period.
	Interval time.Duration
	// CAFile is an extra CA bundle (PEM) trusted besides the system's.
	CAFile string
	// NoSystemRoots trusts CAFile's CAs alone (system_roots: false); it
	// requires CAFile.
	NoSystemRoots bool
	// StateDir, when set, is where the checkpoints are saved
	// (poller-<name>.json); the relay passes spool.dir.
	StateDir string

	// Overlap is how far before the end of the last confirmed window the
	// next window starts. It must cover Darktrace's lag between an event's
	// time and the moment the API returns it.
	Overlap time.Duration
	// MaxWindow caps one request's window (catching up after a stop goes
	// by steps of MaxWindow, back to back). It must exceed Overlap.
	MaxWindow time.Duration
	// Timeout bounds one request, body included.
	Timeout time.Duration
	// MaxEventSize is the largest event forwarded (the input's
	// max_message_size); larger ones are dropped and counted "oversize".
	MaxEventSize int
	// MaxResponseSize caps a response body.
	MaxResponseSize int64
	// MaxSeen caps the de-duplication memory, in keys per endpoint.
	MaxSeen int
	// MaxBackoff caps the delay between attempts after errors.
	MaxBackoff time.Duration

	now func() time.Time // tests skew the clock
}

func (c *Config) complete() error {
	set := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	set(&c.Interval, DefaultInterval)
	set(&c.Overlap, DefaultOverlap)
	set(&c.MaxWindow, DefaultMaxWindow)
	set(&c.Timeout, DefaultTimeout)
	set(&c.MaxBackoff, DefaultMaxBackoff)
	if c.MaxEventSize == 0 {
		c.MaxEventSize = DefaultMaxEventSize
	}
	if c.MaxResponseSize == 0 {
		c.MaxResponseSize = DefaultMaxResponseSize
	}
	if c.MaxSeen == 0 {
		c.MaxSeen = DefaultMaxSeen
	}
	if c.now == nil {
		c.now = time.Now
	}
	switch {
	case c.Name == "":
		return errors.New("poller: name is required")
	case c.PublicToken == "" || c.PrivateToken == "":
		return errors.New("poller: public_token and private_token are required")
	case c.Interval < 0 || c.Overlap < time.Millisecond || c.Timeout < 0 || c.MaxBackoff < 0:
		return errors.New("poller: interval, overlap, timeout and max backoff must be positive (overlap at least 1ms)")
	case c.MaxWindow <= c.Overlap:
		return fmt.Errorf("poller: max window (%s) must exceed overlap (%s)", c.MaxWindow, c.Overlap)
	case c.MaxEventSize < 0 || c.MaxResponseSize < 0 || c.MaxSeen < 0:
		return errors.New("poller: size limits must be positive")
	}
	return nil
}

// Poller polls one Darktrace instance and hands the events to a Sink. Create
// it with New and run it with Run, once.
type Poller struct {
	cfg       Config
	sink      Sink
	set       *metrics.Set
	log       zerolog.Logger
	c         *client
	x         extractor
	eps       []*epState
	statePath string
	savedAt   time.Time
	body      bytes.Buffer
	pending   map[string]struct{} // keys new in the current poll
	again     []string            // keys of the current poll already seen
	dups      *metrics.Counter
}

// epState is the polling state of one endpoint.
type epState struct {
	ep         *endpoint
	checkpoint int64 // end of the last confirmed window, Unix ms
	seen       *seenSet
	span       time.Duration // current window cap: MaxWindow, halved on ErrTooLarge
	failures   int
	next       time.Time
	events     *metrics.Counter
	gauge      *metrics.Gauge
}

// New checks cfg, builds the HTTP client and loads the saved state, if any
// (an unreadable state file is logged and ignored). Nothing is requested
// before Run. set may be nil (metrics then go to a private set).
func New(cfg Config, sink Sink, set *metrics.Set, log zerolog.Logger) (*Poller, error) {
	if err := cfg.complete(); err != nil {
		return nil, err
	}
	c, err := newClient(&cfg)
	if err != nil {
		return nil, err
	}
	if set == nil {
		set = metrics.NewSet()
	}
	p := &Poller{cfg: cfg, sink: sink, set: set, c: c,
		log:     log.With().Str("input", cfg.Name).Logger(),
		x:       extractor{maxSize: cfg.MaxEventSize, secrets: &c.secrets},
		pending: make(map[string]struct{}),
	}
	p.dups = set.GetOrCreateCounter(fmt.Sprintf(`dtrelay_poller_duplicates_total{input=%q}`, cfg.Name))
	for _, r := range []string{"signature", "date", "login_redirect", "forbidden", "unauthorized", "redirect",
		"http_status", "bad_response", "too_large", "timeout", "transport", "delivery",
		dropNotObject, dropInvalid, dropOversize, "dedup_full", "state"} {
		p.errorsFor(r)
	}
	var saved *savedState
	if cfg.StateDir != "" {
		p.statePath = statePath(cfg.StateDir, cfg.Name)
		if saved, err = loadState(p.statePath); err != nil {
			p.log.Error().Err(err).Msg("cannot use the saved poller state; starting from now - interval")
			p.errorsFor("state").Inc()
		}
	}
	start := cfg.now().Add(-cfg.Interval).UnixMilli()
	for _, ep := range endpoints() {
		e := &epState{ep: ep, checkpoint: start, seen: newSeenSet(cfg.MaxSeen), span: cfg.MaxWindow,
			events: set.GetOrCreateCounter(fmt.Sprintf(`dtrelay_poller_events_total{input=%q,endpoint=%q}`, cfg.Name, ep.name)),
			gauge:  set.GetOrCreateGauge(fmt.Sprintf(`dtrelay_poller_checkpoint_timestamp_seconds{input=%q,endpoint=%q}`, cfg.Name, ep.name), nil),
		}
		if s, ok := saved.endpoint(ep.name); ok {
			e.checkpoint = s.Checkpoint
			for _, se := range s.Seen {
				e.seen.add(se.K, se.E)
			}
			p.log.Info().Str("endpoint", ep.name).Time("checkpoint", time.UnixMilli(s.Checkpoint)).
				Int("seen", e.seen.len()).Msg("resuming from the saved checkpoint")
		}
		e.gauge.Set(float64(e.checkpoint) / 1e3)
		p.eps = append(p.eps, e)
	}
	return p, nil
}

func (s *savedState) endpoint(name string) (savedEndpoint, bool) {
	if s == nil {
		return savedEndpoint{}, false
	}
	e, ok := s.Endpoints[name]
	return e, ok
}

func (p *Poller) errorsFor(reason string) *metrics.Counter {
	return p.set.GetOrCreateCounter(fmt.Sprintf(`dtrelay_poller_errors_total{input=%q,reason=%q}`, p.cfg.Name, reason))
}

// Run polls until ctx is done, then returns nil; call it once. A poll
// under way is abandoned: its window is polled again at the next start, and
// events the pipeline delivered meanwhile without confirming are forwarded
// again then. Producer.Frame may block while the pipeline is full: stop
// with the pipeline unblocked (forward.Pipeline.Unblock), then cancel ctx
// and wait for Run, then stop the pipeline.
func (p *Poller) Run(ctx context.Context) error {
	defer p.c.close()
	defer p.save()
	p.log.Info().Str("url", secret.ShowURL(&p.c.base)).Dur("interval", p.cfg.Interval).Msg("polling the Darktrace API")
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		e := p.eps[0]
		for _, o := range p.eps[1:] {
			if o.next.Before(e.next) {
				e = o
			}
		}
		if d := time.Until(e.next); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C:
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		p.poll(ctx, e)
	}
}

// poll requests one window of e's endpoint, forwards what is new and, once
// the pipeline confirmed it, moves the checkpoint; then it schedules e.
func (p *Poller) poll(ctx context.Context, e *epState) {
	now := p.cfg.now().UnixMilli()
	if e.checkpoint > now {
		p.log.Warn().Str("endpoint", e.ep.name).Time("checkpoint", time.UnixMilli(e.checkpoint)).
			Msg("checkpoint is in the future (clock set back?): polling from now")
		e.checkpoint = now
	}
	start, end := e.checkpoint-p.cfg.Overlap.Milliseconds(), now
	caughtUp := true
	if span := e.span.Milliseconds(); end-start > span {
		end, caughtUp = start+span, false
	}
	q := maps.Clone(e.ep.params)
	q.Set("starttime", strconv.FormatInt(start, 10))
	q.Set("endtime", strconv.FormatInt(end, 10))
	status, err := p.c.get(ctx, e.ep.path, q, &p.body)
	st := "error"
	if status != 0 {
		st = strconv.Itoa(status)
	}
	p.set.GetOrCreateCounter(fmt.Sprintf(`dtrelay_poller_requests_total{input=%q,endpoint=%q,status=%q}`, p.cfg.Name, e.ep.name, st)).Inc()
	if err == nil {
		err = p.forward(ctx, e, start, end)
	}
	if p.body.Cap() > 32<<20 {
		p.body = bytes.Buffer{} // do not pin a rare huge answer
	}
	if ctx.Err() != nil {
		return // stopping: not a failure
	}
	if err != nil {
		p.failed(e, err)
		return
	}
	if e.failures > 0 {
		p.log.Info().Str("endpoint", e.ep.name).Int("failures", e.failures).Msg("polling recovered")
	}
	e.failures = 0
	e.span = min(e.span*2, p.cfg.MaxWindow)
	e.next = time.Now()
	if caughtUp {
		e.next = e.next.Add(p.cfg.Interval)
	}
}
