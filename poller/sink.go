package poller

import (
	"context"

	"github.com/dtrelay/dtrelay/forward"
)

// Producer takes the events of one poll into the pipeline.
// *forward.Producer satisfies it.
type Producer interface {
	// Frame copies one event (a JSON object, starting with '{') into the
	// pipeline; it may block while the pipeline is full. frame is not kept.
	Frame(frame []byte)
	// FlushWait publishes what was framed and waits until every output is
	// finished with it. It returns nil only then; an error (the pipeline
	// stopped first, or ctx ended) means the events may not have been
	// delivered, and the poller keeps its checkpoint.
	FlushWait(ctx context.Context) error
}

// Sink hands out Producers, one per poll. Get and Put are safe for
// concurrent use; a Producer is owned by its caller until Put.
type Sink interface {
	Get() Producer
	Put(Producer)
}

// PoolSink adapts the ProducerPool of the poller's input to a Sink.
func PoolSink(pp *forward.ProducerPool) Sink { return poolSink{pp} }

type poolSink struct{ pp *forward.ProducerPool }

func (s poolSink) Get() Producer  { return s.pp.Get() }
func (s poolSink) Put(p Producer) { s.pp.Put(p.(*forward.Producer)) }
