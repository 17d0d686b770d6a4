package forward

import (
	"time"

	"github.com/dtrelay/dtrelay/parser"
)

// InjectedInput is the input index of records made by Inject: no input's.
const InjectedInput = 0xFFFF

// Inject publishes one event of dtrelay's own (the heartbeat): frame is a
// complete syslog message, classified as kind. It goes to the outputs in
// mask or, when mask is 0, where the routes send an alert of that kind
// (input matchers never match it; no routes: every output). It never
// waits for room: what a full queue refuses is dropped and counted
// dropped_full on no input (the returned mask says where it went). Safe
// for concurrent use with the producers.
func (p *Pipeline) Inject(frame []byte, kind parser.Kind, mask uint64) uint64 {
	var hdr parser.Header
	parser.Scan(frame, &hdr)
	al := parser.Alert{Kind: kind, Priority: parser.PriorityNone}
	now := time.Now().UnixNano()
	if mask == 0 {
		var fl parser.Fields
		mask = p.router.Load().Route(&RouteInput{Kind: kind, Priority: parser.PriorityNone, Input: -1,
			Host: hdr.Host.Bytes(frame), App: hdr.App.Bytes(frame), Payload: hdr.Payload.Bytes(frame), Now: now, Fields: &fl})
	}
	all := uint64(1)<<uint(len(p.outputs)) - 1
	mask &= all
	if mask == 0 {
		return 0
	}
	b := getBlock(recHeaderSize + len(frame))
	b.appendRecord(frame, &hdr, &al, false, InjectedInput, mask, now)
	p.publish(b, true, p.injectDropped, nil)
	return mask
}

// QueueState is an output's memory queue.
type QueueState struct {
	Name     string `json:"name"`
	Bytes    int64  `json:"bytes"`    // held by the blocks waiting or in flight
	Capacity int64  `json:"capacity"` // queue_size
}

// Queues returns the state of every output's queue, in order.
func (p *Pipeline) Queues() []QueueState {
	qs := make([]QueueState, len(p.outputs))
	for i, o := range p.outputs {
		o.q.mu.Lock()
		qs[i] = QueueState{Name: o.Name, Bytes: o.q.used, Capacity: o.q.max}
		o.q.mu.Unlock()
	}
	return qs
}
