package poller

// seenSet is the de-duplication memory of one endpoint: the keys of the
// events handled (forwarded, or dropped and counted), each with the end
// (Unix ms) of the window that first forwarded it (first: the event is
// confirmed once the checkpoint reaches it) and of the latest window that
// returned it (last). A key whose last window ended before the next window
// can start cannot come back and is forgotten (expire). The memory is
// bounded by time, never by count: it holds the keys of the windows of the
// last Overlap before the checkpoint and of the windows still in flight,
// and forgetting a key any earlier would forward its event again. Not safe
// for concurrent use.
type seenSet struct {
	keys  map[string]seenVal
	order []seenEntry // by last, ascending; may hold stale entries
	head  int         // order[:head] is consumed
}

type seenVal struct{ first, last int64 }

// seenEntry is a key and the end of the latest window that returned it;
// U marks a key whose event was forwarded but not confirmed (saved state:
// forwarding it again may duplicate it).
type seenEntry struct {
	K string `json:"k"`
	E int64  `json:"e"`
	U bool   `json:"u,omitempty"`
}

func newSeenSet() *seenSet {
	return &seenSet{keys: make(map[string]seenVal)}
}

// has reports whether key was handled.
func (s *seenSet) has(key string) bool {
	_, ok := s.keys[key]
	return ok
}

// add records key as handled by a window ending at end; a key already
// held keeps its first window and moves its last one to end if later.
func (s *seenSet) add(key string, end int64) {
	v, ok := s.keys[key]
	if !ok {
		s.keys[key] = seenVal{first: end, last: end}
		s.order = append(s.order, seenEntry{K: key, E: end})
		return
	}
	if end > v.last {
		v.last = end
		s.keys[key] = v
	}
}

// expire forgets the keys whose latest window ended before start. order
// holds one entry per key, with the end it had when the entry was made:
// an entry found refreshed is moved to the back, so that a refresh costs
// nothing but its map update.
func (s *seenSet) expire(start int64) {
	for n := len(s.order); s.head < n && s.order[s.head].E < start; {
		e := s.order[s.head]
		s.order[s.head] = seenEntry{}
		s.head++
		v, ok := s.keys[e.K]
		switch {
		case !ok: // forgotten by forgetAfter
		case v.last < start:
			delete(s.keys, e.K)
		default:
			s.order = append(s.order, seenEntry{K: e.K, E: v.last})
		}
	}
	s.compact()
}

// forgetAfter forgets the keys first forwarded by a window ending after
// end (their delivery failed: they must be forwarded again) and returns
// them with their latest window's end. Their entries in order are dropped
// when expire reaches them.
func (s *seenSet) forgetAfter(end int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range s.keys {
		if v.first > end {
			out[k] = v.last
			delete(s.keys, k)
		}
	}
	return out
}

// compact moves the live part of order to its start once the consumed part
// is the larger.
func (s *seenSet) compact() {
	if s.head < 1024 || s.head*2 < len(s.order) {
		return
	}
	n := copy(s.order, s.order[s.head:])
	clear(s.order[n:])
	s.order, s.head = s.order[:n], 0
}

// entries returns every key held (for saving); those first forwarded after
// checkpoint are marked unconfirmed.
func (s *seenSet) entries(checkpoint int64) []seenEntry {
	out := make([]seenEntry, 0, len(s.keys))
	for k, v := range s.keys {
		out = append(out, seenEntry{K: k, E: v.last, U: v.first > checkpoint})
	}
	return out
}

func (s *seenSet) len() int { return len(s.keys) }

// maybeSet holds the keys of events that were forwarded without a
// confirmation (before a restart, or by a delivery that failed), with the
// end of the latest window that returned them: forwarding one again may
// duplicate it, which is counted (resent_total). Expired like seenSet.
type maybeSet map[string]int64

func (m maybeSet) expire(start int64) {
	for k, e := range m {
		if e < start {
			delete(m, k)
		}
	}
}
