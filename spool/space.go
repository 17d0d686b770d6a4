package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// This file is the spool's answer to running out of room: MaxSize reached,
// or the disk full before it. Both are handled alike, as Options.WhenFull
// says: block waits for space, drop_oldest deletes the oldest segment.
//
// A full disk cannot be relied on to accept any write, so nothing here
// needs one: a segment whose records every consumer acknowledged is deleted
// (the active one too, replaced by a new empty file), the files of deleted
// segments are closed at once so the space really comes back, and new
// segment files are created empty (their header is written with the first
// records).

// noSpaceRetry is how often an Append waiting for disk space retries:
// space can also come back from outside (an operator deleting files).
const noSpaceRetry = time.Second

// minDiskSegment bounds from below the segment size the spool lowers itself
// to on a full disk.
const minDiskSegment = 64 << 10

// isNoSpace reports whether err means the disk (or the user's quota) is full.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// LostError is returned by Close when records that drop_oldest deleted from
// disk while a consumer held them in memory (Reader.Hold) were never
// acknowledged by that consumer: they are lost, and counted as dropped.
type LostError struct{ Records int64 }

func (e *LostError) Error() string {
	return fmt.Sprintf("spool: %d records dropped from disk while held in memory were never delivered", e.Records)
}

// StopWaiting makes Appends that wait for space, now or later, fail with
// ErrFull instead; for a pipeline that is stopping and keeps such records
// in memory. It is safe for concurrent use.
func (s *Spool) StopWaiting() {
	s.mu.Lock()
	s.noWait = true
	s.space.Broadcast()
	s.mu.Unlock()
}

// Hold tells the spool that this reader's consumer holds every record up
// to and including the one at pos, received by other means than Next (an
// in-memory fast path), and will acknowledge them with Skip once delivered.
// When drop_oldest deletes such records from disk they are not counted as
// dropped, unless the consumer has not acknowledged them by Close. Hold is
// safe for concurrent use; one call per block of records, not per record.
func (r *Reader) Hold(pos Pos) {
	r.s.mu.Lock()
	if r.c.held.Before(pos) {
		r.c.held = pos
	}
	r.s.mu.Unlock()
}

// makeRoomLocked is called when an append would exceed MaxSize: it drops
// the oldest segment, or waits until space may have been freed.
func (s *Spool) makeRoomLocked() error {
	if s.dropUnclaimedLocked() { // claims.go: unclaimed backlogs go first
		return nil
	}
	if s.opts.WhenFull == WhenFullDropOldest {
		if !s.dropOldestLocked() {
			return ErrFull // cannot happen: segments are at most MaxSize/4
		}
		return nil
	}
	s.sample.Warn().Int64("bytes", s.bytes).Int64("max_size", s.opts.MaxSize).
		Msg("spool full: appends blocked until outputs acknowledge")
	return s.waitLocked(0)
}

// noSpaceLocked is called when a write or a file creation failed for lack
// of disk space; the caller retries when it returns nil.
func (s *Spool) noSpaceLocked(cause error) error {
	// From now on, smaller segments: acknowledged space then comes back in
	// steps of an eighth of what the disk held.
	if lim := max(s.bytes/8, minDiskSegment); lim < s.segLimit {
		s.segLimit = lim
		s.log.Warn().Int64("segment_size", lim).Int64("bytes", s.bytes).
			Msg("spool disk full before max_size: using smaller segments")
	}
	if s.rotateAckedLocked() || s.dropUnclaimedLocked() {
		return nil
	}
	if s.opts.WhenFull == WhenFullDropOldest && (s.dropOldestLocked() || s.dropActiveLocked()) {
		return nil
	}
	s.sample.Warn().Err(cause).Int64("bytes", s.bytes).
		Msg("spool disk full: appends wait until outputs acknowledge or space frees")
	return s.waitLocked(noSpaceRetry)
}

// waitLocked waits until space may have been freed, Close, StopWaiting, or
// retry (if not zero) has passed. Time waited is counted.
func (s *Spool) waitLocked(retry time.Duration) error {
	if s.noWait {
		return ErrFull
	}
	start := time.Now()
	var t *time.Timer
	if retry > 0 {
		t = time.AfterFunc(retry, func() {
			s.mu.Lock()
			s.space.Broadcast()
			s.mu.Unlock()
		})
	}
	s.waiters++
	s.blocked.Add(1)
	s.space.Wait()
	s.blocked.Add(-1)
	s.waiters--
	if t != nil {
		t.Stop()
	}
	s.m.blocked.Add(time.Since(start).Seconds())
	return nil
}

// rotateAckedLocked replaces the active segment with a new, empty one if
// it is the only segment and every consumer has acknowledged all of it.
func (s *Spool) rotateAckedLocked() bool {
	seg := s.active
	if len(s.segs) != 1 || seg.records == 0 {
		return false
	}
	end := Pos{seg: seg.id, off: seg.size}
	for _, c := range s.cons {
		if c.ack.Before(end) {
			return false
		}
	}
	return s.replaceActiveLocked(false)
}

// dropActiveLocked is drop_oldest when the active segment is the only one:
// it is replaced by a new, empty one, its records dropped.
func (s *Spool) dropActiveLocked() bool {
	if len(s.segs) != 1 || s.active.records == 0 {
		return false
	}
	return s.replaceActiveLocked(true)
}

// replaceActiveLocked deletes the active segment, the only one, and starts
// a new empty one; with drop, its records are counted as drop_oldest does.
// The new file is created first: on failure nothing changes.
func (s *Spool) replaceActiveLocked(drop bool) bool {
	old := s.active
	id := old.id + 1
	f, err := s.fs.OpenFile(s.path(id), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		s.m.writeErrors.Inc()
		s.sample.Error().Err(err).Msg("cannot create spool segment")
		return false
	}
	old.sealed = true
	if old.f != nil {
		_ = old.f.Close() // deleted below: no fsync needed
		old.f = nil
	}
	s.startSegmentLocked(id, s.opts.now().UnixNano(), f)
	s.popOldestLocked()
	lost := int64(0)
	if drop {
		lost = s.countDropLocked(old)
	}
	s.moveAcksLocked(old.id)
	if drop {
		s.log.Warn().Str("segment", filepath.Base(s.path(old.id))).Int64("records", lost).
			Int64("bytes", old.size).Msg("spool full: dropped the active segment")
	}
	s.removeFile(old.id)
	s.wakeLocked()
	return true
}

// dropOldestLocked deletes the oldest sealed segment, counting the records
// some consumer neither acknowledged nor holds. It returns false if there
// is none.
func (s *Spool) dropOldestLocked() bool {
	if len(s.segs) < 2 {
		return false
	}
	seg := s.segs[0]
	s.popOldestLocked()
	lost := s.countDropLocked(seg)
	s.moveAcksLocked(seg.id)
	s.log.Warn().Str("segment", filepath.Base(s.path(seg.id))).Int64("records", lost).
		Int64("bytes", seg.size).Msg("spool full: dropped oldest segment")
	s.removeFile(seg.id)
	return true
}

// moveAcksLocked moves the cursors still in segment id, just deleted, to
// the start of the oldest remaining segment.
func (s *Spool) moveAcksLocked(id uint64) {
	next := s.segs[0]
	for _, c := range s.cons {
		if c.ack.seg <= id {
			c.ack = Pos{seg: next.id, off: segHeaderSize}
		}
	}
}

// debt is a segment drop_oldest deleted while consumers held some of its
// records unacknowledged: records past every consumer's hold were counted
// as dropped then; those a consumer held are lost only if it never
// acknowledges them (settled by Close).
type debt struct {
	seg     uint64
	records int64
	// Per consumer that had a claim on the segment (not Spool.cons indexes:
	// dropUnclaimedLocked removes consumers from it).
	cons  []*consumer
	acked []int64 // records delivered
	held  []int64 // records held when the segment was dropped
}

// countDropLocked counts the records of seg, which drop_oldest is deleting
// (popped already: a reader does not return a record of it read from now
// on), that some consumer will not get: those no consumer has acknowledged,
// read or holds. Records held but not acknowledged become a debt. It
// returns the count.
func (s *Spool) countDropLocked(seg *segment) int64 {
	d := debt{seg: seg.id, records: seg.records}
	minHeld, owed := seg.records, false
	for _, c := range s.cons {
		if c.until != 0 && seg.id >= c.until {
			continue // an unclaimed backlog that ends before seg: it needs none of it
		}
		read := c.lastRead
		if c.r != nil {
			read = c.r.readPos()
		}
		acked := recordsIn(c.ack, seg.id, seg.records)
		held := max(acked, recordsIn(c.held, seg.id, seg.records), recordsIn(read, seg.id, seg.records))
		d.cons, d.acked, d.held = append(d.cons, c), append(d.acked, acked), append(d.held, held)
		minHeld = min(minHeld, held)
		owed = owed || held > acked
	}
	if owed {
		s.debts = append(s.debts, d)
	}
	lost := seg.records - minHeld
	s.m.dropped.AddInt64(lost)
	return lost
}

// recordsIn returns how many of the records of segment id are at or before p.
func recordsIn(p Pos, id uint64, records int64) int64 {
	switch {
	case p.seg > id:
		return records
	case p.seg == id:
		return min(p.n, records)
	}
	return 0
}

// deliveredLocked is called for every acknowledgement of c up to pos: it
// settles what c owed, and lets Appends waiting for disk space look again
// (an acknowledged active segment can be replaced).
func (s *Spool) deliveredLocked(c *consumer, pos Pos) {
	if s.waiters > 0 {
		s.space.Broadcast()
	}
	if len(s.debts) == 0 {
		return
	}
	keep := s.debts[:0]
	for _, d := range s.debts {
		if i := slices.Index(d.cons, c); i >= 0 {
			d.acked[i] = max(d.acked[i], min(recordsIn(pos, d.seg, d.records), d.held[i]))
		}
		for j := range d.acked {
			if d.acked[j] < d.held[j] {
				keep = append(keep, d)
				break
			}
		}
	}
	clear(s.debts[len(keep):])
	s.debts = keep
}

// settleDebtsLocked counts as dropped, at Close, the held records that
// were deleted from disk and never acknowledged, and returns how many.
func (s *Spool) settleDebtsLocked() int64 {
	var lost int64
	for _, d := range s.debts {
		minHeld, minAcked := d.records, d.records
		for j := range d.held {
			minHeld, minAcked = min(minHeld, d.held[j]), min(minAcked, d.acked[j])
		}
		lost += minHeld - minAcked
	}
	s.debts = nil
	if lost > 0 {
		s.m.dropped.AddInt64(lost)
		s.log.Error().Int64("records", lost).
			Msg("spool closed: records dropped from disk by drop_oldest while held in memory were never delivered: lost")
	}
	return lost
}

// popOldestLocked forgets the oldest segment (not the active one).
func (s *Spool) popOldestLocked() {
	seg := s.segs[0]
	s.segs[0] = nil
	s.segs = s.segs[1:]
	s.bytes -= seg.size
	s.dirDirty = true
	s.firstSeg.Store(s.segs[0].id)
	s.space.Broadcast()
}

// removeFile deletes the file of segment id, no longer in s.segs. Its
// writer's handle, if still open for a commit, is closed first, and so are
// the handles of idle readers: only then does a full disk get space back.
func (s *Spool) removeFile(id uint64) {
	for i, u := range s.unsynced {
		if u.id == id {
			if u.f != nil {
				_ = u.f.Close() // deleted: no fsync needed
				u.f = nil
			}
			s.unsynced = append(s.unsynced[:i], s.unsynced[i+1:]...)
			break
		}
	}
	if err := s.fs.Remove(s.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.m.writeErrors.Inc()
		s.log.Error().Err(err).Msg("cannot remove spool segment")
	}
	first := s.segs[0].id
	for _, c := range s.cons {
		// A reader inside Next holds its lock and moves on by itself; lock
		// order is Reader.mu then Spool.mu, so only try.
		if r := c.r; r != nil && r.mu.TryLock() {
			if !r.closed && r.f != nil && r.seg < first {
				r.moveTo(first)
			}
			r.mu.Unlock()
		}
	}
}
