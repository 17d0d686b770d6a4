package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/config"
	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/internal/secret"
	"github.com/dtrelay/dtrelay/poller"
	"github.com/dtrelay/dtrelay/receiver"
	"github.com/dtrelay/dtrelay/spool"
)

// Relay is a running dtrelay.
type Relay struct {
	cfg   *config.Config
	log   zerolog.Logger
	set   *metrics.Set
	pipe  *forward.Pipeline
	spool *spool.Spool

	pollers     sync.WaitGroup
	stopPolling context.CancelFunc
	settled     chan struct{}        // closed once the pipeline stopped: pollers commit what it delivered
	listeners   []*receiver.Listener // replaced (not modified) by Reload, under lmu
	lmu         sync.RWMutex
	httpSrv     *http.Server
	metricsLn   net.Listener

	outputs []forward.OutputSpec // their dead-letter files are closed at Stop
	health  healthState          // /healthz and /readyz (health.go)
	sources *sourceTable         // sources.go
	stopSrc chan struct{}        // ends the silence checker

	// For Reload (reload.go); mu also guards cfg.
	mu        sync.Mutex
	ins       []*inputState // in configuration order
	outs      []outputState
	routes    savedRoutes
	partial   *receiver.PartialBudget
	pollCtx   context.Context
	maxMsg    int // the largest max_message_size at Start: the spool's record limit
	inMetrics map[string]*receiver.Metrics
	reloads   reloadMetrics

	// For the status page (status.go): the secrets of every configuration
	// applied, redacted from errors and warnings; the last warnings; the
	// inputs' rates.
	secrets   atomic.Pointer[secret.Set]
	secretSrc *secretSource // under mu
	warnings  *Warnings
	rates     rateSampler
}

// Start builds and starts a relay: outputs and pipeline first, then the
// receivers, then the metrics listener. On error, what was started is stopped.
func Start(cfg *config.Config, set *metrics.Set, log zerolog.Logger, options ...Option) (*Relay, error) {
	r := &Relay{cfg: cfg, log: log, set: set, inMetrics: map[string]*receiver.Metrics{}, reloads: newReloadMetrics(set)}
	for _, o := range options {
		o(r)
	}
	r.setSecrets(cfg)
	registerBuildInfo(set)
	r.sources = newSourceTable(cfg.Metrics.MaxSources, set, log, func(mask uint64) []string { return r.pipe.OutputNames(mask) })
	opts := forward.Options{Metrics: set, Log: log, Sources: r.sources}
	outIdx := map[string]int{}
	for i, oc := range cfg.Outputs {
		spec, err := buildOutput(oc, cfg.DeadLetter, set, log)
		if err != nil {
			closeSenders(opts.Outputs)
			return nil, fmt.Errorf("cannot set up output %q: %w", oc.Name, err)
		}
		opts.Outputs = append(opts.Outputs, spec)
		r.outs = append(r.outs, outputState{cfg: oc, digest: outputDigest(oc)})
		outIdx[oc.Name] = i
	}
	inIdx := map[string]int{}
	maxMsg := 0
	var inputs []config.Input
	for _, ic := range cfg.Inputs {
		inIdx[ic.Name] = len(opts.Inputs)
		opts.Inputs = append(opts.Inputs, forward.InputSpec{Name: ic.Name, Datagram: ic.Protocol == config.ProtocolUDP,
			Strict: ic.Strict, Track: ic.Protocol == config.ProtocolDarktraceAPI, Source: pollerSource(ic)})
		inputs = append(inputs, ic)
		maxMsg = max(maxMsg, int(ic.MaxMessageSize))
	}
	opts.MaxPayload = maxMsg
	routes, err := buildRoutes(cfg.Routes, inIdx, outIdx)
	if err != nil {
		return nil, err
	}
	opts.Routes, opts.RouteMode = routes, cfg.RouteMode
	r.maxMsg = maxMsg
	r.routes.routes, r.routes.opts.Mode = routes, cfg.RouteMode
	for i, o := range opts.Outputs {
		if o.NotJSON {
			r.routes.opts.NotJSON = append(r.routes.opts.NotJSON, i)
		}
		r.routes.opts.OutputDedup = append(r.routes.opts.OutputDedup, o.Dedup)
	}
	if cfg.Spool != nil {
		var names []string
		for _, oc := range cfg.Outputs {
			names = append(names, oc.Name)
		}
		r.spool, err = spool.Open(spool.Options{
			Dir: cfg.Spool.Dir, MaxSize: int64(cfg.Spool.MaxSize), FsyncInterval: cfg.Spool.FsyncInterval,
			WhenFull: cfg.Spool.WhenFull, Consumers: names, Rename: cfg.Spool.Rename, Metrics: set, Log: log,
			MaxRecord: forward.SpoolRecordSize(maxMsg),
		})
		if err != nil {
			closeSenders(opts.Outputs)
			return nil, fmt.Errorf("cannot open the spool: %w", err)
		}
		opts.Spool = r.spool
		opts.StateDir = cfg.Spool.Dir // the de-duplication state, with the spool
		log.Info().Str("dir", cfg.Spool.Dir).Msg("spool open")
	}
	r.outputs = opts.Outputs
	r.pipe, err = forward.New(opts)
	if err != nil {
		closeSenders(opts.Outputs)
		if r.spool != nil {
			r.spool.Close()
		}
		return nil, err
	}
	r.pollCtx, r.stopPolling = context.WithCancel(context.Background())
	r.settled = make(chan struct{})
	partial := receiver.NewPartialBudget(int64(cfg.MaxPartialBytes))
	r.partial = partial
	set.GetOrCreateGauge("dtrelay_partial_frame_bytes", func() float64 { return float64(partial.Held()) })
	for i, ic := range inputs {
		st := &inputState{cfg: ic, idx: i, digest: inputDigest(ic)}
		var rc receiver.Config
		var tc *tls.Config
		if ic.Protocol != config.ProtocolDarktraceAPI {
			if rc, err = receiverConfig(ic, partial); err == nil && ic.Protocol == config.ProtocolTLS && ic.TLS != nil {
				tc, err = serverTLS(ic)
			}
			if err != nil {
				r.Stop(context.Background())
				return nil, fmt.Errorf("cannot set up input %q: %w", ic.Name, err)
			}
		}
		if err := r.startInput(st, rc, tc); err != nil {
			r.Stop(context.Background())
			return nil, fmt.Errorf("cannot start input %q: %w", ic.Name, err)
		}
		r.ins = append(r.ins, st)
		if st.l != nil {
			r.listeners = append(r.listeners, st.l)
		}
	}
	r.reloads.last.Set(float64(time.Now().UnixNano()) / 1e9)
	r.stopSrc = make(chan struct{})
	go r.sources.runChecker(r.stopSrc)
	go r.runRates(r.stopSrc)
	if cfg.Heartbeat != nil {
		r.startHeartbeat(cfg.Heartbeat, r.stopSrc)
	}
	r.startMetrics()
	return r, nil
}

// Addrs returns the bound address of each receiving input, in order.
func (r *Relay) Addrs() []net.Addr {
	var a []net.Addr
	r.lmu.RLock()
	defer r.lmu.RUnlock()
	for _, l := range r.listeners {
		a = append(a, l.Addr())
	}
	return a
}

// MetricsAddr returns the metrics listener's address, or nil.
func (r *Relay) MetricsAddr() net.Addr {
	if r.metricsLn == nil {
		return nil
	}
	return r.metricsLn.Addr()
}

// Stop stops the relay within ctx: receivers stop accepting and finish what
// they read (producers waiting on full queues are let through), then the
// outputs deliver what is queued until ctx ends. It returns the number of
// events that could not be delivered.
func (r *Relay) Stop(ctx context.Context) int64 {
	r.health.stopping.Store(true) // /readyz: draining
	if r.stopSrc != nil {         // the silence checker and the heartbeat
		close(r.stopSrc)
		r.stopSrc = nil
	}
	start := time.Now()
	if r.pipe != nil {
		r.pipe.Unblock()
	}
	if r.stopPolling != nil {
		r.stopPolling() // no more polls; the pollers settle what is in flight (below)
	}
	for _, l := range r.listeners {
		if err := l.Stop(ctx); err != nil {
			r.log.Warn().Err(err).Msg("cannot stop listener cleanly")
		}
	}
	r.log.Info().Dur("took", time.Since(start)).Msg("receivers stopped")
	var lost int64
	if r.pipe != nil {
		t := time.Now()
		lost = r.pipe.Stop(ctx)
		ev := r.log.Info()
		if lost > 0 {
			ev = r.log.Error().Int64("undelivered", lost)
		}
		ev.Dur("took", time.Since(t)).Msg("outputs drained")
	}
	if r.stopPolling != nil {
		close(r.settled) // every delivery is over: the pollers save their checkpoints
		r.pollers.Wait()
	}
	if r.spool != nil {
		if err := r.spool.Close(); err != nil {
			var sl *spool.LostError
			if errors.As(err, &sl) {
				lost += sl.Records
			}
			r.log.Error().Err(err).Msg("cannot close the spool cleanly")
		}
	}
	if r.httpSrv != nil {
		r.httpSrv.Close()
	}
	r.closeDeadLetters()
	return lost
}

func closeSenders(specs []forward.OutputSpec) {
	for _, o := range specs {
		o.Sender.Close()
		o.DeadLetter.Close()
	}
}

// startPoller starts the Darktrace API poller of input st. Its checkpoint
// lives in the input's state directory (state_dir, else the spool's, else
// /var/lib/dtrelay); a directory where it cannot be written is an error.
// Stop ends every poller; st.stop ends this one (stopInput).
func (r *Relay) startPoller(st *inputState) error {
	ic := st.cfg
	p, err := poller.New(poller.Config{
		Name: ic.Name, URL: ic.URL, PublicToken: ic.PublicToken, PrivateToken: ic.PrivateToken,
		Interval: ic.Interval, CAFile: ic.CAFile, NoSystemRoots: ic.NoSystemRoots, StateDir: r.cfg.PollerStateDir(&ic),
		Overlap: ic.Overlap, Timeout: ic.Timeout, MaxEventSize: int(ic.MaxMessageSize),
	}, poller.PoolSink(r.pipe.Pool(st.idx)), r.set, r.log)
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancel(r.pollCtx)
	st.stop, st.done, st.giveUp = stop, make(chan struct{}), make(chan struct{})
	// Its deliveries under way settle at Stop (r.settled), or when a
	// reload that stops it gives up waiting for them (giveUp).
	settled := make(chan struct{})
	go func() {
		select {
		case <-r.settled:
		case <-st.giveUp:
		case <-st.done:
			return
		}
		close(settled)
	}()
	r.pollers.Add(1)
	go func() {
		defer r.pollers.Done()
		defer close(st.done)
		if err := p.RunSettle(ctx, settled); err != nil {
			r.log.Error().Err(err).Str("input", ic.Name).Msg("poller stopped")
		}
	}()
	return nil
}

// sinkPool adapts a forward.ProducerPool to the receiver's SinkPool.
type sinkPool struct{ pp *forward.ProducerPool }

func (s sinkPool) Get() receiver.FrameSink  { return s.pp.Get() }
func (s sinkPool) Put(f receiver.FrameSink) { s.pp.Put(f.(*forward.Producer)) }

// receiverConfig maps an input's configuration, but for the TLS server
// configuration (serverTLS, set by startInput); partial is the process's
// one partial-frame budget, shared by every input.
func receiverConfig(ic config.Input, partial *receiver.PartialBudget) (receiver.Config, error) {
	rc := receiver.Config{
		Name:           ic.Name,
		Protocol:       ic.Protocol,
		Address:        ic.Address,
		MaxMessageSize: int(ic.MaxMessageSize),
		Allow:          ic.Allow,
		MaxConnections: ic.MaxConnections,
		IdleTimeout:    ic.IdleTimeout,
		ProxyProtocol:  ic.ProxyProtocol,

		TrustedProxies:          ic.TrustedProxies,
		MaxConnectionsPerSource: ic.MaxConnectionsPerSource,
		HandshakeTimeout:        ic.HandshakeTimeout,
		Partial:                 partial,
	}
	return rc, nil
}
