package spool

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKeepSurvivesDeletion: a kept segment stays on disk as *.seg.kept
// once every consumer acknowledged it and the spool deleted it; the kept
// file holds the segment's records (replayable by opening a spool on it),
// Inspect lists it, and its id is never reused.
func TestKeepSurvivesDeletion(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir, "a", "b")
	s := mustOpen(t, opts)
	recs := records(t, 60) // several 8 KiB segments
	appendAll(t, s, recs)
	ra, rb := mustReader(t, s, "a"), mustReader(t, s, "b")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var keptPos Pos
	for i := 0; i < 3; i++ {
		_, pos, err := ra.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		keptPos = pos // the third record, in the first segment
	}
	name, err := ra.Keep(keptPos)
	if err != nil || filepath.Dir(name) != dir || !strings.HasSuffix(name, ".seg.kept") {
		t.Fatalf("Keep: %q, %v", name, err)
	}
	if again, err := rb.Keep(keptPos); err != nil || again != name {
		t.Fatalf("Keep again, by another consumer: %q, %v", again, err)
	}
	readN(t, ra, len(recs)-3, true)
	if err := ra.Ack(keptPos); err != nil {
		t.Fatal(err)
	}
	readN(t, rb, len(recs), true)
	if segs := segFiles(t, dir); len(segs) != 1 || segs[0]+keptSuffix == name {
		t.Fatalf("after every consumer acknowledged: segments %v (the kept one must be deleted)", segs)
	}
	if _, err := ra.Keep(keptPos); !errors.Is(err, ErrGone) {
		t.Fatalf("Keep of a deleted segment: %v, want ErrGone", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ra.Keep(keptPos); !errors.Is(err, ErrClosed) {
		t.Fatalf("Keep after Close: %v, want ErrClosed", err)
	}

	// Replaying the kept file: a spool opened on it alone (no cursors)
	// returns its records, the kept one among them.
	replay := t.TempDir()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(replay, strings.TrimSuffix(filepath.Base(name), keptSuffix)), b, 0o640); err != nil {
		t.Fatal(err)
	}
	rs := mustOpen(t, testOptions(replay, "a"))
	got := readAll(t, mustReader(t, rs, "a"))
	rs.Close()
	if len(got) < 3 {
		t.Fatalf("the kept segment replays %d records", len(got))
	}
	sameSequence(t, got, recs[:len(got)])

	rep, err := Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.SetAside) != 1 || rep.SetAside[0] != filepath.Base(name) {
		t.Fatalf("Inspect set aside %v, want %s", rep.SetAside, filepath.Base(name))
	}
	// A spool directory holding only the kept file: the next segment gets
	// a higher id, and the kept file is left alone.
	alone := t.TempDir()
	if err := os.WriteFile(filepath.Join(alone, filepath.Base(name)), b, 0o640); err != nil {
		t.Fatal(err)
	}
	as := mustOpen(t, testOptions(alone, "a"))
	if id := as.active.id; id <= keptPos.seg {
		t.Errorf("new segment %d reuses the kept segment's id range (%d)", id, keptPos.seg)
	}
	if n := len(readAll(t, mustReader(t, as, "a"))); n != 0 {
		t.Errorf("the spool read %d records of the kept file", n)
	}
	as.Close()
}
