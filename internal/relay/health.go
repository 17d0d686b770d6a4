package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"
)

// Health checks, served beside /metrics:
//
//   - /healthz (liveness): the relay's loops turn. Each tcp/udp input's gnet
//     engine ticks (about every second; its ticker ends with the engine),
//     each tls input's accept loop runs, and no output's batcher has been
//     inside one delivery attempt for longer than forward.StuckAfter of
//     its timeout. Event loops held by backpressure and batchers waiting
//     for events or for a retry are alive: they wait on purpose, and
//     restarting the process would not help (readyz says why). gnet has
//     no way to ping an idle event loop, so a loop is not pinged.
//   - /readyz (readiness): alive, and none of: draining (SIGTERM received,
//     during shutdown_delay and the drain), an output failing continuously
//     for longer than metrics.unready_after, the spool full with inputs
//     waiting for room. An input that receives nothing is ready.
//
// Both answer 200 with {"status":"ok"} or 503 with {"status":"failing",
// "reasons":[...]}, each reason naming what fails.

// healthReason is one reason a check fails, as its JSON body lists it.
type healthReason struct {
	Reason string `json:"reason"`
	Input  string `json:"input,omitempty"`
	Output string `json:"output,omitempty"`
	// For is how long the condition has lasted, in seconds.
	For     float64 `json:"for_seconds,omitempty"`
	Blocked int     `json:"blocked_appends,omitempty"`
	Detail  string  `json:"detail"`
}

type healthBody struct {
	Status  string         `json:"status"`
	Reasons []healthReason `json:"reasons,omitempty"`
}

// healthState is what the checks need beyond the relay's stages; its
// flags are set by BeginShutdown and Stop, read by the HTTP handlers.
type healthState struct {
	draining atomic.Bool // SIGTERM: not ready from now on
	stopping atomic.Bool // Stop began: inputs close on purpose
}

// BeginShutdown starts a graceful stop: /readyz answers 503 (draining)
// from now on, while the inputs keep accepting for delay (shutdown_delay),
// so that a load balancer takes the relay out of rotation before it stops
// listening. It returns when delay has passed or ctx ends; call Stop next.
func (r *Relay) BeginShutdown(ctx context.Context, delay time.Duration) {
	r.health.draining.Store(true)
	if delay <= 0 {
		return
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// liveness lists why the relay is not alive; none when it is.
func (r *Relay) liveness() []healthReason {
	var rs []healthReason
	if !r.health.stopping.Load() { // stopping, inputs end on purpose
		r.lmu.RLock()
		ls := r.listeners
		r.lmu.RUnlock()
		for _, l := range ls {
			if !l.Running() {
				rs = append(rs, healthReason{Reason: "input_stopped", Input: l.Name(),
					Detail: "the input's listener no longer runs: it accepts nothing"})
			}
		}
	}
	if r.pipe != nil {
		for _, o := range r.pipe.Health() {
			if o.Stuck {
				rs = append(rs, healthReason{Reason: "output_stuck", Output: o.Name, For: o.SendingFor.Seconds(),
					Detail: fmt.Sprintf("one delivery attempt has run for %s, beyond twice the output's timeout", o.SendingFor.Round(time.Second))})
			}
		}
	}
	return rs
}

// readiness lists why the relay should not be sent alerts now; none when
// it should.
func (r *Relay) readiness() []healthReason {
	var rs []healthReason
	if r.health.draining.Load() || r.health.stopping.Load() {
		d := "stopping (SIGTERM): inputs still accept during shutdown_delay, then close while the outputs drain"
		if r.health.stopping.Load() {
			d = "stopping (SIGTERM): inputs closed, the outputs drain"
		}
		rs = append(rs, healthReason{Reason: "draining", Detail: d})
	}
	if r.pipe != nil {
		after := r.cfg.Metrics.UnreadyAfter
		for _, o := range r.pipe.Health() {
			if o.FailingFor > 0 && o.FailingFor >= after {
				rs = append(rs, healthReason{Reason: "output_failing", Output: o.Name, For: o.FailingFor.Seconds(),
					Detail: fmt.Sprintf("every delivery attempt has failed for %s (unready_after %s)", o.FailingFor.Round(time.Second), after)})
			}
		}
	}
	if r.spool != nil {
		if n := r.spool.Blocked(); n > 0 {
			rs = append(rs, healthReason{Reason: "spool_full", Blocked: n,
				Detail: "the spool is full: inputs wait until outputs acknowledge events (when_full: " + r.cfg.Spool.WhenFull + ")"})
		}
	}
	return append(rs, r.liveness()...)
}

// healthHandler answers with check's reasons: 200 without any, else 503.
func healthHandler(check func() []healthReason) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		b := healthBody{Status: "ok", Reasons: check()}
		code := http.StatusOK
		if len(b.Reasons) > 0 {
			b.Status, code = "failing", http.StatusServiceUnavailable
		}
		out, _ := json.Marshal(b)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		_, _ = w.Write(append(out, '\n'))
	}
}
