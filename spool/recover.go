package spool

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// Open opens (creating if needed) the spool in opts.Dir: it takes the
// directory lock, verifies every segment (truncating torn tails, skipping
// corrupt regions, resynchronising past a bad segment header, setting aside
// unreadable files, all counted and logged), positions each consumer after
// its last acknowledgement, from the cursors file or, when later and
// valid, the marks file (claiming renamed and unclaimed
// cursors, see claims.go), counts what will be replayed and redelivered,
// starts a new active segment, persists the cursors, resets the marks and
// starts the group-commit goroutine. Open reads the whole spool, so it
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
	// After the commit: a crash before it leaves the old marks, which
	// count the same redeliveries again rather than none.
	if s.marks, err = createMarks(s.fs, opts.Dir, opts.Consumers, s.epochs[len(s.epochs)-1].first); err != nil {
		s.m.writeErrors.Inc()
		log.Error().Err(err).Msg("cannot reset the spool marks: duplicates after a crash may go uncounted")
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

// loadCursors reads the cursors and marks; lost reports cursors that were
// unreadable (every consumer then replays everything).
func (s *Spool) loadCursors() (st cursorState, found, lost bool) {
	st, found, curErr, marksErr := readState(s.fs, s.opts.Dir)
	if curErr != nil {
		s.m.corrupt.Inc()
		s.log.Error().Err(curErr).Msg("spool cursors unreadable: every consumer replays the whole spool, counted as redelivered")
		return cursorState{}, false, true
	}
	if marksErr != nil {
		s.m.corrupt.Inc()
		s.log.Error().Err(marksErr).Msg("spool marks unreadable: records delivered since the last commit before a crash may be replayed uncounted")
	}
	return st, found, false
}

// readState reads the cursors of dir with each read position raised to
// the consumer's mark, and each consumer's acknowledgement from the marks
// file in markAck (see useMarkAcks).
func readState(fsys fileSystem, dir string) (st cursorState, found bool, curErr, marksErr error) {
	st, found, curErr = readCursors(fsys, dir)
	if curErr != nil {
		return cursorState{}, false, curErr, nil
	}
	var run uint64 // the Open that wrote the cursors: its marks hold acks
	if n := len(st.epochs); n > 0 {
		run = st.epochs[n-1].first
	}
	mk, marksErr := readMarks(fsys, dir, run)
	for i := range st.recs {
		r := &st.recs[i]
		if m, ok := mk.marks[r.name]; ok {
			r.read = maxPos(r.read, m)
		}
		if a, ok := mk.acks[r.name]; ok && r.until == 0 {
			r.markAck = a
		}
	}
	return st, found, nil, marksErr
}

// useMarkAcks makes each saved cursor resume after the later of its
// acknowledgements, persisted and in the marks file. It is called after
// the claims are planned, which look at the persisted state only.
func useMarkAcks(recs []cursorRec) {
	for i := range recs {
		recs[i].ack = maxPos(recs[i].ack, recs[i].markAck)
	}
}

func (s *Spool) recover() error {
	st, found, lost := s.loadCursors()
	ids, maxID, err := s.listSegments()
	if err != nil {
		return err
	}
	// Segments without cursors: removed by hand, the same as unreadable
	// (reported below if they hold records).
	missing := !found && !lost && len(ids) > 0
	lost = lost || missing
	plan := planClaims(st, s.opts.Consumers, s.opts.Rename)
	for old, why := range plan.refused {
		s.log.Error().Str("consumer", old).Str("rename_to", s.opts.Rename[old]).Str("reason", why).
			Msg("spool.rename cannot hand this backlog over; it stays unclaimed")
	}
	useMarkAcks(st.recs)
	saved := make(map[string]*resume, len(st.recs))
	all := make([]*resume, 0, len(st.recs)+len(s.opts.Consumers))
	for _, r := range st.recs {
		rs := &resume{rec: r}
		saved[r.name] = rs
		all = append(all, rs)
	}
	fresh := make(map[string]*resume)
	for _, name := range s.opts.Consumers {
		if plan.own[name] != "" {
			continue
		}
		rs := &resume{rec: cursorRec{name: name}, all: lost}
		if found {
			rs.rec.ack = Pos{seg: math.MaxUint64} // new consumer: starts at the end
			s.log.Info().Str("consumer", name).Msg("new spool consumer starts at the end")
		}
		fresh[name] = rs
		all = append(all, rs)
	}
	w := &window{}
	for _, id := range ids {
		if seg := s.loadSegment(w, id, all); seg != nil {
			s.segs = append(s.segs, seg)
			s.bytes += seg.size
		}
	}
	if missing {
		var n int64
		for _, r := range all {
			n += r.replayed
		}
		if n > 0 {
			s.log.Error().Msg("spool cursors missing: every consumer replays the whole spool, counted as redelivered")
		}
	}
	id := maxID + 1
	if err := s.startActive(id); err != nil {
		return err
	}
	start := Pos{seg: id, off: segHeaderSize}
	epochs := st.epochs
	for i, name := range s.opts.Consumers {
		c, r := &consumer{name: name, slot: i, ack: start}, fresh[name]
		if src := plan.own[name]; src != "" {
			r = saved[src]
			if src != name {
				epochs = renameEpochs(epochs, src, name)
				s.log.Warn().Str("consumer", name).Str("from", src).Int64("records", r.replayed).
					Int64("bytes", r.bytes).Msg("spool.rename: backlog handed over")
			}
		}
		s.resumeAt(c, r, start)
		replayed, redelivered := r.replayed, r.redelivered
		if bl := plan.backlog[name]; bl != "" {
			b := saved[bl]
			epochs = renameEpochs(epochs, bl, name)
			if b.found {
				c.gapFrom, c.gapTo, c.ack = Pos{seg: b.rec.until}, c.ack, b.at
			}
			replayed, redelivered = replayed+b.replayed, redelivered+b.redelivered
			s.log.Warn().Str("consumer", name).Str("from", bl).Int64("records", b.replayed).
				Int64("bytes", b.bytes).Msg("spool.rename: backlog taken over; delivered before this output's own records")
		}
		c.lastRead = c.ack
		s.addConsumer(c)
		s.m.replayed[name].AddInt64(replayed)
		s.m.redelivered[name].AddInt64(redelivered)
		if replayed > 0 {
			ev := s.log.Info()
			if lost {
				ev = s.log.Warn()
			}
			ev.Str("consumer", name).Int64("records", replayed).Int64("redelivered", redelivered).
				Msg("replaying spooled records")
		}
	}
	for _, name := range plan.unclaimed {
		r := saved[name]
		if !r.found {
			s.log.Info().Str("consumer", name).Msg("spool consumer claimed by no output, with nothing pending: forgotten")
			continue
		}
		c := &consumer{name: name, slot: -1, ack: r.at, lastRead: r.at, until: r.rec.until, pending: r.replayed}
		if c.until == 0 {
			c.until = id
		}
		s.addConsumer(c)
		s.log.Error().Str("consumer", name).Int64("records", r.replayed).Int64("bytes", r.bytes).
			Msg("spool consumer claimed by no output: its backlog is kept, but dropped when the spool needs the space; " +
				"if the output was renamed, set spool.rename: {OLD: NEW} to deliver it")
	}
	s.epochs = append(slices.Clip(epochs), epoch{first: id, names: slices.Clone(s.opts.Consumers)})
	s.mu.Lock()
	s.collectAckedLocked()
	s.firstSeg.Store(s.segs[0].id)
	s.mu.Unlock()
	return nil
}

// resumeAt positions c from r: at its first pending record (else at
// start), with its gap resolved to the first own pending record.
func (s *Spool) resumeAt(c *consumer, r *resume, start Pos) {
	if r.found {
		c.ack = r.at
	}
	if r.rec.gapped() {
		to := start
		if r.gapFound {
			to = r.gapAt
		}
		if c.ack.Before(to) && c.ack.Before(r.rec.gapFrom) {
			c.gapFrom, c.gapTo = r.rec.gapFrom, to
		} else if c.ack.Before(to) {
			c.ack = to
		}
	}
}

func (s *Spool) addConsumer(c *consumer) {
	s.cons = append(s.cons, c)
	s.byName[c.name] = c
}

// startActive creates the active segment id.
func (s *Spool) startActive(id uint64) error {
	now := s.opts.now().UnixNano()
	f, err := s.fs.OpenFile(s.path(id), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return fmt.Errorf("cannot create spool segment: %w", err)
	}
	s.active = &segment{id: id, created: now, size: segHeaderSize, f: f}
	s.segs = append(s.segs, s.active)
	s.buf = appendSegHeader(s.buf, id, now)
	s.bytes += segHeaderSize
	s.activeDirty, s.dirDirty = true, true
	return nil
}

// loadSegment verifies one segment file and returns its state, or nil if it
// holds nothing usable (the file is then removed or set aside).
func (s *Spool) loadSegment(w *window, id uint64, rs []*resume) *segment {
	name := s.path(id)
	log := s.log.With().Str("segment", filepath.Base(name)).Logger()
	ss, f := scanFile(s.fs, w, name, id, os.O_RDWR, func(idx, start, end int64) {
		for _, r := range rs {
			r.visit(id, idx, start, end)
		}
	})
	if f != nil {
		defer f.Close()
	}
	switch {
	case ss.unreadable != nil:
		s.m.corrupt.Inc()
		log.Error().Err(ss.unreadable).Msg("cannot open spool segment: skipped")
		return nil
	case ss.torn:
		// Created but never written, or its header torn by a crash.
		if ss.size > 0 {
			s.m.corrupt.Inc()
			s.m.corruptBytes.AddInt64(ss.size)
			log.Warn().Err(ss.readErr).Int64("bytes", ss.size).Msg("torn spool segment header: removed")
		}
		_ = s.fs.Remove(name)
		return nil
	case ss.setAside != nil:
		s.m.corrupt.Inc()
		s.m.corruptBytes.AddInt64(ss.size)
		if rerr := s.fs.Rename(name, name+".corrupt"); rerr != nil {
			log.Error().Err(rerr).Msg("cannot set corrupt spool segment aside")
		}
		log.Error().Err(ss.setAside).Msg("spool segment unreadable: set aside as .corrupt")
		return nil
	}
	sc := ss.sc
	regions, bytes := ss.corruptRegions()
	s.m.corrupt.Add(regions)
	s.m.corruptBytes.AddInt64(bytes)
	if ss.badHeader != nil {
		// The frames carry their own checksums: keep them, and rewrite the
		// header so that the next Open does not count it again.
		_, err := f.WriteAt(appendSegHeader(nil, id, ss.created), 0)
		log.Warn().Err(ss.badHeader).AnErr("rewrite_error", err).Int64("records", sc.records).
			Msg("corrupt spool segment header: records recovered by their frames, header rewritten")
	}
	if sc.corrupt > 0 {
		log.Warn().Err(ss.readErr).Int("regions", sc.corrupt).Int64("bytes", sc.corruptBytes).
			Int64("torn_tail", ss.size-sc.end).Int64("records", sc.records).Msg("corrupt spool data skipped")
	}
	if sc.end < ss.size && ss.readErr == nil {
		if err := f.Truncate(sc.end); err != nil {
			log.Error().Err(err).Msg("cannot truncate spool segment")
		}
	}
	return &segment{
		id: id, created: ss.created, size: sc.end, visible: sc.end, sealed: true,
		records: sc.records, marks: sc.marks, skips: sc.skips,
	}
}
