package forward

import (
	"bytes"
	"net/netip"

	"github.com/dtrelay/dtrelay/parser"
)

// SourceObserver is told, once per read (Producer.Flush), what each sender
// of the read sent: Options.Sources. A producer accumulates per sender
// during the read without locks or allocations; the observer pays its own
// synchronization once per read, not per message.
type SourceObserver interface {
	// Read is called by the producer's goroutine at the end of a read. r
	// and the slices it points to are valid only during the call.
	Read(r *SourceBatch)
}

// SourceBatch is one read's traffic, by sender.
type SourceBatch struct {
	Input string // the input's name
	// Source is the input's fixed source (InputSpec.Source: the poller's
	// instance), or "": then each SourceRead's Host, or without one Peer,
	// names the source.
	Source string
	Peer   netip.AddrPort // where the read came from (invalid for the poller)
	Now    int64          // the read's reception time, Unix ns
	Reads  []SourceRead
}

// SourceRead is what one sender (one HOSTNAME) sent in a read.
type SourceRead struct {
	Host     []byte                  // the syslog HOSTNAME; nil when the messages had none
	Kinds    [parser.NumKinds]uint32 // JSON alerts by kind
	NotJSON  uint32                  // messages whose payload is not a JSON object
	Bytes    uint64                  // bytes of the messages, without framing
	Tests    uint32                  // Darktrace test alerts (kind test)
	TestMask uint64                  // the outputs the last test alert was routed to
}

// Messages returns the number of messages r counts.
func (r *SourceRead) Messages() uint64 {
	n := uint64(r.NotJSON)
	for _, k := range r.Kinds {
		n += uint64(k)
	}
	return n
}

// maxReadSources is how many HOSTNAMEs a producer tells apart in one read
// before it hands them over early (a read usually has one).
const maxReadSources = 4

// readSources is a producer's per-read accumulator.
type readSources struct {
	n     int
	reads [maxReadSources]SourceRead
	hosts [maxReadSources][]byte // owned copies of the hosts, reused
	batch SourceBatch
}

// count adds one message of frame (classified into hdr) routed to mask.
func (pr *Producer) countSource(frame []byte, kind parser.Kind, notJSON bool, mask uint64) {
	rs := &pr.srcs
	var host []byte
	if pr.pp.source == "" {
		host = pr.hdr.Host.Bytes(frame)
	}
	i := 0
	for ; i < rs.n; i++ {
		if bytes.Equal(rs.reads[i].Host, host) {
			break
		}
	}
	if i == rs.n {
		if rs.n == maxReadSources {
			pr.flushSources()
			i = 0
		}
		rs.n++
		r := &rs.reads[i]
		*r = SourceRead{}
		if len(host) > 0 {
			rs.hosts[i] = append(rs.hosts[i][:0], host...)
			r.Host = rs.hosts[i]
		}
	}
	r := &rs.reads[i]
	r.Bytes += uint64(len(frame))
	if notJSON {
		r.NotJSON++
		return
	}
	r.Kinds[kind]++
	if kind == parser.KindTest {
		r.Tests++
		r.TestMask = mask
	}
}

// flushSources hands the read's per-sender counts to the observer.
func (pr *Producer) flushSources() {
	rs := &pr.srcs
	if rs.n == 0 {
		return
	}
	b := &rs.batch
	*b = SourceBatch{Input: pr.pp.name, Source: pr.pp.source, Peer: pr.peer, Now: pr.now, Reads: rs.reads[:rs.n]}
	pr.pp.p.srcObs.Read(b)
	rs.n = 0
	b.Reads = nil
}

// SetPeer tells the producer where the current read comes from (the
// receiver's PeerPool); it is forgotten at Flush.
func (pr *Producer) SetPeer(remote netip.AddrPort) { pr.peer = remote }

// OutputNames returns the names of the outputs in mask, in order.
func (p *Pipeline) OutputNames(mask uint64) []string {
	var names []string
	for i, o := range p.outputs {
		if mask&(1<<uint(i)) != 0 {
			names = append(names, o.Name)
		}
	}
	return names
}
