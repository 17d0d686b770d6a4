package poller

import (
	"github.com/dtrelay/dtrelay/forward"
)

// Producer takes the events of one poll into the pipeline.
type Producer interface {
	// Frame copies one event (a JSON object, starting with '{') into the
	// pipeline; it may block while the pipeline is full. frame is not kept.
	Frame(frame []byte)
	// Publish publishes what was framed since the last Publish and returns
	// at once, with the Delivery of those events.
	Publish() Delivery
}

// Delivery tells what became of the events of one Publish.
// forward.Delivery satisfies it.
type Delivery interface {
	// Done is closed once every output is finished with the events.
	Done() <-chan struct{}
	// Err, once Done is closed, is nil only if every event was accepted by
	// every output it is routed to, kept in a dead-letter file, or is on
	// disk in the spool; else the poller forwards them again.
	Err() error
}

// Sink hands out Producers, one per poll. Get and Put are safe for
// concurrent use; a Producer is owned by its caller until Put (a Delivery
// may be kept after).
type Sink interface {
	Get() Producer
	Put(Producer)
}

// PoolSink adapts the ProducerPool of the poller's input to a Sink.
func PoolSink(pp *forward.ProducerPool) Sink { return poolSink{pp} }

type poolSink struct{ pp *forward.ProducerPool }

type poolProducer struct{ *forward.Producer }

func (p poolProducer) Publish() Delivery { return p.Producer.Publish() }

func (s poolSink) Get() Producer  { return poolProducer{s.pp.Get()} }
func (s poolSink) Put(p Producer) { s.pp.Put(p.(poolProducer).Producer) }
