package forward

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/dtrelay/dtrelay/parser"
)

// Producer turns the frames of one read into records: it scans the header,
// classifies the payload, routes it, and copies it into its current Block
// (the one copy of the pipeline). Flush publishes the Block to the outputs.
// A Producer is used by one goroutine at a time; it satisfies the
// receiver's FrameSink.
type Producer struct {
	pp  *ProducerPool
	cls *parser.Classifier
	hdr parser.Header
	al  parser.Alert
	fl  parser.Fields // read when the router needs them
	in  RouteInput
	blk *Block
	now int64 // reception time of the current read, Unix ns

	clock *stallClock // times its waits for room downstream (stall.go)

	dl *delivery // of the blocks published since Publish (Track inputs)

	peer netip.AddrPort // the current read's (SetPeer)
	srcs readSources    // the read's counts by sender, for Options.Sources (sources.go)

	kinds                     [parser.NumKinds]uint64
	notJSON, filtered, alerts uint64
}

// Frame handles one frame; it may block (backpressure) when a full block
// has to be published to a full queue. frame is not kept.
func (pr *Producer) Frame(frame []byte) {
	pr.add(frame, !pr.classify(frame))
}

// Tail handles the last line of a stream that ended cleanly without its
// terminator (receiver.TailSink): as Frame if its payload is a JSON object
// the classifier accepts whole, i.e. the line is a complete message; else
// it does nothing and reports false (the receiver counts it truncated).
// Payloads that are not JSON objects cannot be told from cut ones, so such
// a line is not delivered.
func (pr *Producer) Tail(frame []byte) bool {
	if !pr.classify(frame) {
		return false
	}
	pr.add(frame, false)
	return true
}

// classify scans frame's header and classifies its payload into pr.hdr
// and pr.al; it reports whether the payload is a JSON object.
func (pr *Producer) classify(frame []byte) bool {
	if pr.now == 0 {
		pr.now = time.Now().UnixNano()
	}
	parser.Scan(frame, &pr.hdr)
	payload, app := pr.hdr.Payload.Bytes(frame), pr.hdr.App.Bytes(frame)
	if pr.pp.p.router.Load().NeedsFields() {
		return pr.cls.ClassifyFields(payload, app, &pr.al, &pr.fl) == nil
	}
	return pr.cls.Classify(payload, app, &pr.al) == nil
}

// add counts, routes and copies the frame classified last.
func (pr *Producer) add(frame []byte, notJSON bool) {
	if notJSON {
		pr.notJSON++
		pr.al.Kind, pr.al.Priority = parser.KindUnknown, parser.PriorityNone
	} else {
		pr.kinds[pr.al.Kind]++
		pr.alerts++
	}
	r := pr.pp.p.router.Load()
	in := &pr.in
	*in = RouteInput{Kind: pr.al.Kind, Priority: pr.al.Priority, Score: pr.al.Score, Input: int(pr.pp.input), NotJSON: notJSON,
		Host: pr.hdr.Host.Bytes(frame), App: pr.hdr.App.Bytes(frame), Payload: pr.hdr.Payload.Bytes(frame), Now: pr.now}
	if r.NeedsFields() && !notJSON {
		in.Fields = &pr.fl
	}
	mask := r.Route(in)
	if pr.pp.p.srcObs != nil {
		pr.countSource(frame, pr.al.Kind, notJSON, mask)
	}
	if mask == 0 {
		if !notJSON { // not_json is counted as such already
			pr.filtered++
		}
		return
	}
	if pr.blk != nil && !pr.blk.room(len(frame)) {
		pr.publish()
		pr.blk = getBlock(max(pr.pp.nextBlock, recHeaderSize+len(frame)))
	} else if pr.blk == nil {
		pr.blk = getBlock(max(pr.pp.firstBlock, recHeaderSize+len(frame)))
	}
	pr.blk.appendRecord(frame, &pr.hdr, &pr.al, notJSON, pr.pp.input, mask, pr.now)
}

func (pr *Producer) publish() {
	b := pr.blk
	pr.blk = nil
	if pr.pp.track {
		if pr.dl == nil {
			pr.dl = newDelivery()
		}
		pr.dl.hold()
		b.dl = pr.dl
	}
	if pr.pp.p.spool == nil {
		pr.pp.p.publish(b, pr.pp.datagram, pr.pp.m.dropped, pr.clock) // times a wait on a full queue
		return
	}
	start := pr.clock.begin()
	pr.pp.p.publish(b, pr.pp.datagram, pr.pp.m.dropped, nil)
	pr.clock.end(start, int64(stallVisibleAfter))
}

// ErrNotDelivered is a Delivery's error when the pipeline stopped before
// the outputs accepted the events.
var ErrNotDelivered = errors.New("forward: stopped before the events were delivered")

// ErrPending is a Delivery's error before the outputs are finished with
// its events.
var ErrPending = errors.New("forward: delivery under way")

// Publish is Flush, and returns the Delivery of every event framed since
// the last Publish: it tells when every output is finished with them (see
// Delivery.Err). Only producers of an input with InputSpec.Track may call
// it; a poller moves its checkpoint past events only once their Delivery
// succeeded, and meanwhile goes on polling (one slow output does not hold
// the others).
func (pr *Producer) Publish() Delivery {
	pr.Flush()
	d := pr.dl
	if d == nil {
		return Delivery{}
	}
	pr.dl = nil
	d.release()
	return Delivery{d: d, p: pr.pp.p}
}

// FlushWait is Publish, then Delivery.Wait.
func (pr *Producer) FlushWait(ctx context.Context) error {
	return pr.Publish().Wait(ctx)
}

// Flush publishes what this read produced: the current block and the
// counters. It may block like Frame.
func (pr *Producer) Flush() {
	if pr.blk != nil {
		pr.publish()
	}
	m := &pr.pp.m
	for k, n := range pr.kinds {
		if n > 0 {
			m.kinds[k].Add(int(n))
			pr.kinds[k] = 0
		}
	}
	if pr.notJSON > 0 {
		m.notJSON.Add(int(pr.notJSON))
		pr.pp.sampled.Warn().Str("input", pr.pp.name).Uint64("messages", pr.notJSON).
			Msg("payload is not a JSON object: counted not_json, sent only to outputs with format original")
	}
	if pr.filtered > 0 {
		m.filtered.Add(int(pr.filtered))
		pr.pp.sampled.Debug().Str("input", pr.pp.name).Uint64("alerts", pr.filtered).Msg("no route matched: counted filtered")
	}
	if pr.alerts > 0 {
		m.lastAlert.Set(float64(pr.now) / 1e9)
	}
	if pr.srcs.n > 0 {
		pr.flushSources()
	}
	pr.notJSON, pr.filtered, pr.alerts, pr.now = 0, 0, 0, 0
	pr.peer = netip.AddrPort{}
}
