package forward

import (
	"context"
	"sync"
	"sync/atomic"
)

// A delivery tracks the blocks of one Producer.Publish (inputs with
// InputSpec.Track: the poller). Each block published holds it once, the
// Producer once until Publish; the last release closes done.
//
// A block is finished with when every output it was queued for released it
// (delivered, or given up and kept in a dead-letter file), or, with a
// spool, as soon as all its records are appended to the spool: the spool
// delivers them later, whatever the outputs do (so one dead output does not
// hold the poller). A block some of whose events can no longer be delivered
// (the pipeline stopped before an output took them, or records the spool
// refused that an output then missed) marks the delivery failed.
type delivery struct {
	pending atomic.Int32
	done    chan struct{}
	failed  atomic.Bool
	spooled atomic.Bool // some blocks were finished with by the spool
	sync    sync.Once
	syncErr error
}

func newDelivery() *delivery {
	d := &delivery{done: make(chan struct{})}
	d.pending.Store(1) // the Producer's, until Publish
	return d
}

func (d *delivery) hold() { d.pending.Add(1) }

func (d *delivery) release() {
	if d.pending.Add(-1) == 0 {
		close(d.done)
	}
}

// fail marks b's delivery, if any, failed.
func (b *Block) fail() {
	if b.dl != nil {
		b.dl.failed.Store(true)
	}
}

// Delivery reports what became of the events of one Producer.Publish.
// The zero Delivery is complete and successful (nothing was published).
// It is safe for concurrent use and may be kept after the Producer's Put.
type Delivery struct {
	d *delivery
	p *Pipeline
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Done is closed once every output is finished with the events (see Err).
func (d Delivery) Done() <-chan struct{} {
	if d.d == nil {
		return closedChan
	}
	return d.d.done
}

// Err returns, once Done is closed, nil if every event was accepted by
// every output it was routed to, kept in an output's dead-letter file
// (a refusal that retrying cannot fix: counted, and an operator can replay
// it), or appended to the spool and synced to disk; ErrNotDelivered if some
// may not have been (the pipeline stopped first); or the spool's sync
// error. Before Done is closed it returns ErrPending. An output that is
// retrying (an intake down, a 401) holds Done back: its events are
// neither delivered nor given up.
func (d Delivery) Err() error {
	if d.d == nil {
		return nil
	}
	select {
	case <-d.d.done:
	default:
		return ErrPending
	}
	if d.d.failed.Load() {
		return ErrNotDelivered
	}
	if d.d.spooled.Load() && d.p.spool != nil {
		d.d.sync.Do(func() { d.d.syncErr = d.p.spool.Sync() })
		return d.d.syncErr
	}
	return nil
}

// Wait waits for Done, then returns Err; or ctx's error first.
func (d Delivery) Wait(ctx context.Context) error {
	select {
	case <-d.Done():
		return d.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}
