package spool

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// flushThreshold is the write-buffer size at which Append writes it out.
const flushThreshold = 1 << 20

// Spool is an open spool directory. Append, Sync, Stats and Reader are safe
// for concurrent use; each Reader is used by one goroutine at a time.
// Close must be called to stop the group-commit goroutine, persist the
// cursors and release the directory lock.
type Spool struct {
	opts   Options
	fs     fileSystem
	log    zerolog.Logger
	sample zerolog.Logger // for errors that can repeat per call
	maxRec int
	m      *spoolMetrics
	lockF  *os.File

	mu      sync.Mutex
	space   *sync.Cond // broadcast when bytes shrink and on Close
	closed  bool
	segs    []*segment // by id; the last one is active
	active  *segment
	buf     []byte // frames of active not yet written, starting at written
	bufRecs int
	written int64 // bytes of active written to its file
	bytes   int64 // sum of segment sizes, buffered frames included
	waiters int   // Appends blocked on space
	// unsynced are sealed segments written since the last commit; their
	// files stay open until fsynced, even if the segment is deleted.
	unsynced    []*segment
	activeDirty bool
	dirDirty    bool
	notify      chan struct{} // closed and replaced when readers may progress
	notifyTaken bool          // a reader holds notify: replace it on wake
	cons        []*consumer
	byName      map[string]*consumer
	werr        error // the last write error, until a write succeeds
	firstSeg    atomic.Uint64
	// See marks.go and cursor.go; epochs is not changed after Open.
	marks  *marks
	epochs []epoch

	commitMu sync.Mutex // serialises commits
	stop     chan struct{}
	done     chan struct{}
}

// segment is the in-memory state of one segment file, guarded by Spool.mu.
type segment struct {
	id      uint64
	created int64
	size    int64 // header and frames, buffered ones included
	visible int64 // bytes readers may read: written, frame aligned
	sealed  bool
	records int64
	marks   []mark
	skips   []skip
	f       file // writer's handle (active or unsynced), else nil
}

// consumer is the cursor state of one consumer, guarded by Spool.mu.
type consumer struct {
	name          string
	ack           Pos
	lastRead      Pos // read position when no Reader is open
	persistedAck  Pos
	persistedRead Pos
	r             *Reader
	// See cursor.go: slot is the index in Options.Consumers (its marks
	// slot), -1 for a consumer no output claims; until and the gap are
	// those of cursorRec.
	slot           int
	until          uint64
	gapFrom, gapTo Pos
	pending        int64 // unclaimed: records of its backlog still kept
}

func (s *Spool) path(id uint64) string {
	return filepath.Join(s.opts.Dir, fmt.Sprintf("%016x.seg", id))
}

// Append copies records into the spool. It returns the number of records
// accepted, len(recs) unless err is non-nil; the records before the failing
// one are accepted. An accepted record is durable after the next commit, at
// most FsyncInterval later. When the spool is full, Append blocks
// (WhenFullBlock) until acknowledgements free space or Close, or drops the
// oldest segment (WhenFullDropOldest). A record larger than the segment
// payload limit fails with ErrTooLarge; a write error is returned wrapped and
// leaves the buffered records queued for retry.
func (s *Spool) Append(recs ...[]byte) (int, error) {
	ts := s.opts.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, rec := range recs {
		if err := s.appendLocked(rec, ts); err != nil {
			return i, err
		}
	}
	return len(recs), nil
}

// AppendPos is Append that also returns the position of the last record
// it appended (meaningful when n > 0). A consumer that receives records by
// other means than its Reader (an in-memory fast path) acknowledges them
// with Reader.Skip at such positions.
func (s *Spool) AppendPos(recs ...[]byte) (last Pos, n int, err error) {
	ts := s.opts.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, rec := range recs {
		if err := s.appendLocked(rec, ts); err != nil {
			return last, i, err
		}
		last = Pos{seg: s.active.id, off: s.active.size, n: s.active.records}
	}
	return last, len(recs), nil
}

func (s *Spool) appendLocked(rec []byte, ts int64) error {
	if len(rec) > s.maxRec {
		return fmt.Errorf("%w: %d bytes (limit %d)", ErrTooLarge, len(rec), s.maxRec)
	}
	fl := int64(frameHeaderSize + len(rec))
	for {
		if s.closed {
			return ErrClosed
		}
		if s.werr != nil || len(s.buf) >= flushThreshold {
			if err := s.flushLocked(); err != nil {
				return err
			}
		}
		need := fl
		roll := s.active.size+fl > s.opts.SegmentSize
		if roll {
			need += segHeaderSize
		}
		if s.bytes+need <= s.opts.MaxSize {
			if roll {
				if err := s.rollLocked(ts); err != nil {
					return err
				}
			}
			break
		}
		if err := s.makeRoomLocked(); err != nil {
			return err
		}
	}
	seg := s.active
	if len(seg.marks) == 0 || ts-seg.marks[len(seg.marks)-1].ts >= markInterval {
		seg.marks = append(seg.marks, mark{seg.size, ts})
	}
	s.buf = appendFrame(s.buf, rec, ts)
	s.bufRecs++
	seg.size += fl
	seg.records++
	s.bytes += fl
	s.activeDirty = true
	if s.notifyTaken {
		s.wakeLocked() // a waiting reader flushes what it needs
	}
	s.m.appended.Inc()
	s.m.appendedBytes.Add(len(rec))
	return nil
}

// makeRoomLocked frees space by dropping the oldest segment, or waits until
// space may have been freed.
func (s *Spool) makeRoomLocked() error {
	if s.dropUnclaimedLocked() { // claims.go: unclaimed backlogs go first
		return nil
	}
	if s.opts.WhenFull == WhenFullDropOldest {
		if !s.dropOldestLocked() {
			return ErrFull
		}
		return nil
	}
	start := time.Now()
	s.sample.Warn().Int64("bytes", s.bytes).Int64("max_size", s.opts.MaxSize).
		Msg("spool full: appends blocked until outputs acknowledge")
	s.waiters++
	s.space.Wait()
	s.waiters--
	s.m.blocked.Add(time.Since(start).Seconds())
	return nil
}

// dropOldestLocked deletes the oldest sealed segment, counting the records
// some consumer had not acknowledged. It returns false if there is none.
func (s *Spool) dropOldestLocked() bool {
	if len(s.segs) < 2 {
		return false
	}
	seg := s.segs[0]
	acked := seg.records
	for _, c := range s.cons {
		switch {
		case c.ack.seg == seg.id:
			acked = min(acked, c.ack.n)
		case c.ack.seg < seg.id:
			acked = 0
		}
	}
	s.popOldestLocked()
	next := s.segs[0]
	for _, c := range s.cons {
		if c.ack.seg <= seg.id {
			c.ack = Pos{seg: next.id, off: segHeaderSize}
		}
	}
	dropped := seg.records - acked
	s.m.dropped.AddInt64(dropped)
	s.log.Warn().Str("segment", filepath.Base(s.path(seg.id))).Int64("records", dropped).
		Int64("bytes", seg.size).Msg("spool full: dropped oldest segment")
	s.removeFile(seg.id)
	return true
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

func (s *Spool) removeFile(id uint64) {
	if err := s.fs.Remove(s.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.m.writeErrors.Inc()
		s.log.Error().Err(err).Msg("cannot remove spool segment")
	}
}

// rollLocked seals the active segment and starts a new one.
func (s *Spool) rollLocked(ts int64) error {
	if err := s.flushLocked(); err != nil {
		return err
	}
	id := s.active.id + 1
	f, err := s.fs.OpenFile(s.path(id), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		s.m.writeErrors.Inc()
		return fmt.Errorf("cannot create spool segment: %w", err)
	}
	old := s.active
	old.sealed = true
	// The next commit fsyncs and closes it (one may be syncing it now).
	s.unsynced = append(s.unsynced, old)
	seg := &segment{id: id, created: ts, size: segHeaderSize, f: f}
	s.segs = append(s.segs, seg)
	s.active = seg
	s.buf = appendSegHeader(s.buf, id, ts)
	s.written = 0
	s.bytes += segHeaderSize
	s.activeDirty, s.dirDirty = true, true
	s.collectAckedLocked()
	s.wakeLocked()
	return nil
}

// flushLocked writes the buffer to the active segment. After a partial or
// failed write the rest stays buffered, to be retried at the same offset.
func (s *Spool) flushLocked() error {
	if len(s.buf) == 0 {
		return nil
	}
	n, err := s.active.f.WriteAt(s.buf, s.written)
	s.written += int64(n)
	if err == nil && n < len(s.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		s.buf = s.buf[:copy(s.buf, s.buf[n:])]
		s.werr = err
		s.m.writeErrors.Inc()
		s.sample.Error().Err(err).Int("buffered_records", s.bufRecs).Msg("cannot write spool segment")
		return fmt.Errorf("cannot write spool segment: %w", err)
	}
	s.buf, s.bufRecs, s.werr = s.buf[:0], 0, nil
	s.active.visible = s.written
	s.wakeLocked()
	return nil
}

// wakeLocked wakes readers waiting for data or for Close.
func (s *Spool) wakeLocked() {
	if s.notifyTaken {
		close(s.notify)
		s.notify, s.notifyTaken = make(chan struct{}), false
	}
}

// Close stops appends (blocked ones return ErrClosed) and readers, writes
// and fsyncs what is buffered, persists the cursors and releases the
// directory. Records whose write still fails are lost: counted as dropped
// and reported in the error.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.space.Broadcast()
	s.wakeLocked()
	s.mu.Unlock()

	close(s.stop)
	<-s.done
	err := s.commit()

	s.mu.Lock()
	if n := s.bufRecs; n > 0 {
		s.m.dropped.Add(n)
		s.log.Error().Int("records", n).Msg("spool closed with unwritable records: lost")
		s.buf, s.bufRecs = s.buf[:0], 0
	}
	readers := make([]*Reader, 0, len(s.cons))
	for _, c := range s.cons {
		if c.r != nil {
			readers = append(readers, c.r)
		}
	}
	for _, seg := range append(s.unsynced, s.active) {
		if seg.f != nil {
			if cerr := seg.f.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("cannot close spool segment: %w", cerr)
			}
			seg.f = nil
		}
	}
	s.unsynced = nil
	s.mu.Unlock()

	for _, r := range readers {
		r.shut()
	}
	s.m.unregister()
	if cerr := s.marks.close(); cerr != nil && err == nil {
		err = fmt.Errorf("cannot close spool marks: %w", cerr)
	}
	if s.lockF != nil {
		if cerr := s.lockF.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("cannot release spool lock: %w", cerr)
		}
	}
	return err
}

// Stats is a snapshot of a spool's size.
type Stats struct {
	Bytes     int64         // bytes of all segments
	Segments  int           // segment files, the active one included
	OldestAge time.Duration // age of the oldest record not acknowledged by every consumer
	Blocked   int           // appends waiting for space
}

// Stats returns current figures; safe for concurrent use.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Bytes: s.bytes, Segments: len(s.segs), OldestAge: s.oldestAgeLocked(), Blocked: s.waiters}
}

// oldestAgeLocked approximates from the segment marks (one per second of
// appends) the age of the first record some consumer has not acknowledged.
func (s *Spool) oldestAgeLocked() time.Duration {
	minAck := s.cons[0].ack
	for _, c := range s.cons[1:] {
		if c.ack.Before(minAck) && c.slot >= 0 { // unclaimed ones: dtrelay_spool_unclaimed_records
			minAck = c.ack
		}
	}
	for _, seg := range s.segs {
		if seg.id < minAck.seg || len(seg.marks) == 0 {
			continue
		}
		off := int64(0)
		if seg.id == minAck.seg {
			off = minAck.off
		}
		if off >= seg.size {
			continue
		}
		i := sort.Search(len(seg.marks), func(i int) bool { return seg.marks[i].off > off })
		if i > 0 {
			i--
		}
		return time.Duration(s.opts.now().UnixNano() - seg.marks[i].ts)
	}
	return 0
}
