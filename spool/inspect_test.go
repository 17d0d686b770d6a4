package spool

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dirContents maps each file of dir to its bytes.
func dirContents(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

// Inspect reports consumers (pending, bytes, handed out, age), segments and
// corrupt regions, on an open spool (whose lock it does not take) and on a
// closed one, and changes nothing.
func TestInspect(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir, "a", "b")
	clock := time.Now().Add(-time.Hour)
	opts.now = func() time.Time { return clock }
	s := mustOpen(t, opts)
	recs := records(t, 60)
	appendAll(t, s, recs)
	ra := mustReader(t, s, "a")
	readN(t, ra, 20, true)
	readN(t, ra, 5, false) // handed out, not acknowledged
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	var segs []uint64
	for _, seg := range s.segs {
		segs = append(segs, seg.id)
	}
	// A flipped payload byte in the middle of a middle segment.
	mid := segPath(dir, segs[len(segs)/2])
	b, _ := os.ReadFile(mid)
	b[segHeaderSize+frameHeaderSize+10] ^= 1
	if err := os.WriteFile(mid, b, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "00000000000000ff.seg.corrupt"), []byte("junk"), 0o640); err != nil {
		t.Fatal(err)
	}

	before := dirContents(t, dir)
	rep, err := Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.LockKnown || rep.LockPID != os.Getpid() {
		t.Errorf("lock holder %d (known %v), want this process %d", rep.LockPID, rep.LockKnown, os.Getpid())
	}
	if len(rep.Consumers) != 2 {
		t.Fatalf("consumers %+v", rep.Consumers)
	}
	a, bb := rep.Consumers[0], rep.Consumers[1]
	if a.Name != "a" || a.Pending != 39 || a.Handed != 5 || a.PendingBytes == 0 {
		t.Errorf("a: %+v, want 39 pending (one record corrupt) of which 5 handed out", a)
	}
	if bb.Name != "b" || bb.Pending != 59 || bb.Handed != 0 {
		t.Errorf("b: %+v, want 59 pending", bb)
	}
	if a.Oldest < 59*time.Minute || a.Oldest > 2*time.Hour {
		t.Errorf("a: oldest %v, want about an hour", a.Oldest)
	}
	if len(rep.Corrupt) != 1 || rep.Corrupt[0].Segment != filepath.Base(mid) {
		t.Errorf("corrupt regions %+v, want one in %s", rep.Corrupt, filepath.Base(mid))
	}
	if len(rep.SetAside) != 1 || len(rep.Segments) < 4 || rep.Records != 59 {
		t.Errorf("set aside %v, %d segments, %d records", rep.SetAside, len(rep.Segments), rep.Records)
	}
	after := dirContents(t, dir)
	for name, b := range before {
		if !bytes.Equal(after[name], b) {
			t.Errorf("Inspect changed %s", name)
		}
	}
	if len(after) != len(before) {
		t.Errorf("Inspect created or removed files: %d, then %d", len(before), len(after))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err = Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.LockPID != 0 || rep.Consumers[0].Pending != 39 || rep.Consumers[0].Handed != 5 {
		t.Errorf("closed spool: pid %d, a %+v", rep.LockPID, rep.Consumers[0])
	}
	if _, err := Inspect(filepath.Join(dir, "nope")); err == nil || !strings.Contains(err.Error(), "cannot inspect spool") {
		t.Errorf("missing dir: %v", err)
	}
}
