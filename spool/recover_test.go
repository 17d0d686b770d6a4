package spool

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// closedSpool writes recs to a new spool, closes it and returns its dir and
// the offsets of every record: starts[i] in segment segs[i].
func closedSpool(t *testing.T, recs [][]byte) (dir string, segs []uint64, starts []int64) {
	t.Helper()
	dir = t.TempDir()
	s := mustOpen(t, testOptions(dir))
	for _, rec := range recs {
		if _, err := s.Append(rec); err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		segs = append(segs, s.active.id)
		starts = append(starts, s.active.size-int64(frameHeaderSize+len(rec)))
		s.mu.Unlock()
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, segs, starts
}

func segPath(dir string, id uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%016x.seg", id))
}

// Truncating the last segment at every byte offset of its last record (a
// torn write): Open succeeds, the tail is counted once and cut, every
// earlier record is delivered, and the spool keeps working.
func TestTruncateLastRecordEveryOffset(t *testing.T) {
	recs := records(t, 8)
	recs[7] = []byte(`<165>Aug  5 03:40:00 dt darktrace {"pbid":7,"score":0.5}`) // short: fewer offsets
	dir, segs, starts := closedSpool(t, recs)
	last := segPath(dir, segs[7])
	end := starts[7] + int64(frameHeaderSize+len(recs[7]))
	var want [][]byte
	for i := range recs[:7] {
		want = append(want, recs[i])
	}
	for off := starts[7]; off < end; off++ {
		d := copyDir(t, dir)
		p := filepath.Join(d, filepath.Base(last))
		if err := os.Truncate(p, off); err != nil {
			t.Fatal(err)
		}
		opts := testOptions(d)
		s := mustOpen(t, opts)
		wantCorrupt := uint64(0)
		if off > starts[7] {
			wantCorrupt = 1
		}
		if c := counter(s, "corrupt"); c != wantCorrupt {
			t.Fatalf("cut at %d: corrupt %d, want %d", off, c, wantCorrupt)
		}
		if st, err := os.Stat(p); err != nil || st.Size() != starts[7] {
			t.Fatalf("cut at %d: segment not truncated to %d: %v %v", off, starts[7], st.Size(), err)
		}
		sameSequence(t, readAll(t, mustReader(t, s, "a")), want)
		if off == (starts[7]+end)/2 {
			// After recovery the spool appends and restarts cleanly.
			appendAll(t, s, recs[7:])
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			opts.Metrics = nil
			s = mustOpen(t, opts)
			if c := counter(s, "corrupt"); c != 0 {
				t.Fatalf("second restart: corrupt %d", c)
			}
			sameSequence(t, readAll(t, mustReader(t, s, "a")), recs)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// One flipped byte: a record is lost and counted, every intact record
// (before and after it, in the same segment too) is still delivered. In a
// segment header nothing is lost: the frames verify on their own.
func TestFlippedByte(t *testing.T) {
	recs := records(t, 60)
	dir, segs, starts := closedSpool(t, recs)
	victim := 0 // a record in the middle of a middle segment
	for i := 30; i+1 < len(recs) && victim == 0; i++ {
		if segs[i-1] == segs[i] && segs[i+1] == segs[i] {
			victim = i
		}
	}
	if victim == 0 || segs[victim] == segs[0] || segs[victim] == segs[len(segs)-1] {
		t.Fatalf("no record in the middle of a middle segment: %v", segs)
	}
	for _, tc := range []struct {
		name   string
		at     int64 // offset in the victim's frame; -1: the segment header
		lostTo int   // records lost: [victim, lostTo)
	}{
		{"length", 1, victim + 1},
		{"timestamp", 6, victim + 1},
		{"checksum", 13, victim + 1},
		{"payload", frameHeaderSize + 20, victim + 1},
		{"segment header", -1, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := copyDir(t, dir)
			p := filepath.Join(d, filepath.Base(segPath(dir, segs[victim])))
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			off := starts[victim] + tc.at
			lostFrom, lostTo := victim, tc.lostTo
			if tc.at < 0 { // the frames are found again: nothing lost
				off = 3
				lostFrom, lostTo = 0, 0
			}
			b[off] ^= 0x40
			if err := os.WriteFile(p, b, 0o640); err != nil {
				t.Fatal(err)
			}
			opts := testOptions(d)
			s := mustOpen(t, opts)
			if c := counter(s, "corrupt"); c != 1 {
				t.Fatalf("corrupt %d, want 1", c)
			}
			want := append(append([][]byte{}, recs[:lostFrom]...), recs[lostTo:]...)
			sameSequence(t, readAll(t, mustReader(t, s, "a")), want)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if tc.at < 0 {
				// The header was rewritten: the next Open finds nothing.
				if _, err := os.Stat(p + ".corrupt"); err == nil {
					t.Fatal("segment set aside")
				}
				opts.Metrics = nil
				s = mustOpen(t, opts)
				defer s.Close()
				if c := counter(s, "corrupt"); c != 0 {
					t.Fatalf("second Open: corrupt %d, want 0", c)
				}
			}
		})
	}
}

// Copying the files while a producer appends (what a crash of the disk
// could leave): Open succeeds and delivers intact records only, in order,
// without duplicates, including everything synced before the copy.
func TestCopyMidWrite(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, testOptions(dir))
	recs := records(t, 3000)
	appendAll(t, s, recs[:500])
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, rec := range recs[500:] {
			// Written, not synced: what a copy may catch half of.
			if _, err := s.Append(rec); err != nil {
				t.Errorf("Append: %v", err)
				return
			}
		}
	}()
	copies := make([]string, 0, 3)
	for len(copies) < 3 {
		copies = append(copies, copyDir(t, dir))
		time.Sleep(2 * time.Millisecond)
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, d := range copies {
		c := mustOpen(t, testOptions(d))
		got := readAll(t, mustReader(t, c, "a"))
		if len(got) < 500 {
			t.Fatalf("%d records recovered, want at least the 500 synced", len(got))
		}
		sameSequence(t, got[:500], recs[:500])
		prev := -1
		for _, rec := range got {
			i, err := strconv.Atoi(string(rec[:8]))
			if err != nil || i <= prev || !bytes.Equal(rec, recs[i]) {
				t.Fatalf("record after #%d is not an intact, later record: %.40q", prev, rec)
			}
			prev = i
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// After a crash, a consumer resumes at its last persisted ack; the records
// it had read by the last commit are counted as redelivered. (Segments
// deleted by later, unpersisted acks are not replayed: one segment here.)
func TestCrashRedelivery(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		powerLoss             bool // the marks file is lost: the commit counts
		from                  int
		replayed, redelivered uint64
	}{
		{"kill", false, 80, 23, 0}, // the acks written to the marks file count
		{"power loss", true, 40, 63, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := testOptions(dir)
			opts.SegmentSize = 1 << 20
			s := mustOpen(t, opts)
			recs := records(t, 100)
			appendAll(t, s, recs)
			r := mustReader(t, s, "a")
			readN(t, r, 40, true)
			readN(t, r, 20, false)
			if err := s.Sync(); err != nil { // persists ack=40, read=60
				t.Fatal(err)
			}
			readN(t, r, 20, true) // acked up to 80, in the marks file only
			more := records(t, 3)
			appendAll(t, s, more)
			crash(s) // the 3 records were written before Append returned: kept
			if tc.powerLoss {
				if err := os.Remove(filepath.Join(dir, marksFile)); err != nil {
					t.Fatal(err)
				}
			}

			opts.Metrics = nil
			s = mustOpen(t, opts)
			defer s.Close()
			if got := s.m.redelivered["a"].Get(); got != tc.redelivered {
				t.Fatalf("redelivered %d, want %d", got, tc.redelivered)
			}
			if got := s.m.replayed["a"].Get(); got != tc.replayed {
				t.Fatalf("replayed %d, want %d", got, tc.replayed)
			}
			sameSequence(t, readAll(t, mustReader(t, s, "a")), append(recs[tc.from:], more...))
		})
	}
}

// A segment that cannot be opened is reported; the others are delivered.
func TestUnreadableSegment(t *testing.T) {
	recs := records(t, 40)
	dir, segs, _ := closedSpool(t, recs)
	bad := segs[20]
	p := segPath(dir, bad)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(p, 0o750); err != nil { // opening it for writing fails
		t.Fatal(err)
	}
	s := mustOpen(t, testOptions(dir))
	defer s.Close()
	if c := counter(s, "corrupt"); c != 1 {
		t.Fatalf("corrupt %d, want 1", c)
	}
	var want [][]byte
	for i := range recs {
		if segs[i] != bad {
			want = append(want, recs[i])
		}
	}
	sameSequence(t, readAll(t, mustReader(t, s, "a")), want)
	if s.active.id <= segs[len(segs)-1] {
		t.Fatalf("segment id %d reused", s.active.id)
	}
}

// Unreadable cursors: counted, and every consumer replays the whole spool
// (duplicates rather than loss), every replayed record counted redelivered.
func TestCorruptCursors(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir)
	s := mustOpen(t, opts)
	recs := records(t, 20)
	appendAll(t, s, recs)
	readN(t, mustReader(t, s, "a"), 5, true)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, cursorsFile)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(p, b, 0o640); err != nil {
		t.Fatal(err)
	}
	opts.Metrics = nil
	s = mustOpen(t, opts)
	if c := counter(s, "corrupt"); c != 1 {
		t.Fatalf("corrupt %d, want 1", c)
	}
	// Every replayed record may have been delivered: all are counted.
	if got := s.m.redelivered["a"].Get(); got != uint64(len(recs)) {
		t.Fatalf("redelivered %d, want %d", got, len(recs))
	}
	sameSequence(t, readAll(t, mustReader(t, s, "a")), recs)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A cursors file removed by hand counts the same way.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	opts.Metrics = nil
	s = mustOpen(t, opts)
	defer s.Close()
	if got := s.m.redelivered["a"].Get(); got != uint64(len(recs)) {
		t.Fatalf("cursors missing: redelivered %d, want %d", got, len(recs))
	}
}

// A corrupt region appearing after Open (bit rot) is skipped by readers,
// counted once even with two consumers.
func TestCorruptionAfterOpen(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, testOptions(dir, "a", "b"))
	defer s.Close()
	recs := records(t, 6)
	appendAll(t, s, recs)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	id, off := s.active.id, int64(segHeaderSize+frameHeaderSize+len(recs[0])+frameHeaderSize+5)
	s.mu.Unlock()
	f, err := os.OpenFile(segPath(dir, id), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff}, off); err != nil { // inside record 1's payload
		t.Fatal(err)
	}
	f.Close()
	want := append([][]byte{recs[0]}, recs[2:]...)
	for _, name := range []string{"a", "b"} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r := mustReader(t, s, name)
		var got [][]byte
		for len(got) < len(want) {
			rec, _, err := r.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, bytes.Clone(rec))
		}
		cancel()
		sameSequence(t, got, want)
	}
	if c := counter(s, "corrupt"); c != 1 {
		t.Fatalf("corrupt %d, want 1", c)
	}
}
