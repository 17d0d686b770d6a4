package spool

import (
	"errors"
	"fmt"
	"time"
)

// Sync writes buffered records, fsyncs every segment written since the last
// commit and persists the cursors, now. It returns the first errors met.
func (s *Spool) Sync() error { return s.commit() }

func (s *Spool) commit() error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()

	s.mu.Lock()
	var errs []error
	flushErr := s.flushLocked() // counted by flushLocked
	files := append([]*segment(nil), s.unsynced...)
	active := s.active
	syncActive := s.activeDirty && s.werr == nil
	if syncActive {
		s.activeDirty = false
	}
	syncDir := s.dirDirty
	s.dirDirty = false
	cursors := s.cursorSnapshotLocked()
	s.mu.Unlock()

	var synced []*segment
	for _, seg := range files {
		if err := seg.f.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("cannot sync spool segment: %w", err))
			continue
		}
		synced = append(synced, seg)
	}
	var activeErr error
	if syncActive {
		if activeErr = active.f.Sync(); activeErr != nil {
			errs = append(errs, fmt.Errorf("cannot sync spool segment: %w", activeErr))
		}
	}
	var dirErr error
	if syncDir {
		if dirErr = s.fs.SyncDir(s.opts.Dir); dirErr != nil {
			errs = append(errs, fmt.Errorf("cannot sync spool directory: %w", dirErr))
		}
	}
	var curErr error
	if cursors != nil {
		if curErr = writeCursors(s.fs, s.opts.Dir, cursors); curErr != nil {
			errs = append(errs, curErr)
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.afterCommitLocked(synced, active, activeErr, dirErr, cursors, curErr)
	if len(errs) > 0 {
		s.m.writeErrors.Add(len(errs))
	}
	return errors.Join(append(errs, flushErr)...)
}

func (s *Spool) afterCommitLocked(synced []*segment, active *segment, activeErr, dirErr error, cursors *cursorState, curErr error) {
	for _, seg := range synced {
		if err := seg.f.Close(); err != nil {
			s.log.Error().Err(err).Msg("cannot close spool segment")
		}
		seg.f = nil
		for i, u := range s.unsynced {
			if u == seg {
				s.unsynced = append(s.unsynced[:i], s.unsynced[i+1:]...)
				break
			}
		}
	}
	if activeErr != nil {
		if active == s.active {
			s.activeDirty = true
		} else if !containsSeg(s.unsynced, active) {
			s.unsynced = append(s.unsynced, active)
		}
	}
	if dirErr != nil {
		s.dirDirty = true
	}
	if cursors != nil && curErr == nil {
		for _, cr := range cursors.recs {
			if c := s.byName[cr.name]; c != nil {
				c.persistedAck, c.persistedRead = cr.ack, cr.read
			}
		}
	}
}

func containsSeg(list []*segment, seg *segment) bool {
	for _, u := range list {
		if u == seg {
			return true
		}
	}
	return false
}

// loop is the group-commit goroutine.
func (s *Spool) loop() {
	defer close(s.done)
	t := time.NewTicker(s.opts.FsyncInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.commit(); err != nil {
				s.sample.Error().Err(err).Msg("spool commit failed")
			}
		}
	}
}
