package spool

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// Open opens (creating if needed) the spool in opts.Dir: it takes the
// directory lock, verifies every segment (truncating torn tails, skipping
// corrupt regions, setting aside unreadable files, all counted and logged),
// positions each consumer after its last persisted acknowledgement, counts
// what will be replayed, starts a new active segment, persists the cursors
// and starts the group-commit goroutine. Open reads the whole spool, so it
// takes time proportional to its size.
func Open(opts Options) (*Spool, error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	if err := opts.fs.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("cannot create spool directory: %w", err)
	}
	lockF, err := lockDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	log := opts.Log.With().Str("spool", opts.Dir).Logger()
	s := &Spool{
		opts:   opts,
		fs:     opts.fs,
		log:    log,
		sample: log.Sample(&zerolog.BurstSampler{Burst: 3, Period: 10 * time.Second}),
		maxRec: opts.maxRecord(),
		m:      newMetrics(opts.Metrics, opts.Consumers),
		lockF:  lockF,
		notify: make(chan struct{}),
		byName: make(map[string]*consumer, len(opts.Consumers)),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	s.space = sync.NewCond(&s.mu)
	s.segLimit = opts.SegmentSize
	if err := s.recover(); err != nil {
		s.abandon()
		return nil, err
	}
	if err := s.commit(); err != nil {
		if !isNoSpace(err) {
			s.abandon()
			return nil, fmt.Errorf("cannot initialise spool: %w", err)
		}
		// A full disk: the next commits retry; appends wait or drop.
		s.log.Warn().Err(err).Msg("spool disk full at start: cursors not persisted yet")
	}
	s.m.registerGauges(s)
	go s.loop()
	return s, nil
}

// lockDir takes an exclusive flock on dir/lock, held until the file closes.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("cannot open spool lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("cannot lock spool directory: %w", err)
	}
	return f, nil
}

// abandon releases what a failed Open holds.
func (s *Spool) abandon() {
	for _, seg := range append(s.unsynced, s.segs...) {
		if seg.f != nil {
			_ = seg.f.Close()
			seg.f = nil
		}
	}
	_ = s.lockF.Close()
}

// resume tracks, during the scan, where one consumer restarts.
type resume struct {
	ack, read   Pos  // as persisted
	found       bool // a pending record was met
	at          Pos  // the first pending record: seg, start offset, index
	replayed    int64
	redelivered int64
}

func (r *resume) visit(id uint64, idx, start, end int64) {
	if (Pos{seg: id, off: start}).Before(r.ack) {
		return
	}
	if !r.found {
		r.found, r.at = true, Pos{seg: id, off: start, n: idx}
	}
	r.replayed++
	if !r.read.Before(Pos{seg: id, off: end}) {
		r.redelivered++
	}
}

func (s *Spool) recover() error {
	saved, err := readCursors(s.fs, s.opts.Dir)
	if err != nil {
		s.m.corrupt.Inc()
		s.log.Error().Err(err).Msg("spool cursors unreadable: every consumer replays the whole spool")
		saved = nil
	}
	ids, maxID, err := s.listSegments()
	if err != nil {
		return err
	}
	if maxID >= math.MaxUint64/2 {
		return fmt.Errorf("spool: segment ids exhausted in %s", s.opts.Dir)
	}
	rs := make([]*resume, len(s.opts.Consumers))
	for i, name := range s.opts.Consumers {
		r := &resume{}
		if cr, ok := saved[name]; ok {
			r.ack, r.read = cr.ack, cr.read
		} else if saved != nil {
			r.ack = Pos{seg: math.MaxUint64} // new consumer: starts at the end
			s.log.Info().Str("consumer", name).Msg("new spool consumer starts at the end")
		}
		rs[i] = r
	}
	w := &window{}
	for _, id := range ids {
		if seg := s.loadSegment(w, id, rs); seg != nil {
			s.segs = append(s.segs, seg)
			s.bytes += seg.size
		}
	}

	now := s.opts.now().UnixNano()
	id := maxID + 1
	f, err := s.fs.OpenFile(s.path(id), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return fmt.Errorf("cannot create spool segment: %w", err)
	}
	s.active = &segment{id: id, created: now, size: segHeaderSize, f: f}
	s.segs = append(s.segs, s.active)
	s.buf = appendSegHeader(s.buf, id, now)
	s.bytes += segHeaderSize
	s.activeDirty, s.dirDirty = true, true

	for i, name := range s.opts.Consumers {
		r, c := rs[i], &consumer{name: name}
		c.ack = Pos{seg: id, off: segHeaderSize}
		if r.found {
			c.ack = r.at
		}
		c.lastRead = c.ack
		s.cons = append(s.cons, c)
		s.byName[name] = c
		s.m.replayed[name].AddInt64(r.replayed)
		s.m.redelivered[name].AddInt64(r.redelivered)
		if r.replayed > 0 {
			s.log.Info().Str("consumer", name).Int64("records", r.replayed).
				Int64("redelivered", r.redelivered).Msg("replaying spooled records")
		}
	}
	s.mu.Lock()
	s.collectAckedLocked()
	s.firstSeg.Store(s.segs[0].id)
	s.mu.Unlock()
	return nil
}

// listSegments returns the ids of the segment files in ascending order and
// the highest id in use, set-aside files included.
func (s *Spool) listSegments() (ids []uint64, maxID uint64, err error) {
	entries, err := s.fs.ReadDir(s.opts.Dir)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot list spool directory: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if name == cursorsTemp {
			_ = s.fs.Remove(filepath.Join(s.opts.Dir, name)) // an interrupted cursor write
			continue
		}
		base, set := strings.CutSuffix(name, ".seg.corrupt")
		if !set {
			var ok bool
			if base, ok = strings.CutSuffix(name, ".seg"); !ok {
				continue
			}
		}
		if len(base) != 16 {
			continue
		}
		id, err := strconv.ParseUint(base, 16, 64)
		if err != nil {
			continue
		}
		maxID = max(maxID, id)
		if !set {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, maxID, nil
}

// loadSegment verifies one segment file and returns its state, or nil if it
// holds nothing usable (the file is then removed or set aside).
func (s *Spool) loadSegment(w *window, id uint64, rs []*resume) *segment {
	name := s.path(id)
	log := s.log.With().Str("segment", filepath.Base(name)).Logger()
	f, err := s.fs.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		s.m.corrupt.Inc()
		log.Error().Err(err).Msg("cannot open spool segment: skipped")
		return nil
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		s.m.corrupt.Inc()
		log.Error().Err(err).Msg("cannot read spool segment: skipped")
		return nil
	}
	size := st.Size()
	hdr := make([]byte, segHeaderSize)
	if size >= segHeaderSize {
		_, err = f.ReadAt(hdr, 0)
	}
	if size < segHeaderSize || err != nil {
		// Created but never written, or its header torn by a crash.
		if size > 0 {
			s.m.corrupt.Inc()
			s.m.corruptBytes.AddInt64(size)
			log.Warn().Err(err).Int64("bytes", size).Msg("torn spool segment header: removed")
		}
		_ = s.fs.Remove(name)
		return nil
	}
	hid, created, err := parseSegHeader(hdr)
	if err == nil && hid != id {
		err = fmt.Errorf("%w: it names segment %016x", errBadHeader, hid)
	}
	if err != nil {
		s.m.corrupt.Inc()
		s.m.corruptBytes.AddInt64(size)
		if rerr := s.fs.Rename(name, name+".corrupt"); rerr != nil {
			log.Error().Err(rerr).Msg("cannot set corrupt spool segment aside")
		}
		log.Error().Err(err).Msg("spool segment unreadable: set aside as .corrupt")
		return nil
	}
	w.reset(f)
	sc, rerr := scanSegment(w, size, created, MaxRecordSize, func(idx, start, end int64) {
		for _, r := range rs {
			r.visit(id, idx, start, end)
		}
	})
	w.reset(nil)
	if sc.corrupt > 0 {
		s.m.corrupt.Add(sc.corrupt)
		s.m.corruptBytes.AddInt64(sc.corruptBytes)
		log.Warn().Err(rerr).Int("regions", sc.corrupt).Int64("bytes", sc.corruptBytes).
			Int64("torn_tail", size-sc.end).Int64("records", sc.records).Msg("corrupt spool data skipped")
	}
	if sc.end < size && rerr == nil {
		if err := f.Truncate(sc.end); err != nil {
			log.Error().Err(err).Msg("cannot truncate spool segment")
		}
	}
	return &segment{
		id: id, created: created, size: sc.end, visible: sc.end, sealed: true,
		records: sc.records, marks: sc.marks, skips: sc.skips,
	}
}
