package spool

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
)

// alerts returns the synthetic Darktrace lines of testdata/alerts.ndjson.
func alerts(tb testing.TB) [][]byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "alerts.ndjson"))
	if err != nil {
		tb.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) < 5 {
		tb.Fatalf("testdata/alerts.ndjson: %d lines", len(lines))
	}
	return lines
}

// records returns n distinct records built from the synthetic alerts.
func records(tb testing.TB, n int) [][]byte {
	base := alerts(tb)
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, "%08d|%s", i, base[i%len(base)])
	}
	return out
}

// testOptions returns small-spool options for dir; commits are manual
// (Sync) unless the test sets FsyncInterval.
func testOptions(dir string, consumers ...string) Options {
	if len(consumers) == 0 {
		consumers = []string{"a"}
	}
	return Options{
		Dir:           dir,
		MaxSize:       16 << 20,
		SegmentSize:   8 << 10,
		FsyncInterval: time.Hour,
		Consumers:     consumers,
		Metrics:       metrics.NewSet(),
		Log:           zerolog.New(io.Discard),
	}
}

func mustOpen(tb testing.TB, opts Options) *Spool {
	tb.Helper()
	s, err := Open(opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	return s
}

func mustReader(tb testing.TB, s *Spool, name string) *Reader {
	tb.Helper()
	r, err := s.Reader(name)
	if err != nil {
		tb.Fatalf("Reader(%q): %v", name, err)
	}
	return r
}

func appendAll(tb testing.TB, s *Spool, recs [][]byte) {
	tb.Helper()
	for i, rec := range recs {
		if _, err := s.Append(rec); err != nil {
			tb.Fatalf("Append #%d: %v", i, err)
		}
	}
}

// readN reads n records (copies), acknowledging each when ack is set.
func readN(tb testing.TB, r *Reader, n int, ack bool) [][]byte {
	tb.Helper()
	out := make([][]byte, 0, n)
	for len(out) < n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		rec, pos, err := r.Next(ctx)
		cancel()
		if err != nil {
			tb.Fatalf("Next after %d of %d records: %v", len(out), n, err)
		}
		out = append(out, bytes.Clone(rec))
		if ack {
			if err := r.Ack(pos); err != nil {
				tb.Fatalf("Ack: %v", err)
			}
		}
	}
	return out
}

// readAll reads every record available now: Next with a cancelled context
// returns records while there are some and fails only when it would wait.
func readAll(tb testing.TB, r *Reader) [][]byte {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out [][]byte
	for {
		rec, _, err := r.Next(ctx)
		if err == context.Canceled {
			return out
		}
		if err != nil {
			tb.Fatalf("Next: %v", err)
		}
		out = append(out, bytes.Clone(rec))
	}
}

// sameMultiset fails unless got and want hold the same records, counts included.
func sameMultiset(tb testing.TB, got, want [][]byte) {
	tb.Helper()
	key := func(recs [][]byte) []string {
		out := make([]string, len(recs))
		for i, r := range recs {
			out[i] = string(r)
		}
		sort.Strings(out)
		return out
	}
	g, w := key(got), key(want)
	if len(g) != len(w) {
		tb.Fatalf("got %d records, want %d", len(g), len(w))
	}
	for i := range g {
		if g[i] != w[i] {
			tb.Fatalf("record sets differ: got %.40q, want %.40q", g[i], w[i])
		}
	}
}

func sameSequence(tb testing.TB, got, want [][]byte) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			tb.Fatalf("record %d: got %.40q, want %.40q", i, got[i], want[i])
		}
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(tb testing.TB, what string, timeout time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// crash stops s the way kill -9 would: the write buffer is lost, nothing is
// fsynced or persisted; what was written stays in the files.
func crash(s *Spool) {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	s.closed = true
	s.space.Broadcast()
	s.wakeLocked()
	for _, seg := range append(s.unsynced, s.active) {
		if seg.f != nil {
			_ = seg.f.Close()
			seg.f = nil
		}
	}
	s.buf = nil
	var readers []*Reader
	for _, c := range s.cons {
		if c.r != nil {
			readers = append(readers, c.r)
		}
	}
	s.mu.Unlock()
	for _, r := range readers {
		r.shut()
	}
	s.m.unregister()
	_ = s.marks.close() // what Mark wrote stays, as in the page cache
	_ = s.lockF.Close()
}

// segFiles lists the segment files of dir.
func segFiles(tb testing.TB, dir string) []string {
	tb.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		tb.Fatal(err)
	}
	sort.Strings(m)
	return m
}

// copyDir copies the regular files of src into a new temporary directory,
// skipping the lock file.
func copyDir(tb testing.TB, src string) string {
	tb.Helper()
	dst := tb.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || e.Name() == "lock" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o640); err != nil {
			tb.Fatal(err)
		}
	}
	return dst
}

func counter(s *Spool, name string) uint64 {
	switch name {
	case "corrupt":
		return s.m.corrupt.Get()
	case "dropped":
		return s.m.dropped.Get()
	case "write_errors":
		return s.m.writeErrors.Get()
	}
	panic("unknown counter " + name)
}
