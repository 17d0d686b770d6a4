package forward

import (
	"sync"
	"time"
)

// queue is one output's FIFO of published blocks, bounded by the memory the
// blocks hold. Producers push (waiting while the queue is full, unless the
// queue is unbounded because the pipeline is stopping); the output's batcher
// pops and, once the block's records are delivered, releases its bytes.
type queue struct {
	mu        sync.Mutex
	space     sync.Cond // signalled when bytes are released or limits lifted
	blocks    []*Block
	head      int
	used, max int64
	unbounded bool // stopping: pushes no longer wait
	closed    bool // no more pushes; the batcher drains and exits
	ready     chan struct{}
	timer     *time.Timer // pop's, reused: pop is called by one goroutine
}

func newQueue(max int64) *queue {
	q := &queue{max: max, ready: make(chan struct{}, 1)}
	q.space.L = &q.mu
	return q
}

func (q *queue) fits(n int64) bool {
	return q.unbounded || q.used+n <= q.max || q.used == 0
}

// push appends b, waiting while the queue is full unless wait is false; it
// reports whether b was queued (never once the queue is closed). It returns
// how long it waited.
func (q *queue) push(b *Block, wait bool) (ok bool, waited time.Duration) {
	return q.pushTimed(b, wait, nil)
}

// pushTimed is push for a producer whose waits are timed on clock (when
// not nil; see stall.go): only a push that has to wait reads it.
func (q *queue) pushTimed(b *Block, wait bool, clock *stallClock) (ok bool, waited time.Duration) {
	n := int64(b.Size())
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false, 0
	}
	if !q.fits(n) {
		if !wait {
			q.mu.Unlock()
			return false, 0
		}
		start := time.Now()
		var t0 int64
		if clock != nil {
			t0 = clock.begin()
		}
		for !q.fits(n) {
			q.space.Wait()
		}
		if clock != nil {
			clock.end(t0, 0)
		}
		waited = time.Since(start)
	}
	q.used += n
	q.blocks = append(q.blocks, b)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true, waited
}

// pop returns the oldest block; only the batcher calls it. A wake-up
// without a block (see wake) returns nil, false. With wait < 0 it waits until a block arrives
// or the queue is closed and empty (then it returns nil, true); with wait >= 0
// it gives up after that long (nil, false).
func (q *queue) pop(wait time.Duration) (b *Block, done bool) {
	armed := false
	for {
		q.mu.Lock()
		if q.head < len(q.blocks) {
			b = q.blocks[q.head]
			q.blocks[q.head] = nil
			q.head++
			if q.head == len(q.blocks) {
				q.blocks, q.head = q.blocks[:0], 0
			}
			q.mu.Unlock()
			return b, false
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return nil, true
		}
		if wait == 0 {
			return nil, false
		}
		if wait < 0 {
			<-q.ready
			wait = 0 // one more look, then report the wake-up
			continue
		}
		if !armed {
			if q.timer == nil {
				q.timer = time.NewTimer(wait)
			} else {
				q.timer.Reset(wait)
			}
			armed = true
		}
		select {
		case <-q.ready:
		case <-q.timer.C:
			return nil, false
		}
	}
}

// wake makes a waiting pop return.
func (q *queue) wake() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// release returns n bytes of capacity, taken by a block the batcher is done with.
func (q *queue) release(n int64) {
	q.mu.Lock()
	q.used -= n
	q.mu.Unlock()
	q.space.Broadcast()
}

// bytes returns the memory held by queued and in-flight blocks.
func (q *queue) bytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.used
}

// unblock lifts the bound: pushes stop waiting (used when stopping, so the
// event loops can finish their reads).
func (q *queue) unblock() {
	q.mu.Lock()
	q.unbounded = true
	q.mu.Unlock()
	q.space.Broadcast()
}

// close ends the queue: the batcher drains what is queued, then exits.
func (q *queue) close() {
	q.mu.Lock()
	q.closed, q.unbounded = true, true
	q.mu.Unlock()
	q.space.Broadcast()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// capacity returns the queue's bound in bytes.
func (q *queue) capacity() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.max
}

// oldestReceived returns the reception time (Unix ns) of the first record
// routed to bit in the oldest queued block, 0 when none is queued. A block
// is queued only for the outputs one of its records is routed to, and its
// records are in reception order. For scrapes: it reads under the lock a
// block the queue still holds.
func (q *queue) oldestReceived(bit uint64) int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head >= len(q.blocks) {
		return 0
	}
	b := q.blocks[q.head]
	for off := 0; off+recHeaderSize <= len(b.buf); off += recordLen(b.buf[off:]) {
		if recordMask(b.buf[off:])&bit != 0 {
			return recordReceived(b.buf, off)
		}
	}
	return 0
}
