package forward

import (
	"errors"
	"math/bits"
	"time"
)

// Events an output gives up on (DESIGN.md §4: delivered, durably queued, or
// counted with a reason and kept where an operator can get it back): the
// intake refused them for their content (Batch.Reject: a 413 or 400 for one
// event, a per-event status), a Sender failed their batch with a
// PermanentError, or the encoder refused them (too large for the output,
// not encodable). Each goes to the output's dead-letter file, counted
//
//	dtrelay_output_dead_letter_total{output,reason}
//
// and, when the file is full or cannot be written, is lost, counted
//
//	dtrelay_output_dropped_total{output,reason="dead_letter_full"|"dead_letter_error"}
//
// and logged at error level (sampled). Without a dead-letter file
// (OutputSpec.DeadLetter nil) it is counted dropped under its own reason.

// recRef locates the record behind one event of a batch: the block and the
// offset of its record. The block stays referenced until the batch is
// delivered.
type recRef struct {
	b   *Block
	off int
}

// rejectEvent gives up on event i of the batch.
func (o *output) rejectEvent(i int, reason string) {
	var r Record
	ref := o.refs[i]
	ref.b.readRecord(ref.off, &r)
	o.deadLetter(&r, reason)
}

// rejectRange gives up on events [lo, hi) of the batch, failed with err.
func (o *output) rejectRange(lo, hi int, reason string, err error) {
	o.noteError(err)
	o.log.Error().Err(err).Int("events", hi-lo).Str("reason", reason).
		Msg("intake rejected the batch permanently; events kept in the dead-letter file")
	for i := lo; i < hi; i++ {
		o.rejectEvent(i, reason)
	}
}

// deadLetter keeps r in the output's dead-letter file, counted under
// reason, or counts and logs its loss. It is safe for concurrent use (the
// batcher and the pipeline's producers call it) and does not keep r.
func (o *output) deadLetter(r *Record, reason string) {
	dl := o.DeadLetter
	if dl == nil {
		o.dropped(reason).Inc()
		o.sampled.Error().Str("reason", reason).Int("bytes", len(r.Payload)).
			Msg("event given up on and dropped: the output has no dead-letter file")
		return
	}
	err := dl.Write(r, reason, time.Now())
	if err == nil {
		o.deadLettered(reason).Inc()
		o.sampled.Warn().Str("reason", reason).Int("bytes", len(r.Payload)).Str("file", dl.Path()).
			Msg("event given up on; kept in the dead-letter file (dtrelay deadletter replay sends it again)")
		return
	}
	why := "dead_letter_error"
	if errors.Is(err, ErrDeadLetterFull) {
		why = "dead_letter_full"
	}
	o.dropped(why).Inc()
	o.sampled.Error().Err(err).Str("reason", reason).Str("file", dl.Path()).
		Msg("cannot keep an event in the dead-letter file: EVENT LOST; replay or move the file, or raise dead_letter.max_size")
}

// deadLetterRecord keeps a record (its header and frame, as in a Block)
// in the dead-letter file of every output it is routed to, counted under
// reason: for a record that can never be delivered, such as one the spool
// cannot hold. It does not keep rec and is safe for concurrent use.
func (p *Pipeline) deadLetterRecord(rec []byte, reason string) {
	var r Record
	b := Block{buf: rec}
	mask, _ := b.readRecord(0, &r)
	for m := mask; m != 0; m &= m - 1 {
		if i := bits.TrailingZeros64(m); i < len(p.outputs) {
			p.outputs[i].deadLetter(&r, reason)
		}
	}
}
