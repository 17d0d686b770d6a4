package spool

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// segmentBytes encodes recs as segment id 1, the way the writer does.
func segmentBytes(recs [][]byte) []byte {
	created := time.Date(2024, 8, 5, 3, 34, 46, 0, time.UTC).UnixNano()
	b := appendSegHeader(nil, 1, created)
	for i, rec := range recs {
		b = appendFrame(b, rec, created+int64(i)*int64(time.Millisecond))
	}
	return b
}

// FuzzOpen feeds arbitrary bytes as a segment file (and as the cursors
// file): Open must not panic or hang, every record it delivers must be one
// whose frame verifies, and the recovered spool must accept appends and
// reopen cleanly.
func FuzzOpen(f *testing.F) {
	recs := alerts(f)
	seg := segmentBytes(recs)
	cur := encodeCursors(cursorState{recs: []cursorRec{{name: "a", ack: Pos{seg: 1, off: segHeaderSize}, read: Pos{seg: 1, off: int64(len(seg))}}}})
	f.Add(seg, cur)
	f.Add(seg, []byte(nil))
	f.Add(seg[:len(seg)-7], cur)
	flipped := bytes.Clone(seg)
	flipped[len(seg)/2] ^= 0x10
	f.Add(flipped, cur[:len(cur)-1])
	f.Add(append(bytes.Clone(seg), make([]byte, 64)...), []byte(nil))
	f.Add(seg[:segHeaderSize], cur)
	f.Add([]byte{}, []byte(cursorMagic))

	f.Fuzz(func(t *testing.T, data, cursors []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "0000000000000001.seg"), data, 0o640); err != nil {
			t.Fatal(err)
		}
		if len(cursors) > 0 {
			if err := os.WriteFile(filepath.Join(dir, cursorsFile), cursors, 0o640); err != nil {
				t.Fatal(err)
			}
		}
		opts := testOptions(dir)
		opts.fs = noSyncFS{} // the disk's fsync latency is not under test
		s, err := Open(opts)
		if err != nil {
			t.Fatalf("Open: %v", err) // no input may make the spool unusable
		}
		r := mustReader(t, s, "a")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		n := 0
		for ; ; n++ {
			rec, _, err := r.Next(ctx)
			if err != nil {
				break
			}
			if len(rec) > len(data) {
				t.Fatalf("record of %d bytes from a %d-byte file", len(rec), len(data))
			}
		}
		if _, err := s.Append([]byte("after recovery")); err != nil {
			t.Fatalf("Append: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		first := counter(s, "corrupt")
		opts.Metrics = nil
		opts.fs = noSyncFS{}
		s = mustOpen(t, opts)
		defer s.Close()
		// Torn tails are gone; corrupt regions inside a segment stay (and
		// are met again), nothing new may appear.
		if c := counter(s, "corrupt"); c > first {
			t.Fatalf("second Open found %d corrupt regions, first %d", c, first)
		}
		got := readAll(t, mustReader(t, s, "a"))
		if len(got) != n+1 || string(got[n]) != "after recovery" {
			t.Fatalf("after reopen: %d records, want %d then the appended one", len(got), n)
		}
	})
}

// noSyncFS is the operating system without fsync.
type noSyncFS struct{ osFS }

func (noSyncFS) SyncDir(string) error { return nil }

func (fs noSyncFS) OpenFile(name string, flag int, perm os.FileMode) (file, error) {
	f, err := fs.osFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

type noSyncFile struct{ file }

func (noSyncFile) Sync() error { return nil }
