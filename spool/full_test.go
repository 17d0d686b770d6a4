package spool

import (
	"errors"
	"testing"
	"time"
)

func smallSpool(dir, whenFull string) Options {
	opts := testOptions(dir, "a")
	opts.MaxSize = 64 << 10 // segments of 16 KiB
	opts.WhenFull = whenFull
	return opts
}

// With when_full=block, Append waits while the spool is full and resumes
// once the consumer acknowledges; nothing is lost or reordered.
func TestFullBlocks(t *testing.T) {
	s := mustOpen(t, smallSpool(t.TempDir(), WhenFullBlock))
	defer s.Close()
	const n = 400 // ~290 KiB, several times the spool
	recs := records(t, n)
	done := make(chan error, 1)
	go func() {
		for _, rec := range recs {
			if _, err := s.Append(rec); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	waitFor(t, "a blocked Append", 5*time.Second, func() bool { return s.Stats().Blocked == 1 })
	if b := s.Blocked(); b != 1 {
		t.Fatalf("Blocked() = %d with an Append waiting", b)
	}
	if st := s.Stats(); st.Bytes > s.opts.MaxSize {
		t.Fatalf("spool holds %d bytes, max %d", st.Bytes, s.opts.MaxSize)
	}
	select {
	case err := <-done:
		t.Fatalf("Append finished on a full spool: %v", err)
	default:
	}
	got := readN(t, mustReader(t, s, "a"), n, true)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Append still blocked after every record was acknowledged")
	}
	sameSequence(t, got, recs)
	if b := s.Blocked(); b != 0 {
		t.Fatalf("Blocked() = %d once every Append returned", b)
	}
	if s.m.blocked.Get() <= 0 {
		t.Fatal("blocked time not counted")
	}
	if d := counter(s, "dropped"); d != 0 {
		t.Fatalf("block mode dropped %d", d)
	}
}

// Close releases an Append blocked on a full spool.
func TestFullBlockedAppendClosed(t *testing.T) {
	s := mustOpen(t, smallSpool(t.TempDir(), WhenFullBlock))
	recs := records(t, 400)
	done := make(chan error, 1)
	go func() {
		for _, rec := range recs {
			if _, err := s.Append(rec); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	waitFor(t, "a blocked Append", 5*time.Second, func() bool { return s.Stats().Blocked == 1 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("blocked Append returned %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release a blocked Append")
	}
}

// With when_full=drop_oldest, Append never waits; every record is either
// delivered or counted as dropped, and the survivors are the newest ones.
func TestFullDropsOldest(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, smallSpool(dir, WhenFullDropOldest))
	defer s.Close()
	r := mustReader(t, s, "a")
	first := records(t, 500)
	appendAll(t, s, first[:100])
	readN(t, r, 100, true) // acknowledged: never counted as dropped
	if st := s.Stats(); st.Segments != 1 {
		t.Fatalf("%d segments after acking everything", st.Segments)
	}
	recs := first[100:]
	start := time.Now()
	appendAll(t, s, recs)
	if time.Since(start) > 5*time.Second {
		t.Fatal("drop_oldest appends were slow")
	}
	if st := s.Stats(); st.Bytes > s.opts.MaxSize {
		t.Fatalf("spool holds %d bytes, max %d", st.Bytes, s.opts.MaxSize)
	}
	dropped := int(counter(s, "dropped"))
	if dropped == 0 {
		t.Fatal("nothing counted as dropped")
	}
	got := readAll(t, r)
	if len(got)+dropped != len(recs) {
		t.Fatalf("delivered %d + dropped %d != appended %d", len(got), dropped, len(recs))
	}
	sameSequence(t, got, recs[dropped:])
}

// A reader in the middle of a segment that gets dropped continues with the
// oldest remaining segment.
func TestDropUnderReader(t *testing.T) {
	s := mustOpen(t, smallSpool(t.TempDir(), WhenFullDropOldest))
	r := mustReader(t, s, "a")
	recs := records(t, 400)
	appendAll(t, s, recs[:10])
	readN(t, r, 5, false)
	appendAll(t, s, recs[10:])
	dropped := int(counter(s, "dropped"))
	got := readAll(t, r)
	// The 5 records read are in the consumer's hands: not dropped, unless
	// it never acknowledges them (then Close counts them).
	if 5+len(got)+dropped != len(recs) {
		t.Fatalf("read 5 + delivered %d + dropped %d != %d", len(got), dropped, len(recs))
	}
	sameSequence(t, got, recs[5+dropped:])
	var lost *LostError
	if err := s.Close(); !errors.As(err, &lost) || lost.Records != 5 {
		t.Fatalf("Close: %v, want 5 records lost", err)
	}
	if d := int(counter(s, "dropped")); d != dropped+5 {
		t.Fatalf("dropped %d after Close, want %d", d, dropped+5)
	}
}
