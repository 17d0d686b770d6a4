package receiver

import (
	"net/netip"
	"sync"
	"sync/atomic"
)

// evictScan is how many of the oldest frameless connections eviction looks
// at for one that is not being read; it bounds the work under slots.mu.
const evictScan = 32

// admitResult is the outcome of slots.open and slots.source.
type admitResult uint8

const (
	admitted admitResult = iota
	refusedFull
	refusedPerSource
)

// The two queues of a slots table; a slot has links for each.
const (
	qFrameless   = iota // no frame completed yet: the eviction candidates
	qHandshaking        // in its PROXY header or TLS handshake: handshake_timeout applies
	nQueues
)

// link is a slot's place in one queue.
type link struct {
	prev, next *slot
	in         bool
}

// slot is one connection's entry in a slots table. The table's mutex guards
// the links, evicted and src; busy and closing are atomics that the
// connection's reader reads without the lock; peer, fd, opened, owner and
// kill are set before open and never change. A slot is owned by its
// connection from open until close.
type slot struct {
	links   [nQueues]link
	evicted bool           // closed to make room; its place was handed on
	src     netip.Addr     // counted in bySource when valid
	peer    netip.AddrPort // the TCP peer
	fd      int            // the socket (gnet path), for unreadBytes; -1 if none
	opened  int64          // UnixNano of the accept
	owner   any            // the server's connection state
	busy    atomic.Bool    // inside a read (possibly blocked in the sink)
	closing atomic.Bool    // a close was asked for (sweep, eviction, partial cap)
	// kill closes the connection. It is called with slots.mu held, while
	// the connection is still registered, so it never hits a reused file
	// descriptor; it must not block.
	kill func()
}

// queue is an intrusive list of slots in accept order, oldest first,
// through their links[k]. Its owner's mutex guards it.
type queue struct {
	head, tail *slot
	k          int
}

func (q *queue) push(sl *slot) {
	l := &sl.links[q.k]
	l.prev, l.next, l.in = q.tail, nil, true
	if q.tail != nil {
		q.tail.links[q.k].next = sl
	} else {
		q.head = sl
	}
	q.tail = sl
}

// remove takes sl out of q if it is in it.
func (q *queue) remove(sl *slot) {
	l := &sl.links[q.k]
	if !l.in {
		return
	}
	if l.prev != nil {
		l.prev.links[q.k].next = l.next
	} else {
		q.head = l.next
	}
	if l.next != nil {
		l.next.links[q.k].prev = l.prev
	} else {
		q.tail = l.prev
	}
	*l = link{}
}

// slots is the connection table of one tcp or tls input: the
// max_connections cap, the per-source counts, and two queues in accept
// order. A connection is "handshaking" from its accept until its PROXY
// header is read and its TLS handshake done (on an input with neither it
// is handshaken at accept): those are the ones handshake_timeout closes
// (the gnet path sweeps them, see expired; the TLS path bounds its
// handshake with a socket deadline and only keeps the mark).
// It is "frameless" until it completes a frame, handshaken or not: those
// are the candidates for eviction; past its handshake only idle_timeout
// closes a connection by time, frameless or not. Its methods are safe for
// concurrent use; each takes mu once per connection event (open,
// handshake done, first frame, close), never per read.
type slots struct {
	max        int  // 0 = no cap
	perSource  int  // 0 = no limit
	handshakes bool // connections start handshaking (proxy_protocol, tls)

	mu          sync.Mutex
	n           int // slots taken: registered connections minus the evicted
	all         map[*slot]struct{}
	bySource    map[netip.Addr]int
	frameless   queue
	handshaking queue
	// evictable reports whether a frameless connection may be evicted;
	// nil means any that is not busy. Called with mu held.
	evictable func(*slot) bool
}

// newSlots returns the table of an input; handshakes tells whether its
// connections have a handshake phase (a PROXY header, a TLS handshake).
func newSlots(maxConns, perSource int, handshakes bool) *slots {
	return &slots{max: maxConns, perSource: perSource, handshakes: handshakes,
		all: map[*slot]struct{}{}, bySource: map[netip.Addr]int{},
		frameless: queue{k: qFrameless}, handshaking: queue{k: qHandshaking}}
}

// open registers sl, frameless and (if the input has a handshake phase)
// handshaking. src is the source address counted against the per-source
// limit; invalid when it is not known yet (PROXY protocol: see source).
// When the table is full, the oldest frameless connection (not being read)
// is closed and its place given to sl: victim is that connection, for the
// caller to count and log.
func (t *slots) open(sl *slot, src netip.Addr) (res admitResult, victim *slot) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if src.IsValid() && t.perSource > 0 && t.bySource[src] >= t.perSource {
		return refusedPerSource, nil
	}
	if t.max > 0 && t.n >= t.max {
		if victim = t.oldestEvictable(); victim == nil {
			return refusedFull, nil
		}
		t.dequeue(victim)
		victim.evicted = true
		victim.closing.Store(true)
		victim.kill()
	} else {
		t.n++
	}
	if src.IsValid() {
		t.bySource[src]++
		sl.src = src
	}
	t.all[sl] = struct{}{}
	t.frameless.push(sl)
	if t.handshakes {
		t.handshaking.push(sl)
	}
	return admitted, victim
}

// source counts an open connection against the per-source limit of src,
// once its source is known (the PROXY header was read).
func (t *slots) source(sl *slot, src netip.Addr) admitResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.perSource > 0 && t.bySource[src] >= t.perSource {
		return refusedPerSource
	}
	t.bySource[src]++
	sl.src = src
	return admitted
}

// handshaken marks sl's handshake done: handshake_timeout no longer
// applies to it. It stays frameless (evictable) until framed. The caller
// calls it once.
func (t *slots) handshaken(sl *slot) {
	t.mu.Lock()
	t.handshaking.remove(sl)
	t.mu.Unlock()
}

// framed marks sl as having completed a frame: it is no longer a
// candidate for eviction. The caller calls it once.
func (t *slots) framed(sl *slot) {
	t.mu.Lock()
	t.dequeue(sl)
	t.mu.Unlock()
}

// close forgets sl and frees its place unless eviction handed it on.
func (t *slots) close(sl *slot) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dequeue(sl)
	delete(t.all, sl)
	if sl.src.IsValid() {
		if k := t.bySource[sl.src] - 1; k > 0 {
			t.bySource[sl.src] = k
		} else {
			delete(t.bySource, sl.src)
		}
	}
	if !sl.evicted {
		t.n--
	}
}

// kill closes sl if it is still registered and not already closing; it
// reports whether it did.
func (t *slots) kill(sl *slot) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.all[sl]; !ok || !sl.closing.CompareAndSwap(false, true) {
		return false
	}
	sl.kill()
	return true
}

// expired calls fn, with mu held, for each handshaking connection opened
// before cutoff (UnixNano), oldest first. fn reports whether it closed the
// connection (it must then have set closing and called kill).
func (t *slots) expired(cutoff int64, fn func(*slot) bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for sl := t.handshaking.head; sl != nil && sl.opened < cutoff; {
		next := sl.links[qHandshaking].next
		if !sl.closing.Load() && fn(sl) {
			t.dequeue(sl)
		}
		sl = next
	}
}

// each calls fn for every registered connection, with mu held.
func (t *slots) each(fn func(*slot)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for sl := range t.all {
		fn(sl)
	}
}

// count returns the number of slots taken.
func (t *slots) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

func (t *slots) oldestEvictable() *slot {
	k := 0
	for sl := t.frameless.head; sl != nil && k < evictScan; sl, k = sl.links[qFrameless].next, k+1 {
		if !sl.closing.Load() && !sl.busy.Load() && (t.evictable == nil || t.evictable(sl)) {
			return sl
		}
	}
	return nil
}

// dequeue takes sl out of both queues: it completed a frame, or it is
// being closed.
func (t *slots) dequeue(sl *slot) {
	t.frameless.remove(sl)
	t.handshaking.remove(sl)
}

// allowedBy reports whether addr is in one of prefixes; an empty list
// accepts every address.
func allowedBy(prefixes []netip.Prefix, addr netip.Addr) bool {
	if len(prefixes) == 0 {
		return true
	}
	return inPrefixes(prefixes, addr)
}

// inPrefixes reports whether addr (IPv4-mapped addresses unmapped) is in
// one of prefixes; an empty list contains nothing.
func inPrefixes(prefixes []netip.Prefix, addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
