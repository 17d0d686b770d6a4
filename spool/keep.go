package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// keptSuffix names the second name a kept segment file gets (Reader.Keep).
const keptSuffix = ".kept"

// ErrGone is returned by Reader.Keep for a record whose segment is no
// longer in the spool (deleted by drop_oldest, or every consumer
// acknowledged it).
var ErrGone = errors.New("spool: segment already deleted")

// Keep keeps the segment file that holds the record at pos (as returned by
// Next) on disk after the spool deletes it. A consumer that cannot use a
// record it read (one written by a newer build, in a format it does not
// know) calls it before acknowledging the record, so that the record is
// skipped but not lost with its segment.
//
// The file gets a second name, "%016x.seg.kept": a hard link, so keeping
// costs no copy and no space until the spool deletes the segment. From then
// on the kept file is outside the spool: never read, deleted or counted in
// MaxSize (an operator removes it, or replays it: see the README), listed
// by Inspect as set aside, and its id is never reused. It holds the whole
// segment, the records the consumer did deliver included; records appended
// to the segment after Keep are in it too.
//
// Keep returns the name of the kept file. Keeping a segment again is a
// no-op, also across restarts (the link exists). Safe for concurrent use;
// the first Keep of a segment logs it.
func (r *Reader) Keep(pos Pos) (string, error) {
	s := r.s
	name := s.path(pos.seg) + keptSuffix
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return name, ErrClosed
	}
	seg := s.segLocked(pos.seg)
	if seg == nil {
		return name, ErrGone
	}
	if seg.kept {
		return name, nil
	}
	err := s.fs.Link(s.path(pos.seg), name)
	if err != nil && !errors.Is(err, os.ErrExist) {
		s.m.writeErrors.Inc()
		return name, fmt.Errorf("cannot keep spool segment: %w", err)
	}
	seg.kept = true
	if err == nil {
		s.dirDirty = true
		s.log.Warn().Str("segment", filepath.Base(name)).Str("consumer", r.c.name).
			Msg("spool segment kept: it holds a record its consumer cannot read; the spool no longer manages this file")
	}
	return name, nil
}
