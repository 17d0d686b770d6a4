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

	// dl, when set (Producer.Publish of a tracked input), is released
	// once every output is finished with the block (delivery.go).
	dl *delivery
}

// Block size classes: four per power of two (1, 1.25, 1.5, 1.75 times it)
// from 512 bytes up to 64 MiB, so a block holds at most 25% more than it
// was asked for. That matters for datagram inputs, whose every datagram is
// one block (see Producer): a queue's byte budget is then about the bytes
// of the datagrams, not a 16 KiB minimum each (issue 10: a 64 MiB queue
// held only 4096 datagrams).
const (
	minBlockShift  = 9  // 512 bytes
	maxBlockShift  = 26 // 64 MiB
	classesPerStep = 4
	numClasses     = (maxBlockShift-minBlockShift)*classesPerStep + 1
	// firstBlockSize is the block a read starts with; blocks that fill up
	// are followed by bigBlockSize ones, so a trickle of alerts does not pin
	// big blocks and a flood does not publish tiny ones.
	firstBlockSize = 16 << 10
	bigBlockSize   = 64 << 10 // one gnet read (64 KiB) fits
)

// freeBlocks keeps released blocks for reuse, per size class, up to
// retainedPerClass bytes or maxRetainedBlocks blocks each. A free list
// rather than a sync.Pool: a pool is emptied by every GC, and big blocks
// freshly allocated after each GC make GCs more frequent still.
var freeBlocks = func() (f [numClasses]chan *Block) {
	for c := range f {
		f[c] = make(chan *Block, min(retainedPerClass/classSize(c), maxRetainedBlocks))
	}
	return f
}()

const (
	retainedPerClass  = 16 << 20
	maxRetainedBlocks = 1024
)

// classSize returns the capacity of the blocks of class c:
// (4+c%4) << (c/4 + minBlockShift - 2).
func classSize(c int) int {
	return (classesPerStep + c%classesPerStep) << (c/classesPerStep + minBlockShift - 2)
}

// classFor returns the smallest size class that holds n bytes (the largest
// class beyond 64 MiB).
func classFor(n int) int {
	if n <= 1<<minBlockShift {
		return 0
	}
	v := uint(n - 1)
	e := bits.Len(v) - 1                             // 2^e <= v < 2^(e+1)
	mant := int(v>>(e-2)) & 3                        // v's two bits below the top one
	c := (e-minBlockShift)*classesPerStep + mant + 1 // (4+mant+1) << (e-2) > v
	return min(c, numClasses-1)
}

func getBlock(n int) *Block {
	c := classFor(n)
	select {
	case b := <-freeBlocks[c]:
		return b
	default:
		return &Block{buf: make([]byte, 0, classSize(c)), class: c}
	}
}

func putBlock(b *Block) {
	if b.dl != nil {
		b.dl.release()
		b.dl = nil
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
