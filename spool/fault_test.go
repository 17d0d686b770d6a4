package spool

import (
	"errors"
	"io/fs"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// faultFS injects errors into segment files (we run as root, so a
// read-only directory would not fail).
type faultFS struct {
	osFS
	mu        sync.Mutex
	writeErr  error // WriteAt on a segment fails with it
	partial   bool  // ...after writing half of the bytes
	syncErr   error // Sync on a segment fails with it
	createErr error // creating a segment fails with it
	syncs     int
}

func (f *faultFS) get() (writeErr error, partial bool, syncErr, createErr error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writeErr, f.partial, f.syncErr, f.createErr
}

func (f *faultFS) set(fn func(f *faultFS)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *faultFS) OpenFile(name string, flag int, perm fs.FileMode) (file, error) {
	isSeg := strings.HasSuffix(name, ".seg")
	if _, _, _, cerr := f.get(); isSeg && cerr != nil && flag&syscall.O_CREAT != 0 {
		return nil, cerr
	}
	fl, err := f.osFS.OpenFile(name, flag, perm)
	if err != nil || !isSeg {
		return fl, err
	}
	return &faultFile{file: fl, fs: f}, nil
}

type faultFile struct {
	file
	fs *faultFS
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	werr, partial, _, _ := f.fs.get()
	if werr == nil {
		return f.file.WriteAt(p, off)
	}
	n := 0
	if partial {
		n, _ = f.file.WriteAt(p[:len(p)/2], off)
	}
	return n, werr
}

func (f *faultFile) Sync() error {
	_, _, serr, _ := f.fs.get()
	if serr != nil {
		return serr
	}
	f.fs.set(func(f *faultFS) { f.syncs++ })
	return f.file.Sync()
}

// Write errors (full disk, partial writes) are returned and counted; the
// records accepted before them are kept and written once the disk recovers;
// records refused are not stored; nothing is duplicated or corrupted.
func TestDiskWriteErrors(t *testing.T) {
	for _, partial := range []bool{false, true} {
		name := "whole"
		if partial {
			name = "partial"
		}
		t.Run(name, func(t *testing.T) {
			ffs := &faultFS{}
			dir := t.TempDir()
			opts := testOptions(dir)
			opts.fs = ffs
			s := mustOpen(t, opts)
			recs := records(t, 40)
			appendAll(t, s, recs[:10])
			if err := s.Sync(); err != nil {
				t.Fatal(err)
			}
			r := mustReader(t, s, "a")
			got := readN(t, r, 10, true)

			ffs.set(func(f *faultFS) { f.writeErr, f.partial = syscall.ENOSPC, partial })
			appendAll(t, s, recs[10:15]) // buffered: accepted
			if err := s.Sync(); !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("Sync during the fault: %v", err)
			}
			n, err := s.Append(recs[15])
			if !errors.Is(err, syscall.ENOSPC) || n != 0 {
				t.Fatalf("Append during the fault: n=%d err=%v", n, err)
			}
			if e := counter(s, "write_errors"); e < 2 {
				t.Fatalf("write errors counted %d, want >= 2", e)
			}
			if extra := readAll(t, r); len(extra) != 0 {
				t.Fatalf("reader saw %d unwritten records", len(extra))
			}

			ffs.set(func(f *faultFS) { f.writeErr = nil })
			appendAll(t, s, recs[16:])
			if err := s.Sync(); err != nil {
				t.Fatalf("Sync after the fault: %v", err)
			}
			want := append(append([][]byte{}, recs[:15]...), recs[16:]...)
			got = append(got, readN(t, r, len(want)-10, false)...)
			sameSequence(t, got, want)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			opts.fs, opts.Metrics = nil, nil
			s = mustOpen(t, opts)
			defer s.Close()
			if c := counter(s, "corrupt"); c != 0 {
				t.Fatalf("reopen after write errors: %d corrupt", c)
			}
			sameSequence(t, readAll(t, mustReader(t, s, "a")), want[10:])
		})
	}
}

// A failed fsync is returned and counted, and retried by the next commit.
func TestFsyncErrors(t *testing.T) {
	ffs := &faultFS{}
	opts := testOptions(t.TempDir())
	opts.fs = ffs
	s := mustOpen(t, opts)
	defer s.Close()
	appendAll(t, s, records(t, 3))
	ffs.set(func(f *faultFS) { f.syncErr = syscall.EIO })
	before := counter(s, "write_errors")
	if err := s.Sync(); !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "cannot sync spool segment") {
		t.Fatalf("Sync: %v", err)
	}
	if counter(s, "write_errors") == before {
		t.Fatal("fsync error not counted")
	}
	ffs.set(func(f *faultFS) { f.syncErr, f.syncs = nil, 0 })
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if ffs.syncs == 0 {
		t.Fatal("the failed fsync was not retried")
	}
}

// A segment that cannot be created fails the Append that needs it; Append
// works again once creation does.
func TestSegmentCreateError(t *testing.T) {
	ffs := &faultFS{}
	opts := testOptions(t.TempDir())
	opts.fs = ffs
	s := mustOpen(t, opts)
	defer s.Close()
	ffs.set(func(f *faultFS) { f.createErr = syscall.EMFILE })
	recs := records(t, 40)
	var accepted [][]byte
	var failed bool
	for _, rec := range recs {
		if _, err := s.Append(rec); err != nil {
			if !errors.Is(err, syscall.EMFILE) {
				t.Fatalf("Append: %v", err)
			}
			failed = true
			break
		}
		accepted = append(accepted, rec)
	}
	if !failed {
		t.Fatal("no Append needed a new segment")
	}
	ffs.set(func(f *faultFS) { f.createErr = nil })
	appendAll(t, s, recs[len(accepted):])
	sameSequence(t, readN(t, mustReader(t, s, "a"), len(recs), false), recs)
}

// Records still unwritable at Close are reported and counted as dropped.
func TestCloseWithWriteError(t *testing.T) {
	ffs := &faultFS{}
	opts := testOptions(t.TempDir())
	opts.fs = ffs
	s := mustOpen(t, opts)
	ffs.set(func(f *faultFS) { f.writeErr = syscall.EIO })
	appendAll(t, s, records(t, 4))
	if err := s.Close(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Close: %v", err)
	}
	if d := counter(s, "dropped"); d != 4 {
		t.Fatalf("dropped %d, want 4", d)
	}
}
