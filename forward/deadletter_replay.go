package forward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fastjson"
)

// ReplayStats says what a Replay did.
type ReplayStats struct {
	Read      int // events read from the dead-letter file
	Delivered int // events the intake accepted
	// Kept are the events written back to the dead-letter file, as they
	// were: refused again, still too large for the output, or not accepted
	// before the replay ended.
	Kept int
	// Corrupt lines are not dead-letter lines (a file edited by hand, a
	// disk error); they are kept as they are.
	Corrupt int
}

// Replay sends the events of dl's file again, through spec's Encoder and
// Sender (the output's, built from the same configuration), in batches of
// spec.MaxEvents events or spec.MaxBytes bytes; a failed batch is retried
// with capped backoff until ctx ends. It first moves the file aside (Take),
// so a running relay goes on dead-lettering into a new file meanwhile; what
// is not delivered is written back to dl as it was, and the file replayed
// is then removed. A replay interrupted before that (a crash) leaves its
// file, which the next Replay sends first: the events it had delivered are
// then sent twice. Replay returns an error, with the stats so far, when ctx
// ends before everything was sent or the file cannot be handled; nothing
// read is lost either way. It uses spec.Sender from one goroutine and does
// not close it.
func Replay(ctx context.Context, dl *DeadLetter, spec OutputSpec, log zerolog.Logger) (ReplayStats, error) {
	var st ReplayStats
	for range 2 { // an interrupted replay's file, then the current one
		path, leftover, err := dl.Take()
		if err != nil || path == "" {
			return st, err
		}
		if leftover {
			log.Warn().Str("file", path).Msg("replaying the file of an interrupted replay first; events it had delivered are sent again")
		}
		if err := replayFile(ctx, dl, path, spec, log, &st); err != nil {
			return st, err
		}
		if !leftover {
			break
		}
	}
	return st, nil
}

// replay is the state of one replayFile.
type replay struct {
	spec  OutputSpec
	log   zerolog.Logger
	st    *ReplayStats
	batch Batch
	lines [][]byte // line of each event of the batch
	keep  []byte   // lines to write back
}

func replayFile(ctx context.Context, dl *DeadLetter, path string, spec OutputSpec, log zerolog.Logger, st *ReplayStats) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read the dead-letter file: %w", err)
	}
	if spec.MaxEvents <= 0 {
		spec.MaxEvents = 1000
	}
	if spec.MaxBytes <= 0 {
		spec.MaxBytes = 4 << 20
	}
	r := &replay{spec: spec, log: log, st: st}
	var p fastjson.Parser
	var e DeadEvent
	rest := data
	for len(rest) > 0 && err == nil {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if perr := parseDeadLine(&p, line, &e); perr != nil {
			st.Corrupt++
			r.keepLine(line)
			continue
		}
		st.Read++
		enc, eerr := spec.Encoder.Append(r.batch.Data, &e.Record)
		if eerr != nil { // too large for the output still
			st.Kept++
			r.keepLine(line)
			continue
		}
		r.batch.Data = enc
		r.batch.Ends = append(r.batch.Ends, len(enc))
		r.lines = append(r.lines, line)
		if r.batch.Len() >= spec.MaxEvents || len(r.batch.Data) >= spec.MaxBytes {
			err = r.send(ctx)
		}
	}
	if err == nil && r.batch.Len() > 0 {
		err = r.send(ctx)
	}
	if err != nil { // not sent: the batch's events and the lines not read yet
		for _, l := range r.lines {
			r.keepLine(l)
		}
		st.Kept += len(r.lines)
		st.Kept += countLines(rest)
		r.keep = append(r.keep, rest...)
		if len(rest) > 0 && rest[len(rest)-1] != '\n' {
			r.keep = append(r.keep, '\n')
		}
	}
	if werr := dl.writeLines(r.keep); werr != nil {
		// The live file cannot take them: they stay in the replayed file,
		// which the next replay sends first.
		if rerr := os.WriteFile(path, r.keep, 0o640); rerr != nil {
			return fmt.Errorf("cannot keep %d undelivered events (%v): %s still holds them all: %w", st.Kept, werr, path, rerr)
		}
		return fmt.Errorf("cannot write undelivered events back (%w): they stay in %s", werr, path)
	}
	if rerr := os.Remove(path); rerr != nil {
		return fmt.Errorf("cannot remove the replayed file: %w", rerr)
	}
	return err
}

// send delivers the batch, retrying until it is accepted or ctx ends; the
// events the intake refuses are kept.
func (r *replay) send(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		r.batch.rejects = r.batch.rejects[:0]
		err := r.spec.Sender.Send(ctx, &r.batch)
		if err == nil {
			rej := r.batch.Rejected()
			r.st.Delivered += r.batch.Len() - len(rej)
			sort.Slice(rej, func(i, j int) bool { return rej[i].Index < rej[j].Index })
			for _, x := range rej {
				if x.Index >= 0 && x.Index < len(r.lines) {
					r.keepLine(r.lines[x.Index])
					r.st.Kept++
				}
			}
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("replay stopped before the intake accepted every event: %w", err)
		}
		var perm *PermanentError
		if errors.As(err, &perm) {
			r.log.Error().Err(err).Int("events", r.batch.Len()).Msg("intake rejected the batch permanently; its events stay in the dead-letter file")
			for _, l := range r.lines {
				r.keepLine(l)
			}
			r.st.Kept += len(r.lines)
			break
		}
		d := retryDelay(attempt, err)
		r.log.Warn().Err(err).Int("events", r.batch.Len()).Dur("retry_in", d).Msg("cannot deliver replayed events; will retry")
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("replay stopped before the intake accepted every event: %w", ctx.Err())
		}
	}
	r.batch.Reset()
	r.lines = r.lines[:0]
	return nil
}

func (r *replay) keepLine(line []byte) {
	r.keep = append(append(r.keep, line...), '\n')
}

// countLines counts the non-empty lines of p.
func countLines(p []byte) int {
	n := 0
	for _, l := range bytes.Split(p, []byte{'\n'}) {
		if len(bytes.TrimSpace(l)) > 0 {
			n++
		}
	}
	return n
}

// DeadLetterSummary describes a dead-letter file (dtrelay deadletter list).
type DeadLetterSummary struct {
	Path            string
	Events, Bytes   int64
	Reasons         map[string]int64 // events per reason
	Oldest, Newest  time.Time        // of the events' "time"
	Corrupt         int64            // lines that are not dead-letter lines
	InterruptedPath string           // the file of an interrupted replay, if any
	Interrupted     int64            // events in it
}

// Summarize reads the dead-letter file of dl (and an interrupted replay's)
// without changing them. A missing file is an empty summary.
func Summarize(dl *DeadLetter) (DeadLetterSummary, error) {
	s := DeadLetterSummary{Path: dl.Path(), Reasons: map[string]int64{}}
	var p fastjson.Parser
	var e DeadEvent
	for _, path := range []string{dl.Path(), dl.Path() + replaySuffix} {
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return s, fmt.Errorf("cannot read the dead-letter file: %w", err)
		}
		s.Bytes += int64(len(data))
		interrupted := path != dl.Path()
		if interrupted {
			s.InterruptedPath = path
		}
		for _, line := range bytes.Split(data, []byte{'\n'}) {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			if parseDeadLine(&p, line, &e) != nil {
				s.Corrupt++
				continue
			}
			if interrupted {
				s.Interrupted++
			}
			s.Events++
			s.Reasons[e.Reason]++
			if !e.Time.IsZero() && (s.Oldest.IsZero() || e.Time.Before(s.Oldest)) {
				s.Oldest = e.Time
			}
			if e.Time.After(s.Newest) {
				s.Newest = e.Time
			}
		}
	}
	return s, nil
}
