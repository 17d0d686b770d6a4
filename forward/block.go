package forward

import (
	"encoding/binary"
	"math/bits"
	"sync/atomic"

	"github.com/dtrelay/dtrelay/parser"
	"github.com/dtrelay/dtrelay/spool"
)

// A Block holds records back to back: each a fixed-size header followed by
// the raw frame. A Producer fills one Block and publishes it to every output
// that at least one of its records is routed to; each of those outputs
// releases it once its records are delivered (or given up), and the last
// release returns the Block to its pool.
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

// Record header layout (little endian), recHeaderSize bytes:
//
//	0  u32 raw length        4  u8 kind   5 u8 priority  6 u8 flags  7 u8 style
//	8  i16 pri              10  u16 input
//	12 u32 payload start    16 u32 payload end
//	20 u32 timestamp start  24 u32 timestamp end
//	28 u32 host start       32 u32 host end
//	36 u32 app start        40 u32 app end
//	44 u32 reserved
//	48 u64 output mask      56 i64 received (Unix ns)
const recHeaderSize = 64

// Record flags (byte 6). flagUnspooled marks a record the spool refused
// (too large, or the pipeline stopping): it exists in memory only.
const (
	flagNotJSON   = 1
	flagUnspooled = 2
)

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

// appendRecord copies frame and its metadata into b. The caller checked room.
func (b *Block) appendRecord(frame []byte, h *parser.Header, a *parser.Alert, notJSON bool, input uint16, mask uint64, received int64) {
	off := len(b.buf)
	b.buf = b.buf[:off+recHeaderSize]
	hd := b.buf[off : off+recHeaderSize]
	le := binary.LittleEndian
	le.PutUint32(hd[0:], uint32(len(frame)))
	hd[4], hd[5], hd[6], hd[7] = byte(a.Kind), byte(a.Priority), 0, byte(h.Style)
	if notJSON {
		hd[6] = flagNotJSON
	}
	le.PutUint16(hd[8:], uint16(h.Pri))
	le.PutUint16(hd[10:], input)
	putSpan(hd[12:], h.Payload)
	putSpan(hd[20:], h.Timestamp)
	putSpan(hd[28:], h.Host)
	putSpan(hd[36:], h.App)
	le.PutUint32(hd[44:], 0)
	le.PutUint64(hd[48:], mask)
	le.PutUint64(hd[56:], uint64(received))
	b.buf = append(b.buf, frame...)
	b.n++
	b.mask |= mask
}

func putSpan(dst []byte, s parser.Span) {
	binary.LittleEndian.PutUint32(dst, uint32(s.Start))
	binary.LittleEndian.PutUint32(dst[4:], uint32(s.End))
}

func span(raw []byte, hd []byte) []byte {
	s := binary.LittleEndian.Uint32(hd)
	e := binary.LittleEndian.Uint32(hd[4:])
	if e <= s {
		return nil
	}
	return raw[s:e]
}

// readRecord decodes the record at off into r and returns its output mask
// and the offset of the next record. r's slices alias b.
func (b *Block) readRecord(off int, r *Record) (mask uint64, next int) {
	le := binary.LittleEndian
	hd := b.buf[off : off+recHeaderSize]
	n := int(le.Uint32(hd[0:]))
	raw := b.buf[off+recHeaderSize : off+recHeaderSize+n]
	style := parser.Style(hd[7])
	*r = Record{
		Raw:      raw,
		Payload:  span(raw, hd[12:]),
		Host:     span(raw, hd[28:]),
		App:      span(raw, hd[36:]),
		Pri:      int16(le.Uint16(hd[8:])),
		Received: int64(le.Uint64(hd[56:])),
		Kind:     parser.Kind(hd[4]),
		Priority: parser.Priority(hd[5]),
		Input:    le.Uint16(hd[10:]),
		NotJSON:  hd[6]&flagNotJSON != 0,
		memOnly:  hd[6]&flagUnspooled != 0,
	}
	if style == parser.Style5424 {
		r.Timestamp = span(raw, hd[20:])
	}
	if r.Payload == nil {
		r.Payload = raw[:0]
	}
	return le.Uint64(hd[48:]), off + recHeaderSize + n
}
