package forward

import (
	"errors"
	"fmt"
	"slices"
)

// What a configuration reload can change in a running pipeline without
// stopping it: the routes (SetRoutes), an input's producer pool (SetInput),
// and an output's Encoder, Sender, dead-letter file and limits
// (ReplaceOutput). The outputs themselves (how many, their names and order)
// and the spool are fixed at New: the routing masks of queued blocks and the
// spool's cursors are per output index.

// ErrStopped is returned by ReplaceOutput once the pipeline is stopping.
var ErrStopped = errors.New("forward: the pipeline is stopping")

// SetRoutes replaces the routes and o's Mode, NotJSON and OutputDedup
// (Outputs, OutputNames and Metrics are the pipeline's) for the records
// produced from now on; the records already in blocks keep the outputs
// they were routed to. A de-duplication set goes on remembering what it
// saw when its route keeps its name, outputs and window and size (an
// output's, its window and size): a reload does not send an alert twice.
// Not for concurrent use with Stop or itself; safe with the producers.
func (p *Pipeline) SetRoutes(routes []RouteSpec, o RouterOptions) error {
	o.Outputs, o.Metrics, o.OutputNames = len(p.outputs), p.set, nil
	for _, out := range p.outputs {
		o.OutputNames = append(o.OutputNames, out.Name)
	}
	r, err := NewRouter(routes, o)
	if err != nil {
		return err
	}
	r.adopt(p.router.Load())
	p.router.Store(r)
	if p.stopSaving == nil && p.dedupDir != "" && len(r.dedupSets()) > 0 {
		p.startDedupState(p.dedupDir) // the first de-duplication, added by a reload
	}
	return nil
}

// adopt takes old's de-duplication sets where they keep their meaning.
func (r *Router) adopt(old *Router) {
	same := func(a, b *dedupSet) bool { return a.name == b.name && a.window == b.window && a.maxKeys == b.maxKeys }
	for i := range r.routes {
		rt := &r.routes[i]
		if rt.dedup == nil {
			continue
		}
		for j := range old.routes {
			if o := &old.routes[j]; o.dedup != nil && same(o.dedup, rt.dedup) && o.outputs == rt.outputs {
				rt.dedup = o.dedup
			}
		}
	}
	for i, d := range r.outDedup {
		if d != nil && i < len(old.outDedup) && old.outDedup[i] != nil && same(old.outDedup[i], d) {
			r.outDedup[i] = old.outDedup[i]
		}
	}
}

// SetInput makes pool i, for an input described by in, the pool of input i
// and returns it; i == the number of inputs adds one. maxPayload is the
// classifier's limit (Options.MaxPayload). The producers of the pool it
// replaces must no longer be in use (the input was stopped): they would go
// on publishing under the same index.
func (p *Pipeline) SetInput(i int, in InputSpec, maxPayload int) (*ProducerPool, error) {
	if i < 0 || i >= MaxOutputs {
		return nil, fmt.Errorf("forward: input index %d out of range (at most %d inputs)", i, MaxOutputs)
	}
	pp := newProducerPool(p, i, in, maxPayload, p.set, p.log)
	p.poolMu.Lock()
	defer p.poolMu.Unlock()
	switch {
	case i < len(p.pools):
		p.pools[i] = pp
	case i == len(p.pools):
		p.pools = append(p.pools, pp)
	default:
		return nil, fmt.Errorf("forward: input index %d past the %d inputs", i, len(p.pools))
	}
	return pp, nil
}

// replacement is an OutputSpec waiting for its output's batcher.
type replacement struct {
	spec OutputSpec
	done chan struct{} // closed once applied, superseded or dropped at Stop
}

// ReplaceOutput hands output i's queue, and what its batcher holds, to
// spec's Encoder, Sender, DeadLetter and limits (spec.Name must be the
// output's name). The batcher applies it between batches: what it has
// batched goes with the old Sender first, and if that batch is being
// retried (the old Sender fails), the rest of it is encoded again with the
// new Encoder and goes with the new Sender. No event is dropped or sent
// twice by the change. The old Sender is closed by the batcher, and the old
// DeadLetter when it is not spec's. The channel returned is closed once the
// batcher applied spec (or a later ReplaceOutput superseded it, or the
// pipeline stopped first, in which case spec's Sender is closed unused). On
// an error spec's Sender and DeadLetter remain the caller's to close.
func (p *Pipeline) ReplaceOutput(i int, spec OutputSpec) (<-chan struct{}, error) {
	if i < 0 || i >= len(p.outputs) {
		return nil, fmt.Errorf("forward: no output %d", i)
	}
	o := p.outputs[i]
	if spec.Name != o.Name {
		return nil, fmt.Errorf("forward: output %d is %q, not %q", i, o.Name, spec.Name)
	}
	if p.stopping.Load() {
		return nil, ErrStopped
	}
	rep := &replacement{spec: spec, done: make(chan struct{})}
	if old := o.repl.Swap(rep); old != nil {
		o.discard(old, spec.DeadLetter)
	}
	select {
	case o.replReady <- struct{}{}:
	default:
	}
	o.q.wake()
	return rep.done, nil
}

// discard closes what a replacement that was never applied holds (except
// keep, a DeadLetter still in use).
func (o *output) discard(r *replacement, keep *DeadLetter) {
	if err := r.spec.Sender.Close(); err != nil {
		o.log.Warn().Err(err).Msg("cannot close an unused sender")
	}
	if r.spec.DeadLetter != keep && r.spec.DeadLetter != o.DeadLetter {
		r.spec.DeadLetter.Close()
	}
	close(r.done)
}

// applyNext puts a waiting replacement in place; the batcher calls it with
// no batch, or from reencode. Name stays: other goroutines read it.
func (o *output) applyNext() bool {
	r := o.repl.Swap(nil)
	if r == nil {
		return false
	}
	oldSender, oldDL := o.Sender, o.DeadLetter
	s := r.spec
	o.Encoder, o.Sender, o.DeadLetter = s.Encoder, s.Sender, s.DeadLetter
	o.MaxEvents, o.MaxBytes, o.MaxWait, o.Timeout, o.NotJSON = s.MaxEvents, s.MaxBytes, s.MaxWait, s.Timeout, s.NotJSON
	o.QueueSize, o.Dedup = s.QueueSize, s.Dedup
	o.defaults()
	o.q.setMax(s.QueueSize)
	o.limit = 0
	if err := oldSender.Close(); err != nil {
		o.log.Warn().Err(err).Msg("cannot close the replaced sender")
	}
	if oldDL != o.DeadLetter {
		if err := oldDL.Close(); err != nil {
			o.log.Warn().Err(err).Msg("cannot close the replaced dead-letter file")
		}
	}
	o.log.Info().Msg("output rebuilt with its new settings; its queue carried over")
	close(r.done)
	return true
}

// reencode applies a waiting replacement to a batch being retried: events
// [lo, n) of the batch (those before lo are delivered) that the old Sender
// did not Ack are encoded again with the new Encoder from the records they
// came from, which are held until the batch is done. It returns the new
// number of events.
func (o *output) reencode(lo int) int {
	o.reRefs = append(o.reRefs[:0], o.refs[lo:]...)
	o.reAcked = append(o.reAcked[:0], o.batch.acked[lo:]...)
	o.applyNext()
	o.batch.Reset()
	clear(o.refs)
	o.refs = o.refs[:0]
	for i, ref := range o.reRefs {
		if o.reAcked[i] { // taken by the intake before the change
			o.events.Inc()
			continue
		}
		ref.b.readRecord(ref.off, &o.rec)
		data, err := o.Encoder.Append(o.batch.Data, &o.rec)
		if err != nil {
			o.skipped(err)
			continue
		}
		o.batch.Data = data
		o.batch.Ends = append(o.batch.Ends, len(data))
		o.refs = append(o.refs, ref)
	}
	clear(o.reRefs)
	n := o.batch.Len()
	o.batch.acked = slices.Grow(o.batch.acked[:0], n)[:n]
	return n
}

// setMax changes the queue's bound; pushes waiting for room look again.
func (q *queue) setMax(n int64) {
	q.mu.Lock()
	q.max = n
	q.mu.Unlock()
	q.space.Broadcast()
}
