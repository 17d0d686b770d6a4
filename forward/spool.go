package forward

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/dtrelay/dtrelay/spool"
)

// With a spool (Options.Spool), every published block is appended to it
// before it is queued, and memory is a cache in front of it:
//
//   - The block is queued for every output (records not routed to an output
//     are skipped by its batcher), never waiting: an output whose queue is
//     full is marked overflowed and gets nothing more in memory.
//   - When an output has delivered a block it acknowledges the block's last
//     spool position (Reader.Skip), so its cursor follows it.
//   - An overflowed output, once its memory queue is drained, reads what it
//     missed from its spool reader, in order, and goes back to memory when it
//     has caught up. Every output starts overflowed, which replays what the
//     spool held at start.
//   - Before a batch is sent, the output marks in the spool how far it has
//     been handed records (spool.Reader.Mark, one small write per batch), so
//     that after a kill -9 the next start counts every record it may have
//     delivered without a durable acknowledgement in
//     dtrelay_spool_redelivered_total.
//   - Records read back from disk keep the output mask of the run that
//     appended them; spool.Reader.Owner translates it to this run's outputs,
//     which may have been renamed (spool.rename) or reordered.
//
// So one dead output no longer stalls the others; intake waits only when the
// spool is full (when_full: block). Everything received is on disk within
// the spool's fsync interval whatever the outputs do.

// diskBlockSize bounds the blocks an output reads from the spool. A block is
// acknowledged once all its records are delivered, so after a crash or a
// stop at most about one block per output is delivered again.
const diskBlockSize = 32 << 10

// SpoolRecordSize is the size of the spool record of a message of n bytes:
// the record header and the message (spool.Options.MaxRecord).
func SpoolRecordSize(n int) int { return recHeaderSize + n }

// spoolSource is the source of an output with a spool: its memory queue,
// and its spool reader for what it missed in memory (overflow) and what the
// spool held at start. It embeds its output for the queue, the routing bit,
// the send context, the log and the counters. Its fields are the batcher's,
// except overflow and lostMemOnly (also set by producers, under pubMu).
type spoolSource struct {
	*output
	p      *Pipeline // pubMu, stopping, sampled
	reader *spool.Reader
	// overflow is set when a block could not be queued for the output: it
	// then reads from the spool until it has caught up.
	overflow atomic.Bool
	noAck    bool      // stopped: acknowledge nothing more
	kept     int64     // undelivered events left in the spool at stop
	carry    *Block    // read from the spool, not yet handed out
	memPos   spool.Pos // of the last block taken from memory
	hasMem   bool
	handed   spool.Pos // of the last block taken, from memory or disk
	marked   spool.Pos // handed, as last marked in the spool
	// lostMemOnly counts events not in the spool that were missed while
	// stopping (added by producers).
	lostMemOnly atomic.Int64
}

// publishSpooled appends b's records to the spool and queues b for every
// output that is not overflowed. It returns how long the spool made it wait.
//
// The spool writes the block to its segment file before AppendPos returns
// (one write per block), so a process crash loses nothing published. A
// record the spool refuses for good (larger than a segment: a
// configuration check prevents it) and records refused while stopping go
// on in memory only, flagged: outputs taking the block from memory deliver
// them; for the others, or if still undelivered at stop, they are counted
// as dropped.
func (p *Pipeline) publishSpooled(b *Block) time.Duration {
	p.pubMu.Lock()
	defer p.pubMu.Unlock()
	recs := p.recs[:0]
	for off := 0; off < len(b.buf); {
		end := off + recordLen(b.buf[off:])
		recs = append(recs, b.buf[off:end])
		off = end
	}
	p.recs = recs
	start := time.Now()
	memOnly := 0
	for attempt := 0; len(recs) > 0; {
		pos, n, err := p.spool.AppendPos(recs...)
		if n > 0 {
			b.pos, b.hasPos = pos, true
			recs = recs[n:]
		}
		switch {
		case err == nil:
		case errors.Is(err, spool.ErrTooLarge):
			// Never retried: it cannot fit (counted by the spool).
			recs[0][recFlagsOffset] |= flagUnspooled
			memOnly++
			p.sampled.Error().Int("bytes", len(recs[0])-recHeaderSize).
				Msg("event too large for the spool (counted in dtrelay_spool_rejected_total): delivered from memory only, not durable")
			recs = recs[1:]
		case errors.Is(err, spool.ErrClosed) || p.stopping.Load():
			p.spoolLost.Add(len(recs))
			p.log.Error().Err(err).Int("events", len(recs)).Msg("cannot spool events while stopping; they go on in memory only")
			for _, r := range recs {
				r[recFlagsOffset] |= flagUnspooled
			}
			memOnly += len(recs)
			recs = nil
		default:
			d := backoff(attempt)
			attempt++
			p.log.Error().Err(err).Dur("retry_in", d).Msg("cannot write to the spool; intake waits")
			time.Sleep(d)
		}
	}
	for i := range p.recs {
		p.recs[i] = nil
	}
	waited := time.Since(start)
	if memOnly == 0 && b.dl != nil {
		// Durably queued (once the spool syncs, which Delivery.Err asks
		// for): a tracked input need not wait for the outputs, whose
		// spool readers deliver the records whatever happens to memory.
		b.dl.spooled.Store(true)
		b.dl.release()
		b.dl = nil
	}
	n := len(p.sources)
	b.refs.Store(int32(n + 1))
	pushed := 0
	for _, o := range p.sources {
		if !o.overflow.Load() {
			if ok, _ := o.q.push(b, false); ok {
				pushed++
				if b.hasPos {
					o.reader.Hold(b.pos) // drop_oldest does not count what it holds
				}
				continue
			}
			o.overflow.Store(true)
			o.overflows.Inc()
		}
		if memOnly > 0 {
			o.missedMemOnly(b)
		}
		o.q.wake()
	}
	b.refs.Add(int32(pushed - n))
	b.release()
	if waited < time.Millisecond {
		return 0
	}
	return waited
}

// missedMemOnly counts the records of b that are in memory only and routed
// to o, which does not get b from memory: o can never deliver them.
func (o *spoolSource) missedMemOnly(b *Block) {
	var r Record
	n := 0
	for off := 0; off < len(b.buf); {
		var m uint64
		m, off = b.readRecord(off, &r)
		if r.memOnly && m&o.bit != 0 {
			n++
		}
	}
	if n == 0 {
		return
	}
	b.fail()
	reason := "not_spooled"
	if o.p.stopping.Load() {
		reason = "shutdown"
		o.lostMemOnly.Add(int64(n))
	}
	o.dropped(reason).Add(n)
	o.log.Error().Int("events", n).Str("reason", reason).
		Msg("events not in the spool and this output is behind: dropped")
}

// next returns the batcher's next block: from memory, or from the spool
// while the output is overflowed. It returns nil, true when the output is
// done (queue closed and drained, or stopped with the spool keeping the rest).
func (o *spoolSource) next(wait time.Duration) (*Block, bool) {
	b, done := o.nextSpooled(wait)
	if b != nil && b.hasPos {
		o.handed = spoolMax(o.handed, b.pos)
	}
	return b, done
}

func spoolMax(p, q spool.Pos) spool.Pos {
	if p.Before(q) {
		return q
	}
	return p
}

// sending records in the spool, before a batch is sent, how far this
// output has been handed records (from memory or disk), so that after a
// kill -9 the next start counts what it may have delivered as redelivered
// (spool.Reader.Mark: one small write per batch, not per event).
func (o *spoolSource) sending() {
	if !o.marked.Before(o.handed) {
		return
	}
	if err := o.reader.Mark(o.handed); err != nil {
		o.p.sampled.Error().Err(err).Str("output", o.Name).Msg("cannot mark spooled events as handed out; duplicates after a crash may go uncounted")
	}
	o.marked = o.handed
}

func (o *spoolSource) nextSpooled(wait time.Duration) (*Block, bool) {
	for {
		if b, _ := o.q.pop(0); b != nil {
			o.taken(b)
			return b, false
		}
		if o.send.Err() != nil { // stopped: the spool keeps the rest
			return nil, true
		}
		if o.overflow.Load() {
			if b := o.fromDisk(); b != nil {
				return b, false
			}
			// Caught up. Under the publish lock no block can slip past both
			// the spool reader and the queue. A publisher may hold it while
			// the spool waits for space, which this output's
			// acknowledgements may be what frees: then do not wait for it,
			// deliver what is batched and look again when woken.
			if o.p.pubMu.TryLock() {
				b := o.fromDisk()
				if b == nil {
					o.overflow.Store(false)
				}
				o.p.pubMu.Unlock()
				if b != nil {
					return b, false
				}
			}
		}
		b, done := o.q.pop(wait)
		if b != nil {
			o.taken(b)
		}
		if b != nil || done || wait >= 0 || o.repl.Load() != nil { // repl: a reload's, for the batcher
			return b, done
		}
	}
}

// taken notes the spool position of a block taken from memory: the reader,
// which moves only as blocks are delivered, must not hand out its records
// again.
func (o *spoolSource) taken(b *Block) {
	if b.hasPos {
		o.memPos, o.hasMem = b.pos, true
	}
}

// delivered acknowledges b's records in the spool (its cursor follows the
// output) and releases b.
func (o *spoolSource) delivered(b *Block) {
	if b.hasPos {
		o.ack(b.pos)
	}
	o.release(b)
}

// deliveredAll is delivered for the blocks of a batch, in the order they
// were taken: their spool positions only grow, so one acknowledgement of
// the last one (one write to the marks file per batch) covers them all.
func (o *spoolSource) deliveredAll(bs []*Block) {
	for i := len(bs) - 1; i >= 0; i-- {
		if bs[i].hasPos {
			o.ack(bs[i].pos)
			break
		}
	}
	for _, b := range bs {
		o.release(b)
	}
}

func (o *spoolSource) ack(pos spool.Pos) {
	if o.noAck {
		return
	}
	if err := o.reader.Skip(pos); err != nil {
		o.log.Error().Err(err).Msg("cannot acknowledge spooled events")
	}
}

func (o *spoolSource) release(b *Block) {
	if b.disk {
		putBlock(b)
		return
	}
	o.q.release(int64(b.Size()))
	b.release()
}

// stopped keeps the undelivered records in the spool for the next start:
// it acknowledges nothing more, so the cursor stays before them. Those the
// spool refused (in memory only) are lost.
func (o *spoolSource) stopped(refs []recRef) int {
	o.noAck = true
	lost := 0
	var r Record
	for _, ref := range refs {
		ref.b.readRecord(ref.off, &r)
		if r.memOnly {
			lost++
			ref.b.fail()
		}
	}
	o.kept += int64(len(refs) - lost)
	return lost
}

func (o *spoolSource) close() (kept, lost int64) {
	o.reader.Close()
	return o.kept, o.lostMemOnly.Load()
}

// fromDisk fills a private block with the records the spool reader has
// ready, without waiting; nil when there are none.
func (o *spoolSource) fromDisk() *Block {
	b := o.carry
	o.carry = nil
	for b == nil || len(b.buf) < diskBlockSize {
		rec, pos, err := o.reader.TryNext()
		if err != nil {
			if !errors.Is(err, spool.ErrNotReady) && !errors.Is(err, spool.ErrClosed) {
				o.log.Error().Err(err).Msg("cannot read the spool")
			}
			break
		}
		if o.hasMem && !o.memPos.Before(pos) {
			continue // taken from memory, not delivered yet
		}
		if why := recordProblem(rec); why != "" {
			o.undecodable(rec, pos, why)
			continue
		}
		mask := o.diskMask(rec, pos)
		if b != nil && len(b.buf)+len(rec) > cap(b.buf) {
			o.carry = diskBlock(rec, pos, mask)
			break
		}
		if b == nil {
			b = diskBlock(rec, pos, mask)
			continue
		}
		b.buf = append(b.buf, rec...)
		setRecordMask(b.buf[len(b.buf)-len(rec):], mask)
		b.n++
		b.pos = pos
	}
	return b
}

// undecodable counts and logs (sampled) a spooled record this build cannot
// decode, which is skipped: why is recordProblem's reason. A record of an
// unknown version was written by a newer dtrelay: its segment is kept on
// disk (spool.Reader.Keep), from which the newer build can deliver it.
func (o *spoolSource) undecodable(rec []byte, pos spool.Pos, why string) {
	o.dropped(why).Inc()
	if why != "spool_unknown_version" {
		o.p.sampled.Error().Str("output", o.Name).Str("position", pos.String()).Int("bytes", len(rec)).
			Msg("spooled event cannot be decoded (its length or offsets disagree): skipped, counted in dtrelay_output_dropped_total{reason=\"spool_corrupt\"}")
		return
	}
	kept, err := o.reader.Keep(pos)
	o.p.sampled.Error().Str("output", o.Name).Str("position", pos.String()).
		Uint8("record_version", rec[recVersionOffset]).Int("max_version", recordVersion).
		Str("kept_segment", kept).AnErr("keep_error", err).
		Msg("spooled event written by a newer dtrelay (record format version above the highest this build reads): " +
			"not forwarded, counted in dtrelay_output_dropped_total{reason=\"spool_unknown_version\"}; its spool segment is kept " +
			"on disk (kept_segment), from which the newer dtrelay can deliver it: see the README on downgrades")
}

// diskMask returns the output mask a spooled record has for this output's
// batcher: o.bit if it was routed to this output when appended, else 0.
// The record's own mask refers to the outputs of the run that appended it,
// which may have been renamed (spool.rename) or reordered since.
func (o *spoolSource) diskMask(rec []byte, pos spool.Pos) uint64 {
	m := recordMask(rec)
	idx, known := o.reader.Owner(pos)
	if !known { // appended before the spool recorded its consumers
		return m & o.bit
	}
	if idx >= 0 && idx < 64 && m&(1<<uint(idx)) != 0 {
		return o.bit
	}
	return 0
}

func diskBlock(rec []byte, pos spool.Pos, mask uint64) *Block {
	b := getBlock(max(diskBlockSize, len(rec)))
	b.buf = append(b.buf, rec...)
	setRecordMask(b.buf, mask)
	b.n, b.pos, b.hasPos, b.disk = 1, pos, true, true
	return b
}
