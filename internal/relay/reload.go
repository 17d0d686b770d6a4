package relay

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/dtrelay/dtrelay/config"
	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/internal/tlsfiles"
	"github.com/dtrelay/dtrelay/receiver"
)

// A reload (SIGHUP) applies a new configuration to the running relay:
//
//   - An input whose settings are unchanged keeps its listener and every
//     connection; a tls input's certificate, key and client CA are read
//     again all the same, for the handshakes that follow (serverTLS).
//   - A changed input is stopped (the reads under way finish and are
//     delivered) and started again; a removed one is stopped; a new one is
//     started.
//   - An output whose settings, or the files they name, changed is rebuilt
//     and handed its queue (forward.Pipeline.ReplaceOutput); a file output
//     is rebuilt at every reload, which opens its path again (logrotate).
//   - The routes are replaced.
//
// What cannot change while running is refused with "needs a restart":
// outputs added, removed, renamed or reordered (a queued block's routing,
// and the spool's cursors, are per output), the spool, the metrics
// listener, max_partial_bytes. So is an invalid configuration, as dtrelay
// check reports it. A refused reload changes nothing.

// inputState is what the relay holds for one running input.
type inputState struct {
	cfg    config.Input
	idx    int                         // its input index in the pipeline
	digest string                      // of the files it names
	l      *receiver.Listener          // tcp, udp, tls
	rc     receiver.Config             // what l was started with
	tls    *atomic.Pointer[tls.Config] // tls: what new handshakes use
	stop   context.CancelFunc          // darktrace-api
	done   chan struct{}               // darktrace-api: closed when its poller returned
	giveUp chan struct{}               // darktrace-api: close to settle its deliveries now
}

// outputState is what the relay knows of one output's configuration.
type outputState struct {
	cfg    config.Output
	digest string // of the files it names
}

// reloadMetrics count the reloads.
type reloadMetrics struct {
	ok, failed *metrics.Counter
	last       *metrics.Gauge
}

func newReloadMetrics(set *metrics.Set) reloadMetrics {
	return reloadMetrics{
		ok:     set.GetOrCreateCounter(`dtrelay_config_reload_total{result="success"}`),
		failed: set.GetOrCreateCounter(`dtrelay_config_reload_total{result="error"}`),
		last:   set.GetOrCreateGauge(`dtrelay_config_last_reload_success_timestamp_seconds`, nil),
	}
}

// RestartError is a reload refused because a change it holds cannot be
// made while running.
type RestartError struct{ What string }

func (e *RestartError) Error() string { return "needs a restart: " + e.What }

// Config returns the configuration in force: Start's, or the last reload's.
func (r *Relay) Config() *config.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cfg
}

// Reload reads the configuration with load (as dtrelay run reads it) and
// applies it (see the top of this file). It logs the outcome, counts it in
// dtrelay_config_reload_total{result}, and returns nil when every change
// was applied. An invalid configuration logs each problem with its line;
// it, and any change that needs a restart, is refused whole. An input that
// cannot be started again after a change is reported (the reload is then
// counted as an error, partly applied). Reload must not be called
// concurrently with Stop.
func (r *Relay) Reload(load func() (*config.Config, []config.Warning, error)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := time.Now()
	cfg, warnings, err := load()
	for _, w := range warnings {
		r.log.Warn().Msg(w.String())
	}
	if err == nil {
		err = r.apply(cfg)
	}
	if err != nil {
		r.reloads.failed.Inc()
		var errs *config.Errors
		if errors.As(err, &errs) {
			for _, p := range errs.Problems {
				r.log.Error().Str("problem", p.String()).Int("line", p.Line).Msg("reload refused: invalid configuration")
			}
			err = fmt.Errorf("invalid configuration: %d problem(s), the first: %s", len(errs.Problems), errs.Problems[0].String())
		}
		r.log.Error().Err(err).Msg("reload failed; the running configuration stays")
		return err
	}
	r.reloads.ok.Inc()
	r.reloads.last.Set(float64(time.Now().UnixNano()) / 1e9)
	r.log.Info().Dur("took", time.Since(start)).Msg("configuration reloaded")
	return nil
}

// needsRestart returns what in next cannot be applied to the running
// relay, or "".
func (r *Relay) needsRestart(next *config.Config) string {
	cur := r.cfg
	var names, nextNames []string
	for _, o := range cur.Outputs {
		names = append(names, o.Name)
	}
	for _, o := range next.Outputs {
		nextNames = append(nextNames, o.Name)
	}
	switch {
	case !reflect.DeepEqual(names, nextNames):
		return fmt.Sprintf("outputs added, removed, renamed or reordered ([%s] → [%s]); "+
			"the routing of queued events and the spool's cursors are per output",
			strings.Join(names, ", "), strings.Join(nextNames, ", "))
	case !reflect.DeepEqual(cur.Spool, next.Spool):
		return "the spool's settings changed"
	case cur.Metrics != next.Metrics:
		return "the metrics listener's settings changed"
	case cur.MaxPartialBytes != next.MaxPartialBytes:
		return "max_partial_bytes changed"
	case !reflect.DeepEqual(cur.Heartbeat, next.Heartbeat):
		return "the heartbeat's settings changed"
	}
	if cur.Spool != nil {
		for _, ic := range next.Inputs {
			if int(ic.MaxMessageSize) > r.maxMsg {
				return fmt.Sprintf("input %q: max_message_size %d is above the %d the spool was opened for", ic.Name, ic.MaxMessageSize, r.maxMsg)
			}
		}
	}
	return ""
}

// inputPlan is what apply does with one input of the new configuration.
type inputPlan struct {
	cfg    config.Input
	old    *inputState // nil: a new input
	keep   bool        // unchanged: old goes on
	idx    int
	digest string
	rc     receiver.Config // to start (tcp, udp, tls; not kept)
	tc     *tls.Config     // tls: the server configuration to use
	late   bool            // new, on an address a stopping input holds: started after the stops
}

// apply applies cfg, valid, to the running relay.
func (r *Relay) apply(cfg *config.Config) error {
	if what := r.needsRestart(cfg); what != "" {
		return &RestartError{What: what}
	}
	// Everything that can fail before anything changes: outputs built,
	// TLS files read, routes resolved.
	rebuilt, err := r.buildChangedOutputs(cfg)
	if err != nil {
		return err
	}
	abandon := func() {
		for i, spec := range rebuilt {
			if spec == nil {
				continue
			}
			spec.Sender.Close()
			if spec.DeadLetter != r.outputs[i].DeadLetter {
				spec.DeadLetter.Close()
			}
		}
	}
	plans, gone, err := r.planInputs(cfg)
	if err != nil {
		abandon()
		return err
	}
	inIdx, outIdx := map[string]int{}, map[string]int{}
	for _, p := range plans {
		inIdx[p.cfg.Name] = p.idx
	}
	ro := forward.RouterOptions{Mode: cfg.RouteMode}
	for i, oc := range cfg.Outputs {
		outIdx[oc.Name] = i
		spec := r.outputs[i]
		if rebuilt[i] != nil {
			spec = *rebuilt[i]
		}
		if spec.NotJSON {
			ro.NotJSON = append(ro.NotJSON, i)
		}
		ro.OutputDedup = append(ro.OutputDedup, spec.Dedup)
	}
	routes, err := buildRoutes(cfg.Routes, inIdx, outIdx)
	if err != nil {
		abandon()
		return err
	}
	// New inputs start before anything changes: one that cannot listen
	// refuses the reload. The routes go first, so that their events are
	// routed by the new ones.
	oldRouter := r.routes
	if err := r.pipe.SetRoutes(routes, ro); err != nil {
		abandon()
		return err
	}
	var started []*inputState
	for _, p := range plans {
		if p.old != nil || p.late {
			continue
		}
		st, err := r.startPlanned(p, cfg)
		if err != nil {
			for _, s := range started {
				r.stopInput(s, cfg.ShutdownTimeout)
			}
			if rerr := r.pipe.SetRoutes(oldRouter.routes, oldRouter.opts); rerr != nil {
				r.log.Error().Err(rerr).Msg("cannot restore the routes")
			}
			abandon()
			return fmt.Errorf("cannot start input %q: %w", p.cfg.Name, err)
		}
		started = append(started, st)
	}
	r.routes = savedRoutes{routes, ro}
	// Past this point the reload is applied, whatever fails.
	for i, spec := range rebuilt {
		if spec == nil {
			continue
		}
		if _, err := r.pipe.ReplaceOutput(i, *spec); err != nil {
			spec.Sender.Close()
			return err
		}
		r.outputs[i] = *spec
		r.outs[i] = outputState{cfg: cfg.Outputs[i], digest: outputDigest(cfg.Outputs[i])}
	}
	for i := range cfg.Outputs {
		r.outs[i].cfg = cfg.Outputs[i]
	}
	var failed []string
	for _, st := range gone {
		r.stopInput(st, cfg.ShutdownTimeout)
	}
	for _, p := range plans { // all before any starts: two may swap addresses
		if p.old != nil && !p.keep {
			r.stopInput(p.old, cfg.ShutdownTimeout)
		}
	}
	next := make([]*inputState, 0, len(plans))
	for _, p := range plans {
		switch {
		case p.keep:
			st := p.old
			if p.tc != nil {
				st.tls.Store(p.tc)
				if p.digest != st.digest {
					r.log.Info().Str("input", p.cfg.Name).Msg("tls: certificate files changed; new handshakes use them")
				}
			}
			st.cfg, st.digest = p.cfg, p.digest
			next = append(next, st)
		case p.old != nil || p.late: // changed, or new on a stopped input's address
			st, err := r.startPlanned(p, cfg)
			if err != nil {
				failed = append(failed, fmt.Sprintf("input %q: %v", p.cfg.Name, err))
				if p.old == nil {
					continue
				}
				if st = r.restartOld(p.old); st == nil {
					continue
				}
			}
			next = append(next, st)
		default:
			next = append(next, started[0])
			started = started[1:]
		}
	}
	r.setInputs(next)
	r.cfg = cfg
	r.setSecrets(cfg) // added: an error or warning from before may hold the old ones
	if len(failed) > 0 {
		return fmt.Errorf("reload partly applied: %s", strings.Join(failed, "; "))
	}
	return nil
}

// buildChangedOutputs builds the outputs of cfg that must be rebuilt: those
// whose settings, the dead_letter settings or the files they name changed,
// and every file output (a reload opens its path again, for logrotate).
// rebuilt[i] is nil for an output that goes on unchanged.
func (r *Relay) buildChangedOutputs(cfg *config.Config) ([]*forward.OutputSpec, error) {
	rebuilt := make([]*forward.OutputSpec, len(cfg.Outputs))
	for i, oc := range cfg.Outputs {
		cur := r.outs[i]
		if oc.Type != config.TypeFile && reflect.DeepEqual(cur.cfg, oc) && cfg.DeadLetter == r.cfg.DeadLetter &&
			outputDigest(oc) == cur.digest {
			continue
		}
		spec, err := buildOutput(oc, cfg.DeadLetter, r.set, r.log)
		if err != nil {
			for _, s := range rebuilt {
				if s != nil {
					s.Sender.Close()
				}
			}
			return nil, fmt.Errorf("cannot set up output %q: %w", oc.Name, err)
		}
		if cfg.DeadLetter == r.cfg.DeadLetter {
			spec.DeadLetter = r.outputs[i].DeadLetter // the same file, open or not
		}
		rebuilt[i] = &spec
	}
	return rebuilt, nil
}

// planInputs decides what becomes of each input: kept, restarted, new; and
// returns those that go.
func (r *Relay) planInputs(cfg *config.Config) ([]inputPlan, []*inputState, error) {
	old := map[string]*inputState{}
	used := map[int]bool{}
	for _, st := range r.ins {
		old[st.cfg.Name] = st
		used[st.idx] = true
	}
	stopping := map[string]bool{} // addresses of inputs that stop
	named := map[string]bool{}
	var plans []inputPlan
	for _, ic := range cfg.Inputs {
		named[ic.Name] = true
		p := inputPlan{cfg: ic, old: old[ic.Name], digest: inputDigest(ic)}
		if p.old != nil {
			p.idx = p.old.idx
			p.keep = reflect.DeepEqual(p.old.cfg, ic) &&
				(ic.Protocol != config.ProtocolDarktraceAPI || p.digest == p.old.digest)
			if !p.keep && ic.Protocol != config.ProtocolDarktraceAPI {
				stopping[p.old.cfg.Address] = true
			}
		}
		if ic.Protocol == config.ProtocolTLS && ic.TLS != nil {
			tc, err := serverTLS(ic)
			if err != nil {
				return nil, nil, fmt.Errorf("input %q: %w", ic.Name, err)
			}
			p.tc = tc
		}
		if !p.keep && ic.Protocol != config.ProtocolDarktraceAPI {
			rc, err := receiverConfig(ic, r.partial)
			if err != nil {
				return nil, nil, fmt.Errorf("cannot set up input %q: %w", ic.Name, err)
			}
			p.rc = rc
		}
		plans = append(plans, p)
	}
	var gone []*inputState
	for _, st := range r.ins {
		if !named[st.cfg.Name] {
			gone = append(gone, st)
			if st.cfg.Protocol != config.ProtocolDarktraceAPI {
				stopping[st.cfg.Address] = true
			}
		}
	}
	for i := range plans {
		p := &plans[i]
		if p.old != nil {
			continue
		}
		idx := 0
		for used[idx] {
			idx++
		}
		if idx >= forward.MaxOutputs {
			return nil, nil, &RestartError{What: fmt.Sprintf("input %q: no free input slot (at most %d inputs, counting those stopping)", p.cfg.Name, forward.MaxOutputs)}
		}
		used[idx], p.idx = true, idx
		p.late = stopping[p.cfg.Address]
	}
	return plans, gone, nil
}

// startPlanned starts input p with cfg's settings, on a new producer pool
// at its index.
func (r *Relay) startPlanned(p inputPlan, cfg *config.Config) (*inputState, error) {
	spec := forward.InputSpec{Name: p.cfg.Name, Datagram: p.cfg.Protocol == config.ProtocolUDP,
		Strict: p.cfg.Strict, Track: p.cfg.Protocol == config.ProtocolDarktraceAPI, Source: pollerSource(p.cfg)}
	maxPayload := r.maxMsg
	for _, ic := range cfg.Inputs {
		maxPayload = max(maxPayload, int(ic.MaxMessageSize))
	}
	if _, err := r.pipe.SetInput(p.idx, spec, maxPayload); err != nil {
		return nil, err
	}
	st := &inputState{cfg: p.cfg, idx: p.idx, digest: p.digest}
	return st, r.startInput(st, p.rc, p.tc)
}

// startInput starts st, whose pool is in place: its poller, or its
// listener with rc and, for tls, the server configuration tc.
func (r *Relay) startInput(st *inputState, rc receiver.Config, tc *tls.Config) error {
	r.sources.configure(st.cfg)
	if st.cfg.Protocol == config.ProtocolDarktraceAPI {
		return r.startPoller(st)
	}
	if tc != nil {
		st.tls = &atomic.Pointer[tls.Config]{}
		st.tls.Store(tc)
		rc.TLS = handshakeConfig(st.tls)
	}
	return r.listen(st, rc)
}

// restartOld starts st's input again with its previous settings, after its
// new ones failed; nil if that fails too (the input is then down).
func (r *Relay) restartOld(st *inputState) *inputState {
	if st.cfg.Protocol == config.ProtocolDarktraceAPI {
		return nil // a poller's start fails only on settings that check accepts
	}
	if _, err := r.pipe.SetInput(st.idx, forward.InputSpec{Name: st.cfg.Name, Datagram: st.cfg.Protocol == config.ProtocolUDP,
		Strict: st.cfg.Strict}, r.maxMsg); err != nil {
		return nil
	}
	again := &inputState{cfg: st.cfg, idx: st.idx, digest: st.digest, tls: st.tls}
	if err := r.listen(again, st.rc); err != nil {
		r.log.Error().Err(err).Str("input", st.cfg.Name).Msg("cannot start the input again with its previous settings: it is down")
		return nil
	}
	r.log.Warn().Str("input", st.cfg.Name).Msg("input running again with its previous settings")
	return again
}

// listen starts st's listener with rc.
func (r *Relay) listen(st *inputState, rc receiver.Config) error {
	m := r.inMetrics[st.cfg.Name]
	if m == nil {
		m = receiver.NewMetrics(r.set, st.cfg.Name)
		r.inMetrics[st.cfg.Name] = m
	}
	rc.Conns = r.sources.conns(st.cfg.Name)
	l, err := receiver.Start(rc, sinkPool{r.pipe.Pool(st.idx)}, m, r.log)
	if err != nil {
		return err
	}
	st.l, st.rc = l, rc
	return nil
}

// stopInput stops st's listener or poller, within timeout: a poller's
// deliveries under way that are not over by then stay unconfirmed, polled
// again by its next start.
func (r *Relay) stopInput(st *inputState, timeout time.Duration) {
	timeout = max(timeout, time.Second)
	if st.stop != nil {
		st.stop()
		select {
		case <-st.done:
		case <-time.After(timeout):
			close(st.giveUp)
			<-st.done
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := st.l.Stop(ctx); err != nil {
		r.log.Warn().Err(err).Str("input", st.cfg.Name).Msg("cannot stop the input cleanly")
	}
}

// setInputs makes ins the running inputs, in configuration order.
func (r *Relay) setInputs(ins []*inputState) {
	r.ins = ins
	var ls []*receiver.Listener // a new slice: health checks read the old one meanwhile
	for _, st := range ins {
		if st.l != nil {
			ls = append(ls, st.l)
		}
	}
	r.lmu.Lock()
	r.listeners = ls
	r.lmu.Unlock()
}

// savedRoutes are the routes in force, to restore them.
type savedRoutes struct {
	routes []forward.RouteSpec
	opts   forward.RouterOptions
}

// serverTLS reads a tls input's certificate, key and client CA.
func serverTLS(ic config.Input) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(ic.TLS.CertFile, ic.TLS.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("cannot load certificate: %w", err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if ic.TLS.ClientCAFile != "" {
		pool, err := tlsfiles.CAPool(ic.TLS.ClientCAFile)
		if err != nil {
			return nil, err
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// handshakeConfig is a tls input's listener configuration: each handshake
// takes the server configuration current holds, which a reload swaps.
func handshakeConfig(current *atomic.Pointer[tls.Config]) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return current.Load(), nil
		},
	}
}

// inputDigest and outputDigest sum the contents of the files a
// configuration names (certificates, keys, CA bundles), so that a reload
// sees them change under the same names.
func inputDigest(ic config.Input) string {
	var files []string
	if ic.TLS != nil {
		files = append(files, ic.TLS.CertFile, ic.TLS.KeyFile, ic.TLS.ClientCAFile)
	}
	return fileDigest(append(files, ic.CAFile)...)
}

func outputDigest(oc config.Output) string {
	return fileDigest(oc.CAFile, oc.ClientCertFile, oc.ClientKeyFile)
}

func fileDigest(paths ...string) string {
	h := sha256.New()
	for _, p := range paths {
		fmt.Fprintf(h, "%q:", p)
		if p == "" {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			fmt.Fprintf(h, "error %v;", err)
			continue
		}
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	return string(h.Sum(nil))
}
