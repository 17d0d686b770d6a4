package poller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/internal/retry"
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
	// (poller-<name>.json); the relay passes the input's state_dir
	// (default: spool.dir, else /var/lib/dtrelay).
	StateDir string

	// Overlap is how far before the end of the last window the next window
	// starts. It must cover Darktrace's lag between an event's time and the
	// moment the API returns it: model breaches are asked for by creation
	// time (creationtime=true), so for them only the API's own indexing lag
	// counts; AI Analyst events are asked for by their time, so one written
	// more than Overlap after its time is missed.
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
	case c.MaxEventSize < 0 || c.MaxResponseSize < 0:
		return errors.New("poller: size limits must be positive")
	}
	return nil
}

// Poller polls one Darktrace instance and hands the events to a Sink. Create
// it with New and run it with Run, once. Each endpoint is polled by its own
// goroutine, so that a slow or failing one does not delay the other.
type Poller struct {
	cfg       Config
	sink      Sink
	set       *metrics.Set
	log       zerolog.Logger
	c         *client
	eps       []*epState
	statePath string
	saveMu    sync.Mutex
	dups      *metrics.Counter
}

// New checks cfg, builds the HTTP client and loads the saved state, if any
// (an unreadable state file is logged and ignored; a StateDir where the
// state cannot be written is an error). Nothing is requested before Run.
// set may be nil (metrics then go to a private set).
func New(cfg Config, sink Sink, set *metrics.Set, log zerolog.Logger) (*Poller, error) {
	if err := cfg.complete(); err != nil {
		return nil, err
	}
	if cfg.StateDir != "" {
		if err := CheckStateDir(cfg.StateDir); err != nil {
			return nil, err
		}
	}
	c, err := newClient(&cfg)
	if err != nil {
		return nil, err
	}
	if set == nil {
		set = metrics.NewSet()
	}
	p := &Poller{cfg: cfg, sink: sink, set: set, c: c, log: log.With().Str("input", cfg.Name).Logger()}
	p.dups = set.GetOrCreateCounter(fmt.Sprintf(`dtrelay_poller_duplicates_total{input=%q}`, cfg.Name))
	// The polling period, for rules on dtrelay_poller_checkpoint_age_seconds
	// (set, not a callback: a reload's new Poller of the same input updates it).
	set.GetOrCreateGauge(fmt.Sprintf(`dtrelay_poller_interval_seconds{input=%q}`, cfg.Name), nil).Set(cfg.Interval.Seconds())
	for _, r := range []string{"signature", "date", "login_redirect", "forbidden", "unauthorized", "redirect",
		"rate_limited", "http_status", "bad_response", "too_large", "timeout", "tls", "transport", "delivery",
		dropNotObject, dropInvalid, dropOversize, "state"} {
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
		e := newEpState(p, ep, start)
		if s, ok := saved.endpoint(ep.name); ok {
			e.load(s)
			e.log.Info().Time("checkpoint", time.UnixMilli(s.Checkpoint)).Int("seen", e.seen.len()).
				Int("unconfirmed", len(e.maybe)).Msg("resuming from the saved checkpoint")
		}
		e.snapshot()
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
// under way is abandoned: its window is polled again at the next start.
// Deliveries under way are not waited for (see RunSettle): their events
// are forwarded again at the next start, counted in resent_total.
// Producer.Frame may block while the pipeline is full: stop with the
// pipeline unblocked (forward.Pipeline.Unblock), then cancel ctx and wait
// for Run, then stop the pipeline.
func (p *Poller) Run(ctx context.Context) error { return p.RunSettle(ctx, nil) }

// RunSettle is Run, except that once ctx is done it goes on waiting for the
// deliveries under way, committing each as it succeeds, until they are all
// settled or settled is closed; then it saves the state and returns. The
// relay cancels ctx, stops the pipeline (which drains the outputs), then
// closes settled: a graceful stop then forwards nothing twice at the next
// start.
func (p *Poller) RunSettle(ctx context.Context, settled <-chan struct{}) error {
	defer p.c.close()
	p.log.Info().Str("url", secret.ShowURL(&p.c.base)).Dur("interval", p.cfg.Interval).
		Dur("overlap", p.cfg.Overlap).Str("state", p.statePath).Msg("polling the Darktrace API")
	var wg sync.WaitGroup
	for _, e := range p.eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.run(ctx, settled)
		}()
	}
	wg.Wait()
	p.save()
	return nil
}

// save writes the state each endpoint committed last to the state file, if
// there is one. It is safe for concurrent use.
func (p *Poller) save() {
	if p.statePath == "" {
		return
	}
	p.saveMu.Lock()
	defer p.saveMu.Unlock()
	st := &savedState{Version: stateVersion, Endpoints: map[string]savedEndpoint{}}
	for _, e := range p.eps {
		e.snapMu.Lock()
		st.Endpoints[e.ep.name] = e.snap
		e.snapMu.Unlock()
	}
	if err := saveState(p.statePath, st); err != nil {
		p.errorsFor("state").Inc()
		p.log.Error().Err(err).Msg("cannot save the poller checkpoint; a restart may forward some events again")
	}
}

// backoff returns the delay before attempt n+1 after n failures: from
// min(Interval, 1s), doubling, capped at MaxBackoff, jittered down to half.
func (p *Poller) backoff(n int) time.Duration {
	return retry.Backoff(n-1, min(p.cfg.Interval, time.Second), p.cfg.MaxBackoff)
}
