package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/internal/alloctest"
)

// Two producers, two consumers at different speeds: each consumer gets every
// record once, each producer's records in order, across many segments; the
// segments are deleted once both have acknowledged them.
func TestRoundTripTwoConsumers(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, testOptions(dir, "fast", "slow"))
	defer s.Close()
	const n = 1200
	recs := records(t, n)

	var wg sync.WaitGroup
	for p := 0; p < 2; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := p; i < n; i += 2 {
				if _, err := s.Append(recs[i]); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
			}
		}(p)
	}
	fast, slow := mustReader(t, s, "fast"), mustReader(t, s, "slow")
	var gotFast, gotSlow [][]byte
	wg.Add(2)
	go func() { defer wg.Done(); gotFast = readN(t, fast, n, true) }()
	go func() {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for len(gotSlow) < n {
			// Reads in batches, acknowledging each batch with its last position.
			var last Pos
			for i := 0; i < 50 && len(gotSlow) < n; i++ {
				rec, pos, err := slow.Next(ctx)
				if err != nil {
					t.Errorf("slow Next: %v", err)
					return
				}
				gotSlow, last = append(gotSlow, append([]byte(nil), rec...)), pos
			}
			time.Sleep(time.Millisecond)
			if err := slow.Ack(last); err != nil {
				t.Errorf("slow Ack: %v", err)
				return
			}
		}
	}()
	wg.Wait()
	if t.Failed() {
		return
	}
	sameMultiset(t, gotFast, recs)
	sameMultiset(t, gotSlow, recs)
	for _, got := range [][][]byte{gotFast, gotSlow} {
		next := [2]int{0, 1}
		for _, rec := range got {
			var i int
			for _, c := range rec[:8] {
				i = i*10 + int(c-'0')
			}
			if i != next[i%2] {
				t.Fatalf("producer %d: got record %d, want %d", i%2, i, next[i%2])
			}
			next[i%2] += 2
		}
	}
	if files := segFiles(t, dir); len(files) != 1 {
		t.Fatalf("after every ack: %d segment files, want only the active one", len(files))
	}
	if st := s.Stats(); st.Segments != 1 || st.Bytes != s.active.size || st.OldestAge != 0 {
		t.Fatalf("stats after every ack: %+v (active size %d)", st, s.active.size)
	}
}

// A segment is deleted only when every consumer has acknowledged all of it.
func TestSegmentDeletedAfterAllAcked(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, testOptions(dir, "a", "b"))
	defer s.Close()
	recs := records(t, 60) // several 8 KiB segments
	appendAll(t, s, recs)
	before := len(segFiles(t, dir))
	if before < 4 {
		t.Fatalf("%d segment files, want several", before)
	}
	readN(t, mustReader(t, s, "a"), len(recs), true)
	if got := len(segFiles(t, dir)); got != before {
		t.Fatalf("after one consumer acked: %d files, want %d", got, before)
	}
	rb := mustReader(t, s, "b")
	readN(t, rb, 30, true)
	mid := len(segFiles(t, dir))
	if mid >= before || mid <= 1 {
		t.Fatalf("after b acked half: %d files (before %d)", mid, before)
	}
	readN(t, rb, 30, true)
	if got := len(segFiles(t, dir)); got != 1 {
		t.Fatalf("after both acked: %d files, want 1", got)
	}
}

// After Close, a reopened spool replays exactly what each consumer had not
// acknowledged, and counts what had been read but not acknowledged.
func TestRestartReplaysUnacked(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir, "a", "b")
	s := mustOpen(t, opts)
	recs := records(t, 200)
	appendAll(t, s, recs)
	ra, rb := mustReader(t, s, "a"), mustReader(t, s, "b")
	readN(t, ra, 150, true)
	readN(t, ra, 20, false) // read, never acknowledged
	readN(t, rb, 40, true)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	opts.Metrics = nil
	s = mustOpen(t, opts)
	defer s.Close()
	for _, tc := range []struct {
		name                  string
		from                  int
		replayed, redelivered uint64
	}{
		{"a", 150, 50, 20},
		{"b", 40, 160, 0},
	} {
		if got := s.m.replayed[tc.name].Get(); got != tc.replayed {
			t.Errorf("%s: replayed %d, want %d", tc.name, got, tc.replayed)
		}
		if got := s.m.redelivered[tc.name].Get(); got != tc.redelivered {
			t.Errorf("%s: redelivered %d, want %d", tc.name, got, tc.redelivered)
		}
		got := readAll(t, mustReader(t, s, tc.name))
		sameMultiset(t, got, recs[tc.from:])
		sameSequence(t, got, recs[tc.from:])
	}
	if c := counter(s, "corrupt"); c != 0 {
		t.Fatalf("clean restart counted %d corrupt", c)
	}
}

// A consumer new to an existing spool starts at its end; one no longer
// configured is forgotten once it has nothing pending.
func TestConsumerSetChanges(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir, "old", "kept")
	s := mustOpen(t, opts)
	appendAll(t, s, records(t, 50))
	readN(t, mustReader(t, s, "kept"), 50, true)
	readN(t, mustReader(t, s, "old"), 50, true)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	opts.Consumers, opts.Metrics = []string{"kept", "new"}, nil
	s = mustOpen(t, opts)
	defer s.Close()
	if n := len(segFiles(t, dir)); n != 1 {
		t.Fatalf("%d segment files after the consumers caught up, want 1", n)
	}
	if _, ok := s.byName["old"]; ok {
		t.Fatal("a consumer no output claims, with nothing pending, was kept")
	}
	fresh := records(t, 3)
	appendAll(t, s, fresh)
	sameSequence(t, readAll(t, mustReader(t, s, "new")), fresh)
}

func TestReaderAPI(t *testing.T) {
	s := mustOpen(t, testOptions(t.TempDir(), "a"))
	if _, err := s.Reader("nope"); !errors.Is(err, ErrUnknownConsumer) {
		t.Fatalf("unknown consumer: %v", err)
	}
	r := mustReader(t, s, "a")
	if _, err := s.Reader("a"); !errors.Is(err, ErrReaderInUse) {
		t.Fatalf("second reader: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	if _, _, err := r.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next on empty spool: %v", err)
	}
	cancel()
	if _, _, err := r.TryNext(); !errors.Is(err, ErrNotReady) {
		t.Fatalf("TryNext on empty spool: %v", err)
	}
	appendAll(t, s, records(t, 2))
	got := readN(t, r, 1, false)
	if rec, _, err := r.TryNext(); err != nil || !bytes.Equal(rec, records(t, 2)[1]) {
		t.Fatalf("TryNext with a record ready = %q, %v", rec, err)
	}
	if _, _, err := r.TryNext(); !errors.Is(err, ErrNotReady) {
		t.Fatalf("TryNext after the last record: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.TryNext(); !errors.Is(err, ErrClosed) {
		t.Fatalf("TryNext on a closed reader: %v", err)
	}
	r = mustReader(t, s, "a")
	sameSequence(t, readN(t, r, 1, false), got)
	if err := r.Ack(Pos{seg: r.seg, off: r.off + 1}); !errors.Is(err, ErrAckAhead) {
		t.Fatalf("ack ahead: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = mustReader(t, s, "a") // starts again after the last ack
	sameSequence(t, readN(t, r, 1, false), got)
	if _, err := s.Append(make([]byte, s.maxRec+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize record: %v", err)
	}
	if _, err := s.Append(make([]byte, s.maxRec)); err != nil {
		t.Fatalf("largest record: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := r.Next(context.Background())
		for err == nil {
			_, _, err = r.Next(context.Background())
		}
		done <- err
	}()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Next after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake a waiting Next")
	}
	if _, err := s.Append([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
}

// A reader waiting for data wakes on the next Append, without waiting for
// a commit to write the buffer.
func TestNextWakesOnAppend(t *testing.T) {
	s := mustOpen(t, testOptions(t.TempDir()))
	defer s.Close()
	r := mustReader(t, s, "a")
	for _, rec := range records(t, 3) {
		got := make(chan []byte, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			b, _, err := r.Next(ctx)
			if err != nil {
				t.Error(err)
			}
			got <- append([]byte(nil), b...)
		}()
		waitFor(t, "the reader to wait", 5*time.Second, func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.notifyTaken
		})
		appendAll(t, s, [][]byte{rec})
		if b := <-got; string(b) != string(rec) {
			t.Fatalf("got %.40q, want %.40q", b, rec)
		}
	}
}

func TestOptionsValidation(t *testing.T) {
	f := func(name string, mod func(*Options), want string) {
		t.Helper()
		opts := testOptions(t.TempDir(), "a")
		mod(&opts)
		_, err := Open(opts)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, want)
		}
	}
	f("no dir", func(o *Options) { o.Dir = "" }, "dir is required")
	f("bad when_full", func(o *Options) { o.WhenFull = "drop_newest" }, `when_full "drop_newest"`)
	f("no consumer", func(o *Options) { o.Consumers = nil }, "at least one consumer")
	f("duplicate", func(o *Options) { o.Consumers = []string{"x", "x"} }, `duplicate consumer "x"`)
	f("empty name", func(o *Options) { o.Consumers = []string{""} }, "invalid consumer name")
	f("tiny", func(o *Options) { o.MaxSize = 1000 }, "max_size 1000 too small")
	f("negative interval", func(o *Options) { o.FsyncInterval = -time.Second }, "invalid fsync_interval")
}

func TestDirectoryLock(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, testOptions(dir))
	if _, err := Open(testOptions(dir)); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, testOptions(dir)).Close()
}

// The background commit fsyncs and persists cursors without Sync.
func TestGroupCommitLoop(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir)
	opts.FsyncInterval = 10 * time.Millisecond
	s := mustOpen(t, opts)
	appendAll(t, s, records(t, 5))
	readN(t, mustReader(t, s, "a"), 3, true)
	waitFor(t, "cursors persisted", 5*time.Second, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.cons[0].persistedAck == s.cons[0].ack && !s.activeDirty && len(s.buf) == 0
	})
	crash(s)
	opts.Metrics = nil
	s = mustOpen(t, opts)
	defer s.Close()
	if got := readAll(t, mustReader(t, s, "a")); len(got) != 2 {
		t.Fatalf("after crash: %d records replayed, want 2", len(got))
	}
}

func TestOldestAge(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	opts := testOptions(t.TempDir(), "a", "b")
	opts.now = func() time.Time { return now }
	s := mustOpen(t, opts)
	defer s.Close()
	recs := records(t, 40)
	for i, rec := range recs {
		appendAll(t, s, [][]byte{rec})
		if i%10 == 9 {
			now = now.Add(5 * time.Second)
		}
	}
	if age := s.Stats().OldestAge; age != 20*time.Second {
		t.Fatalf("age %v, want 20s", age)
	}
	readN(t, mustReader(t, s, "a"), 40, true)
	rb := mustReader(t, s, "b")
	readN(t, rb, 25, true) // the oldest unacked was appended at +10s
	if age := s.Stats().OldestAge; age != 10*time.Second {
		t.Fatalf("age %v, want 10s", age)
	}
	readN(t, rb, 15, true)
	if age := s.Stats().OldestAge; age != 0 {
		t.Fatalf("age %v with nothing pending, want 0", age)
	}
}

// Append and Next+Ack allocate nothing in steady state.
func TestNoAllocs(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.MaxSize, opts.SegmentSize = 64<<20, 4<<20
	s := mustOpen(t, opts)
	defer s.Close()
	rec := records(t, 1)[0]
	r := mustReader(t, s, "a")
	ctx := context.Background()
	step := func() {
		if _, err := s.Append(rec); err != nil {
			t.Fatal(err)
		}
		_, pos, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Ack(pos); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 100; i++ {
		step()
	}
	appendOnly := func() {
		if _, err := s.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	if a := alloctest.PerRun(1000, appendOnly); a != 0 {
		t.Errorf("Append: %v allocs per record", a)
	}
	readN(t, r, 1001, true)
	if a := alloctest.PerRun(1000, step); a != 0 {
		t.Errorf("Append+Next+Ack: %v allocs per record", a)
	}
}

// The real Darktrace samples survive the spool byte for byte, across a
// restart.
func TestRealSamplesRoundTrip(t *testing.T) {
	const corpus = "../../shared/testdata/darktrace-samples"
	paths, _ := filepath.Glob(filepath.Join(corpus, "*.json"))
	if len(paths) == 0 {
		t.Skipf("no samples in %s (the shared corpus is not checked out here)", corpus)
	}
	var recs [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, b)
	}
	dir := t.TempDir()
	opts := testOptions(dir)
	opts.SegmentSize = 1 << 20
	s := mustOpen(t, opts)
	appendAll(t, s, recs)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	opts.Metrics = nil
	s = mustOpen(t, opts)
	defer s.Close()
	sameSequence(t, readAll(t, mustReader(t, s, "a")), recs)
}

// TestAppendPosAndSkip: a consumer that got records by other means skips
// them with the positions AppendPos returned, and reads on from there;
// a restart replays only what follows its last Skip.
func TestAppendPosAndSkip(t *testing.T) {
	dir := t.TempDir()
	open := func() *Spool {
		s, err := Open(Options{Dir: dir, SegmentSize: 4096, MaxSize: 1 << 20, Consumers: []string{"a", "b"}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	rec := func(i int) []byte { return []byte(fmt.Sprintf("record %04d %s", i, strings.Repeat("x", 200))) }
	var pos []Pos
	for i := range 60 { // several segments
		p, n, err := s.AppendPos(rec(i))
		if err != nil || n != 1 {
			t.Fatalf("AppendPos: %d, %v", n, err)
		}
		if len(pos) > 0 && !pos[len(pos)-1].Before(p) {
			t.Fatalf("positions not increasing: %v then %v", pos[len(pos)-1], p)
		}
		pos = append(pos, p)
	}
	ra, err := s.Reader("a")
	if err != nil {
		t.Fatal(err)
	}
	if err := ra.Skip(pos[41]); err != nil { // a got 0..41 in memory
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got, p, err := ra.Next(ctx)
	if err != nil || string(got) != string(rec(42)) || p != pos[42] {
		t.Fatalf("after Skip, Next = %q, %v, %v; want record 42", got, p, err)
	}
	if err := ra.Skip(pos[10]); err != nil { // behind the read position: only an ack
		t.Fatal(err)
	}
	if got, _, _ := ra.Next(ctx); string(got) != string(rec(43)) {
		t.Fatalf("a Skip behind the read position moved the reader: got %q", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open()
	defer s.Close()
	ra, err = s.Reader("a")
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := ra.Next(ctx); err != nil || string(got) != string(rec(42)) {
		t.Fatalf("after restart a replays from %q (%v), want record 42", got, err)
	}
}
