package forward

import "time"

// OutputHealth is a snapshot of one output, for health checks (the relay's
// /readyz and /healthz).
type OutputHealth struct {
	Name string
	// FailingFor is how long the output has failed continuously: since
	// the first failed delivery attempt after the last one the intake
	// accepted (or refused for good, an answer too), every attempt
	// failing; 0 while it delivers, and while it has nothing to deliver.
	FailingFor time.Duration
	// SendingFor is how long the delivery attempt under way has run; 0
	// between attempts (waiting for events or for a retry).
	SendingFor time.Duration
	// Stuck is set when SendingFor exceeds what the output's Timeout
	// allows (StuckAfter): its batcher no longer turns.
	Stuck bool
}

// StuckAfter is how long one delivery attempt of an output whose sender
// has the given Timeout may run before the output counts as stuck: twice
// the timeout and a minute (the sender gives up at its timeout; connecting
// has a budget of its own), 5 minutes without a timeout.
func StuckAfter(timeout time.Duration) time.Duration {
	if timeout <= 0 {
		return 5 * stuckSlack
	}
	return 2*timeout + stuckSlack
}

// stuckSlack is StuckAfter's minute; tests shorten it.
var stuckSlack = time.Minute

// Health returns a snapshot of every output, in the order of
// Options.Outputs. It takes no lock and is safe for concurrent use, also
// after Stop.
func (p *Pipeline) Health() []OutputHealth {
	now := monoNow()
	hs := make([]OutputHealth, len(p.outputs))
	for i, o := range p.outputs {
		h := OutputHealth{Name: o.Name}
		if t := o.failingSince.Load(); t != 0 {
			h.FailingFor = time.Duration(now - t)
		}
		if t := o.sendingSince.Load(); t != 0 {
			h.SendingFor = time.Duration(now - t)
			h.Stuck = h.SendingFor > StuckAfter(o.Timeout)
		}
		hs[i] = h
	}
	return hs
}
