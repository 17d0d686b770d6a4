package spool

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/internal/testdisk"
)

// diskRecords returns n distinct records of about 1.5 KB, a full-size
// Darktrace alert.
func diskRecords(tb testing.TB, n int) [][]byte {
	recs := records(tb, n)
	for i, r := range recs {
		recs[i] = append(r, bytes.Repeat([]byte("x"), max(1536-len(r), 0))...)
	}
	return recs
}

// diskOptions: the production defaults (max_size 10 GiB, so segments of
// 64 MiB, far more than the disk) on dir.
func diskOptions(dir, whenFull string) Options {
	opts := testOptions(filepath.Join(dir, "spool"), "a")
	opts.MaxSize, opts.SegmentSize, opts.FsyncInterval, opts.WhenFull = 10<<30, 0, 50*time.Millisecond, whenFull
	return opts
}

// appendBlocks appends recs in calls of about 64 KiB, as the pipeline
// does, in a new goroutine; the channel gets the first error or nil.
func appendBlocks(s *Spool, recs [][]byte) <-chan error {
	done := make(chan error, 1)
	go func() {
		for len(recs) > 0 {
			n, err := s.Append(recs[:min(len(recs), 40)]...)
			if err != nil {
				done <- err
				return
			}
			recs = recs[n:]
		}
		done <- nil
	}()
	return done
}

// TestSmallDiskDeliveredSpoolShrinks reproduces issue 10 item 1 in bounded
// form: on an 8 MiB disk, with max_size and segments far larger, a consumer
// that keeps up lets appends go on for three times the disk, in calls of
// about 64 KiB as the pipeline makes them. With block nothing is dropped;
// with drop_oldest a full disk may drop what the consumer had not read yet,
// counted exactly. Close reports nothing lost, and the spool opens again
// with nothing to replay.
func TestSmallDiskDeliveredSpoolShrinks(t *testing.T) {
	for _, whenFull := range []string{WhenFullBlock, WhenFullDropOldest} {
		t.Run(whenFull, func(t *testing.T) {
			disk := testdisk.Small(t)
			opts := diskOptions(disk, whenFull)
			s := mustOpen(t, opts)
			recs := diskRecords(t, 16000) // ~24 MiB, three times the disk
			r := mustReader(t, s, "a")
			var got [][]byte
			if whenFull == WhenFullBlock {
				done := appendBlocks(s, recs)
				// readN fails if a record takes over 5 s: appends stalled.
				got = readN(t, r, len(recs), true)
				if err := <-done; err != nil {
					t.Fatalf("Append: %v", err)
				}
			} else {
				got = readWhileAppending(t, s, r, recs)
			}
			dropped := int(counter(s, "dropped"))
			if len(got)+dropped != len(recs) || (whenFull == WhenFullBlock && dropped != 0) {
				t.Fatalf("delivered %d + dropped %d, want %d", len(got), dropped, len(recs))
			}
			checkOrdered(t, got, recs)
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			opts.Metrics = nil
			s = mustOpen(t, opts)
			defer s.Close()
			if extra := readAll(t, mustReader(t, s, "a")); len(extra) != 0 {
				t.Fatalf("%d delivered records replayed", len(extra))
			}
		})
	}
}

// readWhileAppending appends recs (appendBlocks) while r reads and
// acknowledges every record, until every record is read or dropped.
func readWhileAppending(t *testing.T, s *Spool, r *Reader, recs [][]byte) [][]byte {
	t.Helper()
	done := appendBlocks(s, recs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan [][]byte, 1)
	var read atomic.Int64
	go func() {
		var out [][]byte
		for {
			rec, pos, err := r.Next(ctx)
			if err != nil {
				got <- out
				return
			}
			out = append(out, bytes.Clone(rec))
			read.Add(1)
			_ = r.Ack(pos)
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("appends stalled (%d bytes, %d segments)", s.Stats().Bytes, s.Stats().Segments)
	}
	waitFor(t, "every record read or dropped", 10*time.Second, func() bool {
		return int(read.Load())+int(counter(s, "dropped")) >= len(recs)
	})
	cancel()
	return <-got
}

// checkOrdered fails unless got is a subsequence of want.
func checkOrdered(t *testing.T, got, want [][]byte) {
	t.Helper()
	j := 0
	for i, g := range got {
		for j < len(want) && !bytes.Equal(g, want[j]) {
			j++
		}
		if j == len(want) {
			t.Fatalf("record %d (%.20q) out of order or unknown", i, g)
		}
		j++
	}
}

// fillDisk appends records until an Append waits for disk space (block),
// then releases it with StopWaiting. It returns the records accepted.
func fillDisk(t *testing.T, s *Spool) [][]byte {
	t.Helper()
	recs := diskRecords(t, 8000) // ~12 MiB, more than the disk
	var accepted [][]byte
	done := make(chan struct{})
	go func() {
		defer close(done)
		for len(recs) > 0 {
			n, err := s.Append(recs[:min(len(recs), 40)]...)
			accepted = append(accepted, recs[:n]...)
			recs = recs[n:]
			if err != nil {
				if !errors.Is(err, ErrFull) {
					t.Errorf("Append: %v", err)
				}
				return
			}
		}
	}()
	waitFor(t, "an Append waiting for disk space", 30*time.Second, func() bool { return s.Stats().Blocked > 0 })
	s.StopWaiting()
	<-done
	return accepted
}

// A full disk, at start too, is a full spool: Open works on it; with block,
// Append waits until the consumer acknowledges (then space comes back) and
// nothing is lost; with drop_oldest it drops and counts exactly.
func TestFullDiskStartup(t *testing.T) {
	for _, whenFull := range []string{WhenFullBlock, WhenFullDropOldest} {
		t.Run(whenFull, func(t *testing.T) {
			disk := testdisk.Small(t)
			opts := diskOptions(disk, WhenFullBlock)
			s := mustOpen(t, opts)
			kept := fillDisk(t, s)
			crash(s) // kill -9 on a full disk

			opts.Metrics, opts.WhenFull = nil, whenFull
			s = mustOpen(t, opts)
			defer s.Close()
			more := diskRecords(t, 1000)
			for i := range more {
				more[i] = append([]byte("new-"), more[i]...)
			}
			done := appendBlocks(s, more)
			r := mustReader(t, s, "a")
			if whenFull == WhenFullBlock {
				waitFor(t, "an Append waiting for disk space", 10*time.Second, func() bool { return s.Stats().Blocked > 0 })
				sameSequence(t, readN(t, r, len(kept)+len(more), true), append(kept, more...))
				if err := <-done; err != nil {
					t.Fatalf("Append: %v", err)
				}
				return
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Append: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("drop_oldest appends stalled on a full disk")
			}
			got := readAll(t, r)
			dropped := int(counter(s, "dropped"))
			if dropped == 0 || len(got)+dropped != len(kept)+len(more) {
				t.Fatalf("delivered %d + dropped %d, want %d", len(got), dropped, len(kept)+len(more))
			}
			sameSequence(t, got, append(kept, more...)[dropped:])
		})
	}
}

// Space freed from outside (another file deleted) lets a waiting Append go
// on without any acknowledgement.
func TestFullDiskRecoversWhenSpaceFrees(t *testing.T) {
	disk := testdisk.Small(t)
	filler := filepath.Join(disk, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break // the disk is full
		}
	}
	f.Close()
	s := mustOpen(t, diskOptions(disk, WhenFullBlock)) // on a full disk
	defer s.Close()
	recs := records(t, 100)
	done := make(chan error, 1)
	go func() { _, err := s.Append(recs...); done <- err }()
	waitFor(t, "an Append waiting for disk space", 10*time.Second, func() bool { return s.Stats().Blocked > 0 })
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Append still waiting after space was freed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if rec, _, err := mustReader(t, s, "a").Next(ctx); err != nil || string(rec) != string(recs[0]) {
		t.Fatalf("Next: %.40q, %v", rec, err)
	}
}
