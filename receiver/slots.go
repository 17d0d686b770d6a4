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

// slot is one connection's entry in a slots table. The table's mutex guards
// the links, pending, evicted and src; busy and closing are atomics that the
// connection's reader reads without the lock; peer, fd, opened, owner and
// kill are set before open and never change. A slot is owned by its
// connection from open until close.
type slot struct {
	prev, next *slot          // the pending list, oldest first
	pending    bool           // no frame completed yet (in the pending list)
	evicted    bool           // closed to make room; its place was handed on
	src        netip.Addr     // counted in bySource when valid
	peer       netip.AddrPort // the TCP peer
	fd         int            // the socket (gnet path), for unreadBytes; -1 if none
	opened     int64          // UnixNano of the accept
	owner      any            // the server's connection state
	busy       atomic.Bool    // inside a read (possibly blocked in the sink)
	closing    atomic.Bool    // a close was asked for (sweep, eviction, partial cap)
	// kill closes the connection. It is called with slots.mu held, while
	// the connection is still registered, so it never hits a reused file
	// descriptor; it must not block.
	kill func()
}

// slots is the connection table of one tcp or tls input: the
// max_connections cap, the per-source counts, and in accept order the
// connections that have not completed a frame yet (the candidates for
// eviction and the handshake timeout). Its methods are safe for concurrent
// use; each takes mu once per connection event (open, first frame, close),
// never per read.
type slots struct {
	max       int // 0 = no cap
	perSource int // 0 = no limit

	mu       sync.Mutex
	n        int // slots taken: registered connections minus the evicted
	all      map[*slot]struct{}
	bySource map[netip.Addr]int
	head     *slot // oldest pending
	tail     *slot
	// evictable reports whether a pending connection may be evicted; nil
	// means any that is not busy. Called with mu held.
	evictable func(*slot) bool
}

func newSlots(maxConns, perSource int) *slots {
	return &slots{max: maxConns, perSource: perSource, all: map[*slot]struct{}{}, bySource: map[netip.Addr]int{}}
}

// open registers sl. src is the source address counted against the
// per-source limit; invalid when it is not known yet (PROXY protocol: see
// source). When the table is full, the oldest connection that has not
// completed a frame (and is not being read) is closed and its place given
// to sl: victim is that connection, for the caller to count and log.
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
		t.unlink(victim)
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
	sl.pending = true
	sl.prev, sl.next = t.tail, nil
	if t.tail != nil {
		t.tail.next = sl
	} else {
		t.head = sl
	}
	t.tail = sl
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

// framed takes sl out of the pending list: it completed a frame. The
// caller calls it once.
func (t *slots) framed(sl *slot) {
	t.mu.Lock()
	if sl.pending {
		t.unlink(sl)
	}
	t.mu.Unlock()
}

// close forgets sl and frees its place unless eviction handed it on.
func (t *slots) close(sl *slot) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if sl.pending {
		t.unlink(sl)
	}
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

// expired calls fn, with mu held, for each pending connection opened
// before cutoff (UnixNano), oldest first. fn reports whether it closed the
// connection (it must then have set closing and called kill).
func (t *slots) expired(cutoff int64, fn func(*slot) bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for sl := t.head; sl != nil && sl.opened < cutoff; {
		next := sl.next
		if !sl.closing.Load() && fn(sl) {
			t.unlink(sl)
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
	for sl := t.head; sl != nil && k < evictScan; sl, k = sl.next, k+1 {
		if !sl.closing.Load() && !sl.busy.Load() && (t.evictable == nil || t.evictable(sl)) {
			return sl
		}
	}
	return nil
}

func (t *slots) unlink(sl *slot) {
	if sl.prev != nil {
		sl.prev.next = sl.next
	} else {
		t.head = sl.next
	}
	if sl.next != nil {
		sl.next.prev = sl.prev
	} else {
		t.tail = sl.prev
	}
	sl.prev, sl.next, sl.pending = nil, nil, false
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
