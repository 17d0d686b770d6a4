package forward

import (
	"math/bits"
	"sync/atomic"

	"github.com/dtrelay/dtrelay/spool"
)

// A Block holds records back to back, each a fixed-size header followed by
// the raw frame (the record format, record.go). A Producer fills one Block
// and publishes it to every output that at least one of its records is
// routed to; each of those outputs releases it once its records are
// delivered (or given up), and the last release returns the Block to its
// pool.
type Block struct {
	buf   []byte
	n     int    // records
	mask  uint64 // union of the records' output masks
	refs  atomic.Int32
	class int // size class index in blockPools

	// With a spool: pos is the spool position of the last record (hasPos
	// once appended); disk marks a block an output filled from its spool
	// reader, private to that output and not in its queue.
	pos    spool.Pos
	hasPos bool
	disk   bool

	// done, when set (Producer.FlushWait), is closed once every output is
	// finished with the block.
	done chan struct{}
}

// Block size classes: powers of two from minBlockSize up to maxBlockSize.
const (
	minBlockShift = 14 // 16 KiB
	maxBlockShift = 26 // 64 MiB
	numClasses    = maxBlockShift - minBlockShift + 1
	// firstBlockSize is the block a read starts with; blocks that fill up
	// are followed by bigBlockSize ones, so a trickle of alerts does not pin
	// big blocks and a flood does not publish tiny ones.
	firstBlockSize = 16 << 10
	bigBlockSize   = 64 << 10 // one gnet read (64 KiB) fits
)

// freeBlocks keeps released blocks for reuse, per size class, up to
// retainedPerClass bytes each. A free list rather than a sync.Pool: a pool
// is emptied by every GC, and big blocks freshly allocated after each GC
// make GCs more frequent still.
var freeBlocks = func() (f [numClasses]chan *Block) {
	for c := range f {
		f[c] = make(chan *Block, retainedPerClass>>(c+minBlockShift))
	}
	return f
}()

const retainedPerClass = 16 << 20

// classFor returns the size class that holds n bytes.
func classFor(n int) int {
	if n <= 1<<minBlockShift {
		return 0
	}
	c := bits.Len(uint(n-1)) - minBlockShift
	if c >= numClasses {
		c = numClasses - 1
	}
	return c
}

func getBlock(n int) *Block {
	c := classFor(n)
	select {
	case b := <-freeBlocks[c]:
		return b
	default:
		return &Block{buf: make([]byte, 0, 1<<(c+minBlockShift)), class: c}
	}
}

func putBlock(b *Block) {
	if b.done != nil {
		close(b.done)
		b.done = nil
	}
	b.buf, b.n, b.mask, b.hasPos, b.disk = b.buf[:0], 0, 0, false, false
	select {
	case freeBlocks[b.class] <- b:
	default: // enough kept: let the GC have it
	}
}

// release drops one reference; the last one returns b to its pool.
func (b *Block) release() {
	if b.refs.Add(-1) == 0 {
		putBlock(b)
	}
}

// Size is the memory the block holds, which is what queues account for.
func (b *Block) Size() int { return cap(b.buf) }

// room reports whether a record of rawLen bytes fits without growing buf.
func (b *Block) room(rawLen int) bool {
	return len(b.buf)+recHeaderSize+rawLen <= cap(b.buf)
}
