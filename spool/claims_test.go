package spool

import (
	"testing"
)

// reopen closes s and opens dir again with consumers and renames.
func reopen(t *testing.T, s *Spool, opts Options, rename map[string]string, consumers ...string) (*Spool, Options) {
	t.Helper()
	if s != nil {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	opts.Consumers, opts.Rename, opts.Metrics = consumers, rename, nil
	return mustOpen(t, opts), opts
}

// Renaming a consumer with Rename hands its backlog over: the new name
// resumes where the old one stood, counted as replayed; the same Rename at
// the next Open is a no-op.
func TestRenameHandsBacklogOver(t *testing.T) {
	dir := t.TempDir()
	s, opts := reopen(t, nil, testOptions(dir), nil, "a", "other")
	recs := records(t, 50)
	appendAll(t, s, recs)
	readN(t, mustReader(t, s, "a"), 10, true)
	readN(t, mustReader(t, s, "other"), 50, true)
	s, opts = reopen(t, s, opts, map[string]string{"a": "b"}, "b", "other")
	if got := s.m.replayed["b"].Get(); got != 40 {
		t.Fatalf("replayed %d, want 40", got)
	}
	if _, ok := s.byName["a"]; ok {
		t.Fatal("the old name is still a consumer")
	}
	sameSequence(t, readN(t, mustReader(t, s, "b"), 20, true), recs[10:30])
	s, _ = reopen(t, s, opts, map[string]string{"a": "b"}, "b", "other")
	defer s.Close()
	sameSequence(t, readAll(t, mustReader(t, s, "b")), recs[30:])
}

// A consumer no output claims keeps its backlog (not what is appended
// later), reported by CheckConsumers; a Rename at a later Open hands it to
// the new name even though that name already has a cursor of its own: the
// backlog comes first, then its own records, none twice.
func TestUnclaimedThenRenamed(t *testing.T) {
	dir := t.TempDir()
	s, opts := reopen(t, nil, testOptions(dir), nil, "a")
	recs := records(t, 90)
	appendAll(t, s, recs[:40])
	readN(t, mustReader(t, s, "a"), 10, true)

	s, opts = reopen(t, s, opts, nil, "b") // renamed without spool.rename
	if c := s.byName["a"]; c == nil || c.slot >= 0 {
		t.Fatal("the old consumer's cursor was not kept unclaimed")
	}
	if _, err := s.Reader("a"); err == nil {
		t.Fatal("a reader for an unclaimed consumer")
	}
	appendAll(t, s, recs[40:60])
	rb := mustReader(t, s, "b")
	sameSequence(t, readN(t, rb, 15, true), recs[40:55])

	s, opts = reopen(t, s, opts, nil, "b") // still unclaimed: the backlog has not grown
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	un, err := CheckConsumers(dir, []string{"b"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(un) != 1 || un[0].Name != "a" || un[0].Pending != 30 || un[0].PendingBytes == 0 {
		t.Fatalf("CheckConsumers: %+v, want a with 30 pending", un)
	}
	if un, _ := CheckConsumers(dir, []string{"b"}, map[string]string{"a": "b"}); len(un) != 0 {
		t.Fatalf("CheckConsumers with the rename: %+v, want none", un)
	}

	s, opts = reopen(t, nil, opts, map[string]string{"a": "b"}, "b")
	if got := s.m.replayed["b"].Get(); got != 30+5 {
		t.Fatalf("replayed %d, want the 30 of the backlog and b's own 5", got)
	}
	appendAll(t, s, recs[60:90])
	if err := s.Sync(); err != nil { // on disk (a crash loses the write buffer)
		t.Fatal(err)
	}
	want := append(append([][]byte{}, recs[10:40]...), recs[55:]...)
	rb = mustReader(t, s, "b")
	sameSequence(t, readN(t, rb, 20, true), want[:20]) // part of the backlog
	crash(s)                                           // the gap survives a crash

	s, _ = reopen(t, nil, opts, map[string]string{"a": "b"}, "b")
	defer s.Close()
	// Resumed at the last ack, which the marks file kept: the rest of the
	// backlog, then b's own records, the gap still skipped.
	got := readAll(t, mustReader(t, s, "b"))
	if len(got) != len(want)-20 {
		t.Fatalf("after the crash b read %d records, want %d", len(got), len(want)-20)
	}
	sameSequence(t, got, want[20:])
	if r, d := s.m.replayed["b"].Get(), s.m.redelivered["b"].Get(); r != uint64(len(want)-20) || d != 0 {
		t.Fatalf("replayed %d, redelivered %d; want %d, 0", r, d, len(want)-20)
	}
	if _, ok := s.byName["a"]; ok {
		t.Fatal("the old consumer is still there")
	}
}

// A Rename between two consumers of the same run cannot tell their records
// apart: it is refused, and the old cursor stays unclaimed.
func TestRenameRefused(t *testing.T) {
	dir := t.TempDir()
	s, opts := reopen(t, nil, testOptions(dir), nil, "a", "b")
	appendAll(t, s, records(t, 20))
	readN(t, mustReader(t, s, "b"), 20, true)
	s, _ = reopen(t, s, opts, map[string]string{"a": "b"}, "b")
	defer s.Close()
	if c := s.byName["a"]; c == nil || c.slot >= 0 {
		t.Fatal("a refused rename did not keep the old cursor unclaimed")
	}
	if got := len(readAll(t, mustReader(t, s, "b"))); got != 0 {
		t.Fatalf("b read %d records, want none (it had delivered all)", got)
	}
}

// An unclaimed backlog never blocks appends: when the spool needs room,
// its segments go first, counted as dropped, and once it has nothing left
// the consumer is forgotten.
func TestUnclaimedDroppedWhenFull(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir, "gone", "out")
	opts.MaxSize, opts.SegmentSize = 64<<10, 8<<10
	s := mustOpen(t, opts)
	recs := records(t, 300)
	n := 0
	for ; n < len(recs) && s.Stats().Bytes < 40<<10; n++ {
		appendAll(t, s, recs[n:n+1])
	}
	readN(t, mustReader(t, s, "out"), n, true)
	s, _ = reopen(t, s, opts, nil, "out")
	defer s.Close()
	if got := s.unclaimedRecords(); got != int64(n) {
		t.Fatalf("dtrelay_spool_unclaimed_records %d, want %d", got, n)
	}
	r := mustReader(t, s, "out")
	for i := range recs { // far more than fits beside the backlog
		appendAll(t, s, recs[i:i+1])
		readN(t, r, 1, true)
	}
	if d := counter(s, "dropped"); d != uint64(n) {
		t.Fatalf("dropped %d, want the %d records of the unclaimed backlog", d, n)
	}
	s.mu.Lock()
	_, kept := s.byName["gone"]
	s.mu.Unlock()
	if kept || s.unclaimedRecords() != 0 {
		t.Fatalf("an unclaimed consumer with nothing left was kept (%d records)", s.unclaimedRecords())
	}
}

// Owner tells a record's consumer index in the run that appended it, so
// that masks kept in records survive a change of order.
func TestOwnerAcrossReorder(t *testing.T) {
	dir := t.TempDir()
	s, opts := reopen(t, nil, testOptions(dir), nil, "a", "b")
	appendAll(t, s, records(t, 3))
	s, _ = reopen(t, s, opts, map[string]string{"a": "c"}, "b", "c")
	defer s.Close()
	appendAll(t, s, records(t, 3))
	for _, tc := range []struct {
		name string
		want []int
	}{
		{"b", []int{1, 1, 1, 0, 0, 0}},
		{"c", []int{0, 0, 0, 1, 1, 1}}, // renamed from a
	} {
		r := mustReader(t, s, tc.name)
		for i, want := range tc.want {
			_, pos, err := r.Next(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got, known := r.Owner(pos); !known || got != want {
				t.Fatalf("%s record %d: owner %d (known %v), want %d", tc.name, i, got, known, want)
			}
		}
	}
}
