package forward

import "time"

// source is where an output's batcher takes its blocks from, and what it
// tells when it is done with them: memory only (memSource), or the spool
// with memory as a cache in front of it (spoolSource, spool.go). The
// batcher only encodes, batches, sends, retries and counts; what is held
// where, and what survives a stop, is the source's business. Its methods
// are called by the output's batcher goroutine, except close (by Stop,
// after the batcher returned).
type source interface {
	// next returns the next block, waiting up to wait (< 0: until one comes
	// or the queue is closed). nil, true: the output is done.
	next(wait time.Duration) (b *Block, done bool)
	// sending is called before a batch goes to the intake.
	sending()
	// delivered is called once b's records for this output are delivered
	// or given up for good; it releases b.
	delivered(b *Block)
	// deliveredAll is delivered for each block of a delivered batch, in
	// the order they were taken.
	deliveredAll(bs []*Block)
	// stopped is given the records of the batch that were not delivered
	// when the send context ended and returns how many of them are lost;
	// the others are kept for the next start.
	stopped(refs []recRef) (lost int)
	// close releases the source. kept is the number of undelivered events
	// kept for the next start, lost the number lost that the batcher did
	// not count (spool.go: missedMemOnly while stopping).
	close() (kept, lost int64)
}

// memSource is the source of an output without a spool: its memory queue.
type memSource struct{ q *queue }

func (m memSource) next(wait time.Duration) (*Block, bool) { return m.q.pop(wait) }
func (memSource) sending()                                 {}
func (memSource) close() (kept, lost int64)                { return 0, 0 }

// stopped: without a spool what was not delivered is lost (and a tracked
// block's delivery failed).
func (memSource) stopped(refs []recRef) int {
	for _, r := range refs {
		r.b.fail()
	}
	return len(refs)
}

func (m memSource) delivered(b *Block) {
	m.q.release(int64(b.Size()))
	b.release()
}

func (m memSource) deliveredAll(bs []*Block) {
	for _, b := range bs {
		m.delivered(b)
	}
}
