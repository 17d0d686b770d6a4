package spool

import (
	"errors"
	"io/fs"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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

// Write errors other than a full disk (EIO, whole or partial writes) are
// returned and counted; the records of the failing call are not accepted
// and not stored, the ones accepted before are kept; once the disk
// recovers appends work again; nothing is duplicated or corrupted, also
// across a restart.
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
			r := mustReader(t, s, "a")
			got := readN(t, r, 10, true)

			ffs.set(func(f *faultFS) { f.writeErr, f.partial = syscall.EIO, partial })
			// A partial write accepts the records it wrote entirely.
			n, err := s.Append(recs[10:15]...)
			if !errors.Is(err, syscall.EIO) || n >= 5 || (n > 0) != partial {
				t.Fatalf("Append during the fault: n=%d err=%v", n, err)
			}
			got = append(got, readAll(t, r)...)
			if e := counter(s, "write_errors"); e < 1 {
				t.Fatalf("write errors counted %d, want >= 1", e)
			}
			if len(got) != 10+n {
				t.Fatalf("reader saw %d records, want the %d accepted", len(got), 10+n)
			}

			ffs.set(func(f *faultFS) { f.writeErr = nil })
			appendAll(t, s, recs[15:])
			if err := s.Sync(); err != nil {
				t.Fatalf("Sync after the fault: %v", err)
			}
			want := append(append([][]byte{}, recs[:10+n]...), recs[15:]...)
			got = append(got, readN(t, r, len(want)-len(got), false)...)
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

// A full disk (ENOSPC, here injected) is a full spool: with when_full
// block, Append waits instead of failing, counted as blocked, and goes on
// by itself once writes succeed again; nothing is lost or duplicated.
func TestNoSpaceBlocksAndRecovers(t *testing.T) {
	ffs := &faultFS{}
	opts := testOptions(t.TempDir())
	opts.fs = ffs
	s := mustOpen(t, opts)
	defer s.Close()
	recs := records(t, 30)
	appendAll(t, s, recs[:10])
	ffs.set(func(f *faultFS) { f.writeErr, f.partial = syscall.ENOSPC, true })
	done := make(chan error, 1)
	go func() { _, err := s.Append(recs[10:]...); done <- err }()
	waitFor(t, "an Append waiting for disk space", 5*time.Second, func() bool { return s.Stats().Blocked == 1 })
	select {
	case err := <-done:
		t.Fatalf("Append returned on a full disk: %v", err)
	default:
	}
	ffs.set(func(f *faultFS) { f.writeErr = nil })
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Append still waiting after the disk had space again")
	}
	if s.m.blocked.Get() <= 0 {
		t.Fatal("time waiting for disk space not counted")
	}
	sameSequence(t, readAll(t, mustReader(t, s, "a")), recs)
}

// StopWaiting releases an Append waiting for disk space with ErrFull; the
// records it had not written are not accepted.
func TestNoSpaceStopWaiting(t *testing.T) {
	ffs := &faultFS{}
	opts := testOptions(t.TempDir())
	opts.fs = ffs
	s := mustOpen(t, opts)
	defer s.Close()
	ffs.set(func(f *faultFS) { f.writeErr = syscall.ENOSPC })
	done := make(chan error, 1)
	go func() { _, err := s.Append(records(t, 3)...); done <- err }()
	waitFor(t, "an Append waiting for disk space", 5*time.Second, func() bool { return s.Stats().Blocked == 1 })
	s.StopWaiting()
	select {
	case err := <-done:
		if !errors.Is(err, ErrFull) {
			t.Fatalf("Append returned %v, want ErrFull", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("StopWaiting did not release the Append")
	}
	if got := readAll(t, mustReader(t, s, "a")); len(got) != 0 {
		t.Fatalf("%d records stored by a failed Append", len(got))
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

// A write error leaves nothing buffered: Close has nothing to lose and
// counts nothing as dropped.
func TestCloseWithWriteError(t *testing.T) {
	ffs := &faultFS{}
	opts := testOptions(t.TempDir())
	opts.fs = ffs
	s := mustOpen(t, opts)
	ffs.set(func(f *faultFS) { f.writeErr = syscall.EIO })
	if n, err := s.Append(records(t, 4)...); n != 0 || !errors.Is(err, syscall.EIO) {
		t.Fatalf("Append: n=%d err=%v", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := counter(s, "dropped"); d != 0 {
		t.Fatalf("dropped %d, want 0", d)
	}
}
