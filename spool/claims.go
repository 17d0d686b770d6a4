package spool

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sort"
)

// A spool keeps a cursor per consumer name. When the configuration changes,
// the saved cursors are claimed by this Open's consumers:
//
//   - a consumer whose name has a saved cursor resumes it;
//   - Options.Rename {old: new} hands old's cursor to new: new resumes
//     where old stood. If new has a cursor of its own (it ran under its new
//     name while old's backlog was kept unclaimed), it takes the backlog
//     over as well: it reads old's backlog first, then skips to its own
//     records (the gap of cursorRec);
//   - a saved cursor no consumer claims is kept "unclaimed", with the
//     records it had not acknowledged (up to the segment until, where this
//     Open starts), so that a later rename can still deliver them. Such a
//     backlog counts against MaxSize, and is dropped (counted, logged) when
//     appends need the space.

// claimPlan says how one Open's consumers claim the saved cursors.
type claimPlan struct {
	own       map[string]string // consumer → saved cursor it resumes: its own, or the one renamed to it
	backlog   map[string]string // consumer → saved cursor whose backlog it takes over besides its own
	unclaimed []string          // saved cursors nobody claims, sorted
	refused   map[string]string // old name of Rename → why it does not apply
}

func planClaims(st cursorState, consumers []string, rename map[string]string) claimPlan {
	p := claimPlan{own: map[string]string{}, backlog: map[string]string{}, refused: map[string]string{}}
	saved := make(map[string]*cursorRec, len(st.recs))
	for i := range st.recs {
		saved[st.recs[i].name] = &st.recs[i]
	}
	isConsumer := make(map[string]bool, len(consumers))
	for _, c := range consumers {
		isConsumer[c] = true
		if saved[c] != nil {
			p.own[c] = c
		}
	}
	olds := make([]string, 0, len(rename))
	for old := range rename {
		olds = append(olds, old)
	}
	sort.Strings(olds)
	taken := map[string]bool{}
	for _, old := range olds {
		nw, so := rename[old], saved[old]
		switch {
		case so == nil: // nothing to hand over (done by an earlier start)
		case isConsumer[old]:
			p.refused[old] = fmt.Sprintf("%q is still an output", old)
		case !isConsumer[nw]:
			p.refused[old] = fmt.Sprintf("%q is not an output", nw)
		case p.own[nw] == "":
			p.own[nw], taken[old] = old, true
		case p.own[nw] != nw || p.backlog[nw] != "":
			p.refused[old] = fmt.Sprintf("output %q already takes over another backlog", nw)
		case so.until == 0 || coexisted(st.epochs, old, nw) || saved[nw].ack.Before(Pos{seg: so.until}):
			p.refused[old] = fmt.Sprintf("%q and %q were outputs of the same run: their records cannot be told apart", old, nw)
		case saved[nw].gapped():
			p.refused[old] = fmt.Sprintf("output %q is still delivering a backlog it took over; restart once it has", nw)
		default:
			p.backlog[nw], taken[old] = old, true
		}
	}
	for _, r := range st.recs {
		if !isConsumer[r.name] && !taken[r.name] {
			p.unclaimed = append(p.unclaimed, r.name)
		}
	}
	sort.Strings(p.unclaimed)
	return p
}

// coexisted reports whether a and b were consumers of one Open.
func coexisted(epochs []epoch, a, b string) bool {
	for _, e := range epochs {
		if slices.Contains(e.names, a) && slices.Contains(e.names, b) {
			return true
		}
	}
	return false
}

// renameEpochs returns epochs with old renamed to nw. A stale entry nw (a
// consumer of that name whose cursor is gone) is blanked first.
func renameEpochs(epochs []epoch, old, nw string) []epoch {
	out := make([]epoch, len(epochs))
	for i, e := range epochs {
		names := slices.Clone(e.names)
		if slices.Contains(names, old) {
			for j, n := range names {
				switch n {
				case nw:
					names[j] = ""
				case old:
					names[j] = nw
				}
			}
		}
		out[i] = epoch{first: e.first, names: names}
	}
	return out
}

// resume tracks, during the scan, where one saved cursor restarts and what
// it will replay.
type resume struct {
	rec cursorRec // as persisted; read includes the mark
	// all: every replayed record may be a duplicate (the cursors were lost).
	all         bool
	found       bool
	at          Pos // the first pending record: seg, start offset, index
	gapFound    bool
	gapAt       Pos // the first pending record at or after rec.gapTo
	replayed    int64
	redelivered int64
	bytes       int64 // frames of the pending records
}

// pending reports whether the record of segment id at [start, end) is one
// this cursor has not acknowledged.
func (r *resume) pending(id uint64, start int64) bool {
	p := Pos{seg: id, off: start}
	switch {
	case p.Before(r.rec.ack):
		return false
	case r.rec.until != 0 && id >= r.rec.until:
		return false
	case r.rec.gapped() && !p.Before(r.rec.gapFrom) && p.Before(r.rec.gapTo):
		return false
	}
	return true
}

func (r *resume) visit(id uint64, idx, start, end int64) {
	if !r.pending(id, start) {
		return
	}
	at := Pos{seg: id, off: start, n: idx}
	if !r.found {
		r.found, r.at = true, at
	}
	if r.rec.gapped() && !r.gapFound && !at.Before(r.rec.gapTo) {
		r.gapFound, r.gapAt = true, at
	}
	r.replayed++
	r.bytes += end - start
	if r.all || !r.rec.read.Before(Pos{seg: id, off: end}) {
		r.redelivered++
	}
}

// dropUnclaimedLocked frees the oldest segment if only unclaimed consumers
// still need it, counting their records in it as dropped. It reports
// whether it freed one. Unclaimed consumers left with nothing are
// forgotten.
func (s *Spool) dropUnclaimedLocked() bool {
	if len(s.segs) < 2 {
		return false
	}
	seg := s.segs[0]
	held := false
	for _, c := range s.cons {
		if c.needs(seg) {
			if c.slot >= 0 {
				return false
			}
			held = true
		}
	}
	if !held {
		return false
	}
	s.popOldestLocked()
	next := s.segs[0]
	kept := s.cons[:0]
	for _, c := range s.cons {
		if c.slot < 0 && c.needs(seg) {
			lost := seg.records
			if c.ack.seg == seg.id {
				lost -= c.ack.n
			}
			s.m.dropped.AddInt64(lost)
			c.pending -= lost
			s.log.Error().Str("consumer", c.name).Int64("records", lost).Str("segment", filepath.Base(s.path(seg.id))).
				Msg("spool needs the space: dropped records of a consumer no output claims")
			c.ack = Pos{seg: next.id, off: segHeaderSize}
		}
		if c.slot < 0 && c.ack.seg >= c.until {
			delete(s.byName, c.name)
			continue
		}
		kept = append(kept, c)
	}
	for i := len(kept); i < len(s.cons); i++ {
		s.cons[i] = nil
	}
	s.cons = kept
	s.removeFile(seg.id)
	return true
}

// Owner returns the index that this reader's consumer had in
// Options.Consumers when the record at pos was appended (in the Open that
// started its segment, renames applied), or -1 if it was no consumer then.
// known is false for records older than what the spool recorded (written
// by a version that kept no such record, or after lost cursors). A caller
// that keeps per-consumer routing inside its records (an output mask) uses
// it to read records appended under an earlier configuration. Owner is
// called by the goroutine that calls Next.
func (r *Reader) Owner(pos Pos) (idx int, known bool) {
	if pos.seg >= r.ownLo && pos.seg < r.ownHi {
		return r.ownIdx, r.ownKnown
	}
	ep := r.s.epochs
	i := sort.Search(len(ep), func(i int) bool { return ep[i].first > pos.seg }) - 1
	r.ownLo, r.ownHi, r.ownIdx, r.ownKnown = 0, math.MaxUint64, 0, false
	if i+1 < len(ep) {
		r.ownHi = ep[i+1].first
	}
	if i >= 0 {
		r.ownLo, r.ownIdx, r.ownKnown = ep[i].first, slices.Index(ep[i].names, r.c.name), true
	}
	return r.ownIdx, r.ownKnown
}

// unclaimedRecords returns the records kept for consumers no output claims.
func (s *Spool) unclaimedRecords() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, c := range s.cons {
		if c.slot < 0 {
			n += c.pending
		}
	}
	return n
}
