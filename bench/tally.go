package bench

import (
	"bytes"
	"math/bits"
	"sync/atomic"
	"time"
)

// Tally accounts the alerts a sink received: how many, how many bytes, which
// sequence numbers (so duplicates and missing ids are known), and end-to-end
// latency. Its methods are safe for concurrent use and Add costs no
// allocation except, once per 2^20 sequence numbers, a 128 KiB bitmap chunk.
// The zero Tally is ready.
type Tally struct {
	received  atomic.Uint64 // alerts with a readable sequence number
	dups      atomic.Uint64
	malformed atomic.Uint64 // events without a readable sequence number
	outRange  atomic.Uint64 // sequence numbers beyond the bitmap
	bytes     atomic.Uint64
	last      atomic.Int64 // Unix nanoseconds of the last alert
	first     atomic.Pointer[[]byte]
	Latency   Histogram
	chunks    [tallyChunks]atomic.Pointer[tallyChunk]
}

const (
	tallyChunkBits = 20
	tallyChunks    = 4096 // 2^32 sequence numbers in all
)

type tallyChunk [1 << tallyChunkBits / 64]atomic.Uint64

// Add records alert seq, sent at sentNanos and received at nowNanos, which
// took size bytes on the wire. It reports whether seq was new.
func (t *Tally) Add(seq uint64, sentNanos, nowNanos int64, size int) bool {
	t.bytes.Add(uint64(size))
	ci := seq >> tallyChunkBits
	if ci >= tallyChunks {
		t.outRange.Add(1)
		return false
	}
	c := t.chunks[ci].Load()
	if c == nil {
		c = new(tallyChunk)
		if !t.chunks[ci].CompareAndSwap(nil, c) {
			c = t.chunks[ci].Load()
		}
	}
	bit := seq & (1<<tallyChunkBits - 1)
	mask := uint64(1) << (bit & 63)
	t.received.Add(1)
	t.Latency.Record(time.Duration(nowNanos - sentNanos))
	if t.last.Load() < nowNanos {
		t.last.Store(nowNanos) // racy max: good to a few microseconds
	}
	if c[bit>>6].Or(mask)&mask != 0 {
		t.dups.Add(1)
		return false
	}
	return true
}

// FirstEvent returns the start (up to 400 bytes) of the first event given to
// Account, to show what the relay sends; nil before any.
func (t *Tally) FirstEvent() []byte {
	if p := t.first.Load(); p != nil {
		return *p
	}
	return nil
}

// AddMalformed records an event of size bytes with no readable sequence
// number.
func (t *Tally) AddMalformed(size int) {
	t.malformed.Add(1)
	t.bytes.Add(uint64(size))
}

// Seen reports whether seq was received.
func (t *Tally) Seen(seq uint64) bool {
	ci := seq >> tallyChunkBits
	if ci >= tallyChunks {
		return false
	}
	c := t.chunks[ci].Load()
	if c == nil {
		return false
	}
	bit := seq & (1<<tallyChunkBits - 1)
	return c[bit>>6].Load()&(1<<(bit&63)) != 0
}

// Missing returns how many of the sequence numbers 0..sent-1 were never
// received, and up to max of them, smallest first.
func (t *Tally) Missing(sent uint64, max int) (n uint64, ids []uint64) {
	for ci := uint64(0); ci<<tallyChunkBits < sent; ci++ {
		lo := ci << tallyChunkBits
		hi := min(lo+1<<tallyChunkBits, sent)
		var c *tallyChunk
		if ci < tallyChunks {
			c = t.chunks[ci].Load()
		}
		if c == nil {
			n += hi - lo
			for s := lo; s < hi && len(ids) < max; s++ {
				ids = append(ids, s)
			}
			continue
		}
		for s := lo; s < hi; s += 64 {
			w := c[(s-lo)>>6].Load()
			width := min(hi-s, 64)
			if width < 64 {
				w |= ^uint64(0) << width // bits past sent count as seen
			}
			n += uint64(bits.OnesCount64(^w))
			for w != ^uint64(0) && len(ids) < max {
				b := bits.TrailingZeros64(^w)
				ids = append(ids, s+uint64(b))
				w |= 1 << uint(b)
			}
		}
	}
	return n, ids
}

// TallyCounts is a snapshot of a Tally's counters.
type TallyCounts struct {
	Received   uint64 // alerts with a sequence number, duplicates included
	Duplicates uint64
	Malformed  uint64
	OutOfRange uint64
	Bytes      uint64
	Last       int64 // Unix nanoseconds of the last alert received, 0 if none
}

// Unique returns the number of distinct alerts received.
func (c TallyCounts) Unique() uint64 { return c.Received - c.Duplicates }

// Counts returns the current counters.
func (t *Tally) Counts() TallyCounts {
	return TallyCounts{
		Received: t.received.Load(), Duplicates: t.dups.Load(), Malformed: t.malformed.Load(),
		OutOfRange: t.outRange.Load(), Bytes: t.bytes.Load(), Last: t.last.Load(),
	}
}

// Account finds the alert in one forwarded event (a syslog frame, a line of
// a /plain/batch body, or a string of a /batch body) and records it in t.
// The event is not retained.
func (t *Tally) Account(event []byte, nowNanos int64) {
	if t.first.Load() == nil {
		e := append([]byte(nil), event[:min(len(event), 400)]...)
		t.first.CompareAndSwap(nil, &e)
	}
	seq, ts, ok := ScanAlert(event)
	if !ok {
		t.AddMalformed(len(event))
		return
	}
	t.Add(seq, ts, nowNanos, len(event))
}

var (
	keySeq = []byte("dtbench_seq")
	keyTS  = []byte("dtbench_ts")
)

// ScanAlert reads "dtbench_seq" and "dtbench_ts" out of an event without
// parsing it. It accepts the fields as written by Generator, or escaped inside
// a JSON string (`\"dtbench_seq\":12`), anywhere in the event.
func ScanAlert(event []byte) (seq uint64, sentNanos int64, ok bool) {
	i := bytes.Index(event, keySeq)
	if i < 0 {
		return 0, 0, false
	}
	rest := event[i+len(keySeq):]
	v, n, ok := scanNumber(rest)
	if !ok {
		return 0, 0, false
	}
	rest = rest[n:]
	j := bytes.Index(rest, keyTS)
	if j < 0 || j > 8 {
		return 0, 0, false
	}
	ts, _, ok := scanNumber(rest[j+len(keyTS):])
	if !ok || ts > 1<<63-1 {
		return 0, 0, false
	}
	return v, int64(ts), true
}

// scanNumber skips the quote, backslash, colon and blank bytes between a key
// and its value, then reads a decimal number of at most 19 digits. It returns
// the value and the bytes consumed.
func scanNumber(b []byte) (v uint64, n int, ok bool) {
	for n < len(b) && n < 8 {
		c := b[n]
		if c != '"' && c != '\\' && c != ':' && c != ' ' {
			break
		}
		n++
	}
	start := n
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		if n-start == 19 {
			return 0, 0, false
		}
		v = v*10 + uint64(b[n]-'0')
		n++
	}
	return v, n, n > start
}
