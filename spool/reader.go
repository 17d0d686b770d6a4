package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Reader is one consumer's cursor. Next is called by one goroutine at a
// time; Ack may be called from any goroutine, concurrently with Next.
// A Reader ends with Close or with the Spool's Close.
type Reader struct {
	s      *Spool
	c      *consumer
	maxRec int

	mu      sync.Mutex // held by Next while not waiting, and by Close
	closed  bool
	seg     uint64 // current segment
	f       file   // open on seg, or nil
	w       window
	off     int64 // start of the next record in seg
	n       int64 // records of seg returned so far
	limit   int64 // readable end of seg when last looked up
	sealed  bool
	next    uint64 // segment after seg, when sealed
	created int64

	pmu  sync.Mutex // leaf lock guarding read and mark
	read Pos        // just past the last record returned by Next
	mark Pos        // the last Mark

	slotBuf [markSlotSize]byte // Mark's scratch
	// The consumer's gap (cursorRec), until the reader has passed it.
	gapFrom, gapTo Pos
	// Owner's cache: the segments [ownLo, ownHi) of the epoch last looked up.
	ownLo, ownHi uint64
	ownIdx       int
	ownKnown     bool
}

// Reader returns the reader of a consumer named in Options.Consumers. It
// starts right after the consumer's last acknowledged record. A consumer
// has at most one open Reader.
func (s *Spool) Reader(name string) (*Reader, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	c := s.byName[name]
	if c == nil || c.slot < 0 {
		return nil, ErrUnknownConsumer
	}
	if c.r != nil {
		return nil, ErrReaderInUse
	}
	r := &Reader{s: s, c: c, maxRec: MaxRecordSize, seg: c.ack.seg, off: max(c.ack.off, segHeaderSize), n: c.ack.n, read: c.ack,
		gapFrom: c.gapFrom, gapTo: c.gapTo}
	c.r = r
	return r, nil
}

// Next returns the next record and its position, waiting until one exists,
// ctx is done (ctx.Err() is returned) or the spool or reader is closed
// (ErrClosed). rec aliases the reader's buffer: it is valid until the next
// call of Next or TryNext and must not be modified. Records are returned in append
// order; corrupt regions met on the way are skipped and counted.
func (r *Reader) Next(ctx context.Context) (rec []byte, pos Pos, err error) {
	for {
		r.mu.Lock()
		rec, pos, wait, err := r.step()
		r.mu.Unlock()
		if wait == nil {
			return rec, pos, err
		}
		select {
		case <-ctx.Done():
			return nil, Pos{}, ctx.Err()
		case <-wait:
		}
	}
}

// TryNext is Next without waiting: it returns the next record when one is
// ready, ErrNotReady when none is (yet), ErrClosed once the spool or the
// reader is closed. rec has Next's lifetime. It is for a consumer that has
// other work while the spool has nothing for it (forward's batchers, which
// then look at their memory queue).
func (r *Reader) TryNext() (rec []byte, pos Pos, err error) {
	r.mu.Lock()
	rec, pos, wait, err := r.step()
	r.mu.Unlock()
	if wait != nil {
		return nil, Pos{}, ErrNotReady
	}
	return rec, pos, err
}

// step returns a record, an error, or a channel to wait on.
func (r *Reader) step() ([]byte, Pos, <-chan struct{}, error) {
	for {
		if r.closed {
			return nil, Pos{}, nil, ErrClosed
		}
		if first := r.s.firstSeg.Load(); r.seg < first {
			r.moveTo(first) // dropped, or deleted under a new reader
		}
		if r.gapTo != (Pos{}) {
			r.passGap()
		}
		if r.off < r.limit {
			fr, ok, err := frameAt(&r.w, r.off, r.limit, r.maxRec)
			if !ok {
				r.skipCorrupt(err)
				continue
			}
			r.off += int64(len(fr))
			r.n++
			pos := Pos{seg: r.seg, off: r.off, n: r.n}
			r.pmu.Lock()
			// drop_oldest marks a segment deleted (firstSeg) before it
			// counts what readers have read: a record it counted is not
			// returned.
			dropped := r.s.firstSeg.Load() > r.seg
			if !dropped {
				r.read = pos
			}
			r.pmu.Unlock()
			if dropped {
				continue
			}
			return fr[frameHeaderSize:], pos, nil, nil
		}
		v := r.s.view(r.seg, r.off)
		switch {
		case v.closed:
			return nil, Pos{}, nil, ErrClosed
		case !v.ok && v.next != 0:
			r.moveTo(v.next)
			continue
		case !v.ok:
			return nil, Pos{}, v.wait, nil
		}
		// v.wait is set exactly when there is nothing to read and no next
		// segment to move to.
		r.limit, r.sealed, r.next, r.created = v.visible, v.sealed, v.next, v.created
		if r.off < r.limit && r.f == nil {
			f, err := r.s.fs.OpenFile(r.s.path(r.seg), os.O_RDONLY, 0)
			if err != nil {
				r.s.unreadable(r.seg, err, errors.Is(err, os.ErrNotExist))
				if r.next == 0 {
					r.limit = 0
					return nil, Pos{}, nil, fmt.Errorf("cannot open spool segment: %w", err)
				}
				r.moveTo(r.next) // deleted meanwhile, or unreadable: skipped
				continue
			}
			r.f = f
			r.w.reset(f)
		}
		if r.off < r.limit {
			continue
		}
		if r.sealed && r.next != 0 {
			r.moveTo(r.next)
			continue
		}
		return nil, Pos{}, v.wait, nil
	}
}

// skipCorrupt moves past an invalid frame at r.off: to the end of the region
// recovery found there, else to the next frame that verifies.
func (r *Reader) skipCorrupt(ioErr error) {
	if to, ok := r.s.knownSkip(r.seg, r.off); ok {
		r.off = to
		return
	}
	next := r.limit
	if ioErr == nil {
		next, _, ioErr = resync(&r.w, r.off+1, r.limit, r.created, r.maxRec)
	}
	r.s.addSkip(r.seg, skip{r.off, next}, ioErr)
	r.off = next
}

// passGap jumps over the consumer's gap once the reader has reached it.
func (r *Reader) passGap() {
	at := Pos{seg: r.seg, off: r.off}
	if at.Before(r.gapFrom) {
		return
	}
	if at.Before(r.gapTo) {
		if r.gapTo.seg != r.seg {
			r.moveTo(r.gapTo.seg)
		}
		r.off, r.n = max(r.gapTo.off, segHeaderSize), r.gapTo.n
	}
	r.gapFrom, r.gapTo = Pos{}, Pos{}
}

func (r *Reader) moveTo(id uint64) {
	if r.f != nil {
		_ = r.f.Close() // read-only
		r.f = nil
	}
	r.w.reset(nil)
	r.seg, r.off, r.n, r.limit, r.sealed, r.next = id, segHeaderSize, 0, 0, false, 0
}

// readPos returns how far the consumer has been handed records: by Next,
// Skip or Mark.
func (r *Reader) readPos() Pos {
	r.pmu.Lock()
	defer r.pmu.Unlock()
	return maxPos(r.read, r.mark)
}

// Ack acknowledges every record up to and including the one at pos for
// this consumer. Acknowledging a position already acknowledged is a no-op;
// one past the last record returned by Next fails with ErrAckAhead. The
// acknowledgement is written at once to the consumer's slot of the marks
// file (one positional write, no fsync: it survives a kill -9) and
// persisted durably by the next commit; segments acknowledged by every
// consumer are deleted at once. Call it once per delivery (a batch or a
// block of records), not per record.
func (r *Reader) Ack(pos Pos) error {
	if r.readPos().Before(pos) {
		return ErrAckAhead
	}
	return r.s.ackAndMark(r.c, pos)
}

// Skip acknowledges every record up to and including the one at pos, like
// Ack, and moves the reader past them without reading them: the consumer
// received them by other means. A pos at or before the read position only
// acknowledges. Like Ack, it writes the acknowledgement to the marks file
// (one positional write per call that moves it). Skip is called by the
// goroutine that calls Next.
func (r *Reader) Skip(pos Pos) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	r.pmu.Lock()
	behind := r.read.Before(pos)
	r.pmu.Unlock()
	if behind {
		if pos.seg != r.seg {
			r.moveTo(pos.seg)
		}
		r.off, r.n = pos.off, pos.n
		r.pmu.Lock()
		r.read = pos
		r.pmu.Unlock()
	}
	r.mu.Unlock()
	return r.s.ackAndMark(r.c, pos)
}

// Close releases the reader; the consumer may open a new one, which starts
// after the last acknowledged record (unacknowledged ones are read again).
func (r *Reader) Close() error {
	if !r.shut() {
		return ErrClosed
	}
	r.s.mu.Lock()
	if r.c.r == r {
		r.c.lastRead = r.readPos()
		r.c.r = nil
	}
	r.s.mu.Unlock()
	return nil
}

// shut closes the reader's file; it reports false if it was already shut.
func (r *Reader) shut() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.closed = true
	if r.f != nil {
		_ = r.f.Close()
		r.f = nil
	}
	return true
}

// segView is what a reader needs to know about one segment.
type segView struct {
	ok      bool   // the segment exists
	next    uint64 // id of the following segment, 0 if none
	visible int64
	sealed  bool
	created int64
	closed  bool
	wait    <-chan struct{} // closed when the spool changes next
}

// view describes segment id to a reader at off. (Append writes what it
// accepts before returning: nothing is buffered for a reader to wait on.)
func (s *Spool) view(id uint64, off int64) segView {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.findLocked(id)
	v := segView{closed: s.closed}
	switch {
	case i == len(s.segs):
	case s.segs[i].id != id:
		v.next = s.segs[i].id
	default:
		seg := s.segs[i]
		v.ok, v.visible, v.sealed, v.created = true, seg.visible, seg.sealed, seg.created
		if i+1 < len(s.segs) {
			v.next = s.segs[i+1].id
		}
	}
	if !v.closed && v.next == 0 && (!v.ok || off >= v.visible) {
		// The reader will wait: wakeLocked must replace the channel.
		v.wait, s.notifyTaken = s.notify, true
	}
	return v
}

// findLocked returns the index of the first segment with an id >= id.
func (s *Spool) findLocked(id uint64) int {
	lo, hi := 0, len(s.segs)
	for lo < hi {
		m := (lo + hi) / 2
		if s.segs[m].id < id {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func (s *Spool) segLocked(id uint64) *segment {
	if i := s.findLocked(id); i < len(s.segs) && s.segs[i].id == id {
		return s.segs[i]
	}
	return nil
}

func (s *Spool) knownSkip(id uint64, off int64) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seg := s.segLocked(id); seg != nil {
		for _, k := range seg.skips {
			if k.from == off {
				return k.to, true
			}
		}
	}
	return 0, false
}

// addSkip records and counts a corrupt region found by a reader after Open.
func (s *Spool) addSkip(id uint64, k skip, ioErr error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seg := s.segLocked(id)
	if seg == nil {
		return
	}
	for _, o := range seg.skips {
		if o.from == k.from {
			return // another reader found it first
		}
	}
	seg.skips = append(seg.skips, k)
	s.m.corrupt.Inc()
	s.m.corruptBytes.AddInt64(k.to - k.from)
	s.log.Error().Err(ioErr).Str("segment", filepath.Base(s.path(id))).Int64("offset", k.from).
		Int64("bytes", k.to-k.from).Msg("corrupt spool region skipped")
}

// unreadable reports a segment a reader cannot open. A missing one was
// deleted meanwhile and is not reported.
func (s *Spool) unreadable(id uint64, err error, missing bool) {
	if missing {
		return
	}
	s.m.corrupt.Inc()
	s.log.Error().Err(err).Str("segment", filepath.Base(s.path(id))).Msg("cannot open spool segment: skipped")
}

// ack moves c's acknowledgement to pos; moved reports whether it did.
func (s *Spool) ack(c *consumer, pos Pos) (moved bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, ErrClosed
	}
	s.deliveredLocked(c, pos) // space.go
	if !c.ack.Before(pos) {
		return false, nil
	}
	c.ack = pos
	if c.gapTo != (Pos{}) && !c.ack.Before(c.gapTo) {
		c.gapFrom, c.gapTo = Pos{}, Pos{} // past the gap
	}
	s.collectAckedLocked()
	return true, nil
}

// collectAckedLocked deletes the oldest segments every consumer has
// acknowledged entirely; the active segment stays.
func (s *Spool) collectAckedLocked() {
	for len(s.segs) > 1 {
		seg := s.segs[0]
		for _, c := range s.cons {
			if c.needs(seg) {
				return
			}
		}
		s.popOldestLocked()
		s.removeFile(seg.id)
	}
}

// needs reports whether c has not acknowledged all of seg, which is part
// of its backlog if c is unclaimed.
func (c *consumer) needs(seg *segment) bool {
	if c.until != 0 && seg.id >= c.until {
		return false
	}
	return c.ack.seg < seg.id || (c.ack.seg == seg.id && (!seg.sealed || c.ack.off < seg.size))
}
