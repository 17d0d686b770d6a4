package poller

// seenSet is the de-duplication memory of one endpoint: the keys of the
// events already handled (forwarded and confirmed, or dropped and counted),
// each with the end (Unix ms) of the latest window that returned it. A key
// whose window ended before the next window starts cannot come back and is
// forgotten (expire); at most max keys are held, the oldest forgotten
// first. Not safe for concurrent use.
type seenSet struct {
	ends  map[string]int64
	order []seenEntry // by end, ascending; may hold stale entries
	head  int         // order[:head] is consumed
	max   int
}

type seenEntry struct {
	K string `json:"k"`
	E int64  `json:"e"`
}

func newSeenSet(max int) *seenSet {
	return &seenSet{ends: make(map[string]int64), max: max}
}

// has reports whether key was handled.
func (s *seenSet) has(key string) bool {
	_, ok := s.ends[key]
	return ok
}

// add records key as returned by a window ending at end (not less than
// any end added before). It returns the number of keys forgotten to stay
// within max.
func (s *seenSet) add(key string, end int64) (evicted int) {
	if e, ok := s.ends[key]; ok && e == end {
		return 0
	}
	s.ends[key] = end
	s.order = append(s.order, seenEntry{key, end})
	for len(s.ends) > s.max && s.head < len(s.order) {
		if s.pop() {
			evicted++
		}
	}
	return evicted
}

// expire forgets the keys whose window ended before start.
func (s *seenSet) expire(start int64) {
	for s.head < len(s.order) && s.order[s.head].E < start {
		s.pop()
	}
	s.compact()
}

// pop consumes the oldest entry, forgetting its key unless a later window
// returned it again. It reports whether a key was forgotten.
func (s *seenSet) pop() bool {
	e := s.order[s.head]
	s.order[s.head] = seenEntry{}
	s.head++
	if end, ok := s.ends[e.K]; ok && end == e.E {
		delete(s.ends, e.K)
		return true
	}
	return false
}

// compact drops consumed and stale entries once they are the majority.
func (s *seenSet) compact() {
	if s.head < 1024 && s.head*2 < len(s.order) {
		return
	}
	live := s.order[:0]
	for _, e := range s.order[s.head:] {
		if s.ends[e.K] == e.E {
			live = append(live, e)
		}
	}
	clear(s.order[len(live):])
	s.order, s.head = live, 0
}

// entries returns the live entries, oldest first (for saving).
func (s *seenSet) entries() []seenEntry {
	out := make([]seenEntry, 0, len(s.ends))
	for _, e := range s.order[s.head:] {
		if s.ends[e.K] == e.E {
			out = append(out, e)
		}
	}
	return out
}

func (s *seenSet) len() int { return len(s.ends) }
