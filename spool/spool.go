package spool

import (
	"encoding/binary"
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

	mu    sync.Mutex
	space *sync.Cond // broadcast when space may have been freed and on Close
	// closed: Append fails with ErrClosed; noWait: Appends that would
	// wait for space fail with ErrFull instead (StopWaiting).
	closed, noWait bool
	segs           []*segment // by id; the last one is active
	active         *segment
	// buf holds what Append has framed but not yet written to active: the
	// bytes from file offset written on, the frames starting at bufStart.
	// Between calls it holds at most a new segment's header, which is
	// written with the first records.
	buf      []byte
	bufRecs  int
	bufStart int64
	written  int64 // bytes of active written to its file
	bytes    int64 // sum of segment sizes, the pending header included
	segLimit int64 // size at which active is sealed; lowered when the disk fills
	waiters  int   // Appends blocked on space
	// blocked mirrors waiters for Blocked, which takes no lock.
	blocked atomic.Int32
	// unsynced are sealed segments written since the last commit; their
	// files stay open until fsynced or deleted.
	unsynced    []*segment
	activeDirty bool
	dirDirty    bool
	notify      chan struct{} // closed and replaced when readers may progress
	notifyTaken bool          // a reader holds notify: replace it on wake
	cons        []*consumer
	byName      map[string]*consumer
	debts       []debt // of segments drop_oldest deleted (space.go)
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
	size    int64 // header and frames, a pending header included
	visible int64 // bytes readers may read: written, frame aligned
	sealed  bool
	records int64
	marks   []mark
	skips   []skip
	f       file // writer's handle (active or unsynced), else nil
	kept    bool // has a second name (Reader.Keep)
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
	held           Pos   // the consumer holds every record up to here (Reader.Hold)
	// ackMu serialises the writes of the consumer's ack slot (marks.go),
	// and guards what follows; not Spool.mu.
	ackMu      sync.Mutex
	ackWritten Pos
	ackBuf     [markSlotSize]byte
}

func (s *Spool) path(id uint64) string {
	return filepath.Join(s.opts.Dir, fmt.Sprintf("%016x.seg", id))
}

// Append copies records into the spool and writes them to the active
// segment file with one write(2) per call (more only when a segment fills),
// so a process crash loses nothing Append accepted; they are durable against
// power loss after the next commit, at most FsyncInterval later. It returns
// the number of records accepted, len(recs) unless err is non-nil; the
// records before the failing one are accepted, the others are not stored.
//
// When the spool is full (MaxSize, or no space left on the disk), Append
// waits (WhenFullBlock) until acknowledgements free space, space frees on
// the disk, StopWaiting or Close; or it drops the oldest segment
// (WhenFullDropOldest). A record larger than the segment payload limit is
// refused with ErrTooLarge and counted (it can never fit: do not retry it);
// another write error is returned wrapped and counted.
func (s *Spool) Append(recs ...[]byte) (int, error) {
	_, n, err := s.AppendPos(recs...)
	return n, err
}

// AppendPos is Append that also returns the position of the last record
// it appended (meaningful when n > 0). A consumer that receives records by
// other means than its Reader (an in-memory fast path) acknowledges them
// with Reader.Skip at such positions.
func (s *Spool) AppendPos(recs ...[]byte) (last Pos, n int, err error) {
	ts := s.opts.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	last, n, err = s.appendLocked(recs, ts)
	if n > 0 {
		bytes := 0
		for _, rec := range recs[:n] {
			bytes += len(rec)
		}
		s.m.appended.Add(n)
		s.m.appendedBytes.Add(bytes)
	}
	return last, n, err
}

// stopReason says why bufferLocked stopped framing records.
type stopReason int

const (
	stopDone     stopReason = iota // every record is framed
	stopRoll                       // the next record needs a new segment
	stopFull                       // the next record exceeds MaxSize
	stopTooLarge                   // the next record can never fit
)

// appendLocked frames records and writes them, handling full segments,
// a full spool and a full disk on the way.
func (s *Spool) appendLocked(recs [][]byte, ts int64) (last Pos, n int, err error) {
	for n < len(recs) {
		if s.closed {
			return last, n, ErrClosed
		}
		why := s.bufferLocked(recs[n:], ts)
		k, werr := s.flushLocked()
		if k > 0 {
			n += k
			last = Pos{seg: s.active.id, off: s.active.size, n: s.active.records}
		}
		if werr != nil {
			if !isNoSpace(werr) {
				return last, n, werr
			}
			if err := s.noSpaceLocked(werr); err != nil {
				return last, n, err
			}
			continue
		}
		switch why {
		case stopRoll:
			if err := s.rollLocked(ts); err != nil {
				if !isNoSpace(err) {
					return last, n, err
				}
				if err := s.noSpaceLocked(err); err != nil {
					return last, n, err
				}
			}
		case stopFull:
			if err := s.makeRoomLocked(); err != nil {
				return last, n, err
			}
		case stopTooLarge:
			s.m.rejectedTooLarge.Inc()
			s.sample.Error().Int("bytes", len(recs[n])).Int("limit", s.maxRec).
				Msg("record larger than a spool segment can hold: refused, counted in dtrelay_spool_rejected_total")
			return last, n, fmt.Errorf("%w: %d bytes (limit %d)", ErrTooLarge, len(recs[n]), s.maxRec)
		}
	}
	return last, n, nil
}

// bufferLocked frames the leading records of recs that fit in the active
// segment and the spool, and says why it stopped.
func (s *Spool) bufferLocked(recs [][]byte, ts int64) stopReason {
	seg := s.active
	for _, rec := range recs {
		if len(rec) > s.maxRec {
			return stopTooLarge
		}
		fl := int64(frameHeaderSize + len(rec))
		roll := seg.records > 0 && seg.size+fl > s.segLimit
		need := fl
		if roll {
			need += segHeaderSize
		}
		if s.bytes+need > s.opts.MaxSize {
			return stopFull
		}
		if roll {
			return stopRoll
		}
		if s.bufRecs == 0 {
			s.bufStart = seg.size
		}
		if len(seg.marks) == 0 || ts-seg.marks[len(seg.marks)-1].ts >= markInterval {
			seg.marks = append(seg.marks, mark{seg.size, ts})
		}
		s.buf = appendFrame(s.buf, rec, ts)
		s.bufRecs++
		seg.size += fl
		seg.records++
		s.bytes += fl
	}
	return stopDone
}

// flushLocked writes the buffered frames to the active segment and returns
// how many were written. After a failed or partial write the frames not
// entirely written are taken back (the caller frames them again later).
func (s *Spool) flushLocked() (int, error) {
	if s.bufRecs == 0 {
		return 0, nil // a pending header waits for the first record
	}
	seg := s.active
	w0 := s.written
	m, err := seg.f.WriteAt(s.buf, w0)
	s.written += int64(m)
	if err == nil && m < len(s.buf) {
		err = io.ErrShortWrite
	}
	if err == nil {
		k := s.bufRecs
		s.buf, s.bufRecs = s.buf[:0], 0
		seg.visible = s.written
		s.activeDirty = true
		s.wakeLocked()
		return k, nil
	}
	k := s.takeBackLocked(w0, m)
	s.m.writeErrors.Inc()
	s.sample.Error().Err(err).Int("records_written", k).Msg("cannot write spool segment")
	return k, fmt.Errorf("cannot write spool segment: %w", err)
}

// takeBackLocked undoes the frames of buf that a write of m bytes at w0
// did not write entirely, and returns how many frames it did write.
func (s *Spool) takeBackLocked(w0 int64, m int) int {
	seg := s.active
	off, k := s.bufStart, 0
	for k < s.bufRecs {
		fl := frameHeaderSize + int64(binary.LittleEndian.Uint32(s.buf[off-w0:]))
		if off+fl > s.written {
			break
		}
		off += fl
		k++
	}
	s.bytes -= seg.size - off
	seg.size = off
	seg.records -= int64(s.bufRecs - k)
	for len(seg.marks) > 0 && seg.marks[len(seg.marks)-1].off >= off {
		seg.marks = seg.marks[:len(seg.marks)-1]
	}
	s.bufRecs = 0
	if keep := off - s.written; keep > 0 { // part of a new segment's header
		s.buf = s.buf[:copy(s.buf, s.buf[m:int64(m)+keep])]
	} else {
		s.buf = s.buf[:0]
		s.written = off
	}
	// Cut a torn frame, and what a failed write may have stored without
	// reporting it (tmpfs can): the file must end where the spool does.
	if err := seg.f.Truncate(s.written); err != nil {
		s.sample.Error().Err(err).Msg("cannot truncate spool segment")
	}
	if k > 0 {
		seg.visible = off
		s.activeDirty = true
		s.wakeLocked()
	}
	return k
}

// rollLocked seals the active segment, whose frames are written, and
// starts a new one. The new file is created empty: its header is written
// with its first records, so rolling needs no disk space.
func (s *Spool) rollLocked(ts int64) error {
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
	s.startSegmentLocked(id, ts, f)
	s.collectAckedLocked()
	s.wakeLocked()
	return nil
}

// startSegmentLocked makes a new, empty segment file the active segment.
func (s *Spool) startSegmentLocked(id uint64, ts int64, f file) {
	seg := &segment{id: id, created: ts, size: segHeaderSize, f: f}
	s.segs = append(s.segs, seg)
	s.active = seg
	s.buf = appendSegHeader(s.buf[:0], id, ts)
	s.bufRecs, s.written = 0, 0
	s.bytes += segHeaderSize
	s.activeDirty, s.dirDirty = true, true
}

// wakeLocked wakes readers waiting for data or for Close.
func (s *Spool) wakeLocked() {
	if s.notifyTaken {
		close(s.notify)
		s.notify, s.notifyTaken = make(chan struct{}), false
	}
}

// Close stops appends (blocked ones return ErrClosed) and readers, fsyncs
// what was written, persists the cursors and releases the directory.
// Records that drop_oldest deleted from disk while a consumer held them in
// memory, and that the consumer did not acknowledge since, are lost: Close
// counts them as dropped and returns a *LostError (joined with any other
// error).
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	// A delivered spool keeps no data, and a full disk gets room for the
	// cursors.
	s.rotateAckedLocked()
	s.space.Broadcast()
	s.wakeLocked()
	s.mu.Unlock()

	close(s.stop)
	<-s.done
	err := s.commit()

	s.mu.Lock()
	if lost := s.settleDebtsLocked(); lost > 0 {
		err = errors.Join(err, &LostError{Records: lost})
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

// Blocked returns the number of Appends waiting for space now: the spool
// is full (max_size, or the disk) and when_full is block, or drop_oldest
// found nothing to drop. Unlike Stats it takes no lock, so a health check
// answers while a write holds the spool; safe for concurrent use.
func (s *Spool) Blocked() int { return int(s.blocked.Load()) }

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
