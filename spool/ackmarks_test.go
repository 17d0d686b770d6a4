package spool

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// readPositions reads n records and returns their positions.
func readPositions(tb testing.TB, r *Reader, n int) []Pos {
	tb.Helper()
	out := make([]Pos, 0, n)
	for len(out) < n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, pos, err := r.Next(ctx)
		cancel()
		if err != nil {
			tb.Fatalf("Next after %d of %d records: %v", len(out), n, err)
		}
		out = append(out, pos)
	}
	return out
}

// reopenCrashed opens the spool again after a crash, with fresh metrics.
func reopenCrashed(tb testing.TB, opts Options) *Spool {
	tb.Helper()
	opts.Metrics = nil
	return mustOpen(tb, opts)
}

func wantCounts(tb testing.TB, s *Spool, name string, replayed, redelivered uint64) {
	tb.Helper()
	if got := s.m.replayed[name].Get(); got != replayed {
		tb.Errorf("%s: replayed %d, want %d", name, got, replayed)
	}
	if got := s.m.redelivered[name].Get(); got != redelivered {
		tb.Errorf("%s: redelivered %d, want %d", name, got, redelivered)
	}
}

// ackedCrash leaves dir as an output delivering in batches leaves it when
// killed: 100 records; acknowledged 10 and committed; then batches of 20
// marked and acknowledged (records 10..49), not committed; a last batch of
// 20 marked and in flight (50..69). It returns the positions read.
func ackedCrash(t *testing.T, opts Options) []Pos {
	t.Helper()
	s := mustOpen(t, opts)
	recs := records(t, 100)
	appendAll(t, s, recs)
	r := mustReader(t, s, "a")
	pos := readPositions(t, r, 10)
	if err := r.Ack(pos[9]); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	for b := 0; b < 3; b++ {
		batch := readPositions(t, r, 20)
		pos = append(pos, batch...)
		if err := r.Mark(batch[19]); err != nil {
			t.Fatal(err)
		}
		if b < 2 {
			if err := r.Ack(batch[19]); err != nil {
				t.Fatal(err)
			}
		}
	}
	crash(s)
	return pos
}

// After a kill -9, a consumer resumes at its last acknowledgement, kept by
// the marks file although no commit persisted it, and only the batch in
// flight is counted as redelivered.
func TestAckMarkResumesAfterCrash(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir)
	opts.SegmentSize = 1 << 20
	pos := ackedCrash(t, opts)
	st, _, err := readCursors(osFS{}, dir)
	if err != nil || len(st.recs) != 1 || st.recs[0].ack.off != pos[9].off {
		t.Fatalf("cursors file: %+v, %v; want the committed ack of 10 records", st.recs, err)
	}

	rep, err := Inspect(dir) // as the next Open will see it
	if err != nil || len(rep.Consumers) != 1 || rep.Consumers[0].Pending != 50 || rep.Consumers[0].Handed != 20 {
		t.Fatalf("Inspect: %+v, %v; want 50 pending, 20 handed", rep, err)
	}

	s := reopenCrashed(t, opts)
	wantCounts(t, s, "a", 50, 20)
	sameSequence(t, readAll(t, mustReader(t, s, "a")), records(t, 100)[50:])
	crash(s) // nothing acknowledged in this run: the same again, not less
	s = reopenCrashed(t, opts)
	defer s.Close()
	wantCounts(t, s, "a", 50, 0)
}

// A lost, torn, corrupt, old-format or stale marks file falls back to the
// cursors file's acknowledgement, as after a power loss.
func TestAckMarksDamaged(t *testing.T) {
	ackSlot := func(b []byte) int { return len(b) - markSlotSize + 5 }
	for _, tc := range []struct {
		name                  string
		damage                func(t *testing.T, p string)
		replayed, redelivered uint64
		corrupt               uint64
	}{
		{"intact", func(*testing.T, string) {}, 50, 20, 0},
		{"lost", func(t *testing.T, p string) { must(t, os.Remove(p)) }, 90, 0, 0},
		{"torn ack slot", func(t *testing.T, p string) { flip(t, p, ackSlot) }, 90, 60, 0},
		{"ack slot of another run", func(t *testing.T, p string) {
			b, err := os.ReadFile(p)
			must(t, err)
			var slot [markSlotSize]byte
			o := ackSlot(b) - 5
			p0 := Pos{seg: le64(b[o:]), off: int64(le64(b[o+8:])), n: int64(le64(b[o+16:]))}
			rb := runBytes(12345)
			encodeSlot(&slot, 1, rb[:], p0) // a valid slot, of another Open
			copy(b[o:], slot[:])
			must(t, os.WriteFile(p, b, 0o640))
		}, 90, 60, 0},
		{"format without ack slots", func(t *testing.T, p string) {
			b, err := os.ReadFile(p)
			must(t, err)
			must(t, os.WriteFile(p, b[:len(b)-markSlotSize], 0o640))
		}, 90, 60, 0},
		{"header", func(t *testing.T, p string) { flip(t, p, func([]byte) int { return 2 }) }, 90, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := testOptions(dir)
			opts.SegmentSize = 1 << 20
			ackedCrash(t, opts)
			tc.damage(t, filepath.Join(dir, marksFile))
			s := reopenCrashed(t, opts)
			defer s.Close()
			wantCounts(t, s, "a", tc.replayed, tc.redelivered)
			if c := counter(s, "corrupt"); c != tc.corrupt {
				t.Errorf("corrupt %d, want %d", c, tc.corrupt)
			}
			sameSequence(t, readAll(t, mustReader(t, s, "a")), records(t, 100)[100-tc.replayed:])
		})
	}
}

// A crash between Open's commit and its reset of the marks file leaves the
// previous run's marks beside cursors of the new run: their ack slots do
// not verify against it (the cursors, committed by that Open, already hold
// that acknowledgement), and their marks count the same redeliveries again.
func TestAckMarksStaleFile(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir)
	opts.SegmentSize = 1 << 20
	ackedCrash(t, opts) // run 1: acked 50 in the marks file, marked 70
	stale, err := os.ReadFile(filepath.Join(dir, marksFile))
	must(t, err)
	s := reopenCrashed(t, opts) // run 2 resumes at 50 and commits it
	crash(s)
	must(t, os.WriteFile(filepath.Join(dir, marksFile), stale, 0o640))
	if mk, err := readMarks(osFS{}, dir, s.epochs[len(s.epochs)-1].first); err != nil || len(mk.acks) != 0 || len(mk.marks) != 1 {
		t.Fatalf("stale marks read against run 2: %+v, %v; want its mark and no ack", mk, err)
	}
	s = reopenCrashed(t, opts)
	defer s.Close()
	wantCounts(t, s, "a", 50, 20)
	sameSequence(t, readAll(t, mustReader(t, s, "a")), records(t, 100)[50:])
}

// Slots are found by the consumer names the marks file lists, not by index:
// a reordered, shrunk or renamed consumer list resumes each saved cursor at
// its marked ack, a renamed one included, and an unclaimed one keeps only
// what it had not acknowledged.
func TestAckMarksFollowNames(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir, "x", "a", "y")
	opts.SegmentSize = 1 << 20
	s := mustOpen(t, opts)
	appendAll(t, s, records(t, 100))
	must(t, s.Sync())
	for name, n := range map[string]int{"x": 30, "a": 40, "y": 60} {
		r := mustReader(t, s, name)
		pos := readPositions(t, r, n)
		must(t, r.Mark(pos[n-1]))
		must(t, r.Ack(pos[n-1]))
	}
	crash(s)

	opts2 := testOptions(dir, "a", "b")
	opts2.SegmentSize, opts2.Rename = 1<<20, map[string]string{"x": "b"}
	s = reopenCrashed(t, opts2)
	defer s.Close()
	wantCounts(t, s, "a", 60, 0)
	wantCounts(t, s, "b", 70, 0) // x's backlog
	if got := s.unclaimedRecords(); got != 40 {
		t.Errorf("unclaimed y keeps %d records, want the 40 it had not acknowledged", got)
	}
	recs := records(t, 100)
	sameSequence(t, readAll(t, mustReader(t, s, "a")), recs[40:])
	sameSequence(t, readAll(t, mustReader(t, s, "b")), recs[30:])
}

// Segments are deleted as soon as every consumer acknowledged them, before
// a commit: a marked ack may then point into a deleted segment, and the
// consumer resumes at the oldest record on disk, counting exactly.
func TestAckMarkIntoDeletedSegment(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir) // 8 KiB segments
	s := mustOpen(t, opts)
	recs := records(t, 200)
	appendAll(t, s, recs)
	must(t, s.Sync())
	r := mustReader(t, s, "a")
	pos := readPositions(t, r, len(recs))
	k, bounds := 0, 0 // the last record of the third segment
	for ; k+1 < len(pos) && bounds < 3; k++ {
		if pos[k].seg != pos[k+1].seg {
			bounds++
		}
	}
	k--
	if bounds < 3 || k+40 >= len(pos) {
		t.Fatalf("records do not span enough segments: %d boundaries", bounds)
	}
	must(t, r.Mark(pos[k+40]))
	must(t, r.Ack(pos[k]))
	if _, err := os.Stat(s.path(pos[k].seg)); !os.IsNotExist(err) {
		t.Fatalf("segment of the ack not deleted: %v", err)
	}
	crash(s)
	s = reopenCrashed(t, opts)
	defer s.Close()
	wantCounts(t, s, "a", uint64(len(recs)-k-1), 40)
	sameSequence(t, readAll(t, mustReader(t, s, "a")), recs[k+1:])
}

// drop_oldest moves an acknowledgement forward without Ack: after a crash
// the consumer resumes at the oldest record on disk, and what drop_oldest
// counted as dropped is not replayed.
func TestAckMarkAfterDropOldest(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir)
	opts.MaxSize, opts.WhenFull = 64<<10, WhenFullDropOldest
	s := mustOpen(t, opts)
	recs := records(t, 400)
	appendAll(t, s, recs[:20])
	r := mustReader(t, s, "a")
	pos := readPositions(t, r, 10)
	must(t, r.Mark(pos[9]))
	must(t, r.Ack(pos[9]))
	appendAll(t, s, recs[20:]) // drops the oldest segments
	dropped := counter(s, "dropped")
	if dropped == 0 {
		t.Fatal("nothing dropped")
	}
	crash(s)
	s = reopenCrashed(t, opts)
	defer s.Close()
	got := readAll(t, mustReader(t, s, "a"))
	if uint64(len(got))+dropped+10 != uint64(len(recs)) {
		t.Fatalf("replayed %d + dropped %d + acked 10 != %d appended", len(got), dropped, len(recs))
	}
	wantCounts(t, s, "a", uint64(len(got)), 0)
	sameSequence(t, got, recs[len(recs)-len(got):])
}

// Acks from several goroutines leave the latest in the marks file: an
// earlier position written late never overwrites a later one.
func TestAckMarkConcurrentAcks(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir)
	opts.SegmentSize = 1 << 20
	s := mustOpen(t, opts)
	recs := records(t, 400)
	appendAll(t, s, recs)
	r := mustReader(t, s, "a")
	pos := readPositions(t, r, len(recs))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := g; i < len(pos)-1; i += 4 {
				if err := r.Ack(pos[i]); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	must(t, r.Ack(pos[len(pos)-2]))
	crash(s)
	s = reopenCrashed(t, opts)
	defer s.Close()
	wantCounts(t, s, "a", 1, 0)
	sameSequence(t, readAll(t, mustReader(t, s, "a")), recs[len(recs)-1:])
}

// Ack and Skip write the marks file once per call: no allocation.
func TestAckMarkNoAllocs(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.MaxSize, opts.SegmentSize = 64<<20, 4<<20
	s := mustOpen(t, opts)
	defer s.Close()
	r := mustReader(t, s, "a")
	rec := records(t, 1)[0]
	ctx := context.Background()
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := s.Append(rec); err != nil {
			t.Fatal(err)
		}
		_, p, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Ack(p); err != nil {
			t.Fatal(err)
		}
		p2, _, _ := s.AppendPos(rec)
		if err := r.Skip(p2); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Fatalf("Append+Next+Ack+AppendPos+Skip: %.1f allocations, want 0", allocs)
	}
	if c := counter(s, "write_errors"); c != 0 {
		t.Fatalf("write errors %d", c)
	}
}

// BenchmarkMarkAck is the cost an output pays per batch: a Mark before
// sending and an Ack once delivered, each one pwrite of the marks file.
func BenchmarkMarkAck(b *testing.B) {
	s := mustOpen(b, testOptions(b.TempDir()))
	defer s.Close()
	r := mustReader(b, s, "a")
	p, _, err := s.AppendPos(records(b, 1)[0])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.n = int64(i + 1) // a new position each time
		p.off++
		if err := r.Mark(p); err != nil {
			b.Fatal(err)
		}
		if err := r.Ack(p); err != nil {
			b.Fatal(err)
		}
	}
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func flip(tb testing.TB, p string, at func([]byte) int) {
	tb.Helper()
	b, err := os.ReadFile(p)
	must(tb, err)
	b[at(b)] ^= 0x20
	must(tb, os.WriteFile(p, b, 0o640))
}

func le64(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}
