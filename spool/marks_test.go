package spool

import (
	"os"
	"path/filepath"
	"testing"
)

// An output delivering from memory (AppendPos, Mark before sending, Skip
// once delivered) and then killed: every record it may have delivered
// since the last commit is counted as redelivered at the next Open, and
// nothing it was never handed.
func TestMarkCountsRedeliveryAfterCrash(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir)
	opts.SegmentSize = 1 << 20
	s := mustOpen(t, opts)
	r := mustReader(t, s, "a")
	recs := records(t, 100)
	pos := make([]Pos, len(recs))
	for i, rec := range recs {
		p, _, err := s.AppendPos(rec)
		if err != nil {
			t.Fatal(err)
		}
		pos[i] = p
	}
	if err := r.Skip(pos[9]); err != nil { // delivered and acknowledged...
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil { // ...durably: ack=10, read=10
		t.Fatal(err)
	}
	for _, b := range []int{29, 59} { // two batches handed out from memory
		if err := r.Mark(pos[b]); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Mark(pos[20]); err != nil { // behind the mark: a no-op
		t.Fatal(err)
	}
	if err := r.Skip(pos[29]); err != nil { // the first one delivered, its ack in the marks file only
		t.Fatal(err)
	}
	crash(s)

	opts.Metrics = nil
	s = mustOpen(t, opts)
	if got := s.m.replayed["a"].Get(); got != 70 {
		t.Fatalf("replayed %d, want the 70 records after the marked ack", got)
	}
	if got := s.m.redelivered["a"].Get(); got != 30 {
		t.Fatalf("redelivered %d, want the 30 records of the batch in flight", got)
	}
	sameSequence(t, readAll(t, mustReader(t, s, "a")), recs[30:])
	crash(s) // nothing handed out in this run: the next Open counts none

	opts.Metrics = nil
	s = mustOpen(t, opts)
	defer s.Close()
	if got := s.m.redelivered["a"].Get(); got != 0 {
		t.Fatalf("after a run that delivered nothing: redelivered %d, want 0", got)
	}
}

// A torn mark slot (a power loss) is ignored: the commit's read position
// counts. An unreadable marks file is counted corrupt, never fatal.
func TestMarksDamaged(t *testing.T) {
	for _, tc := range []struct {
		name        string
		at          func(b []byte) int
		redelivered uint64
		corrupt     uint64
	}{
		{"slot", func(b []byte) int { return len(b) - 2*markSlotSize + 3 }, 5, 0}, // the mark slot of "a"
		{"header", func([]byte) int { return 2 }, 5, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := testOptions(dir)
			s := mustOpen(t, opts)
			appendAll(t, s, records(t, 30))
			r := mustReader(t, s, "a")
			readN(t, r, 5, false)
			if err := s.Sync(); err != nil { // read=5 persisted
				t.Fatal(err)
			}
			readN(t, r, 15, false)
			if err := r.Mark(r.readPos()); err != nil { // handed 20
				t.Fatal(err)
			}
			crash(s)
			p := filepath.Join(dir, marksFile)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b[tc.at(b)] ^= 0x20
			if err := os.WriteFile(p, b, 0o640); err != nil {
				t.Fatal(err)
			}
			opts.Metrics = nil
			s = mustOpen(t, opts)
			defer s.Close()
			if got := s.m.redelivered["a"].Get(); got != tc.redelivered {
				t.Fatalf("redelivered %d, want %d", got, tc.redelivered)
			}
			if c := counter(s, "corrupt"); c != tc.corrupt {
				t.Fatalf("corrupt %d, want %d", c, tc.corrupt)
			}
		})
	}
}

// Mark is once per batch on the delivery path: no allocation.
func TestMarkNoAllocs(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.MaxSize, opts.SegmentSize = 64<<20, 4<<20
	s := mustOpen(t, opts)
	defer s.Close()
	r := mustReader(t, s, "a")
	rec := records(t, 1)[0]
	var p Pos
	allocs := testing.AllocsPerRun(200, func() {
		p, _, _ = s.AppendPos(rec)
		if err := r.Mark(p); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Fatalf("AppendPos+Mark: %.1f allocations, want 0", allocs)
	}
}

func BenchmarkMark(b *testing.B) {
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
	}
}
