//go:build unix

package output

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestFileSenderRefusesSymlink: a symbolic link at the output path is
// refused, whether it points at an existing file (which must stay
// untouched) or at one that does not exist yet (which must not be created).
func TestFileSenderRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "precious")
	if err := os.WriteFile(target, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "not-yet")
	for name, to := range map[string]string{"existing": target, "dangling": missing} {
		t.Run(name, func(t *testing.T) {
			link := filepath.Join(dir, "out-"+name+".ndjson")
			if err := os.Symlink(to, link); err != nil {
				t.Fatal(err)
			}
			s, err := NewFileSender(link)
			if err == nil {
				_ = s.Send(context.Background(), outBatch(t, NDJSONEncoder{}, outAlert(1, 300)))
				s.Close()
				t.Fatal("NewFileSender followed a symbolic link")
			}
			if !strings.Contains(err.Error(), "symbolic link") || !strings.Contains(err.Error(), link) {
				t.Fatalf("error %q does not say that %s is a symbolic link", err, link)
			}
			// The open itself refuses it (O_NOFOLLOW), for a link put in
			// place after NewFileSender's check.
			if f, err := openAppend(link); err == nil {
				f.Close()
				t.Fatal("openAppend followed a symbolic link")
			} else if !strings.Contains(err.Error(), "symbolic link") {
				t.Fatalf("openAppend error %q does not say symbolic link", err)
			}
		})
	}
	if b, err := os.ReadFile(target); err != nil || string(b) != "precious\n" {
		t.Fatalf("target file changed: %q, %v", b, err)
	}
	if _, err := os.Lstat(missing); !os.IsNotExist(err) {
		t.Fatalf("the dangling link's target was created: %v", err)
	}
}

// TestFileSenderCreatesMode0640: a new file is created 0640. The umask is
// cleared for the test, so the mode seen is the one asked for (a real
// umask can only take bits away).
func TestFileSenderCreatesMode0640(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "out.ndjson")
	s, err := NewFileSender(path)
	if err != nil {
		t.Fatal(err)
	}
	payload := outAlert(1, 300)
	if err := s.Send(context.Background(), outBatch(t, NDJSONEncoder{}, payload)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o640 {
		t.Fatalf("new output file has mode %#o, want 0640", m)
	}
	if b, _ := os.ReadFile(path); string(b) != string(payload)+"\n" {
		t.Fatalf("file holds %q", b)
	}
	// Appending to an existing regular file still works.
	s, err = NewFileSender(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Send(context.Background(), outBatch(t, NDJSONEncoder{}, payload)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != strings.Repeat(string(payload)+"\n", 2) {
		t.Fatalf("file holds %q after a second open", b)
	}
}

// TestFileSenderStdout: "-" is standard output, never a file named "-".
func TestFileSenderStdout(t *testing.T) {
	t.Chdir(t.TempDir())
	s, err := NewFileSender("-")
	if err != nil {
		t.Fatal(err)
	}
	if s.f != os.Stdout {
		t.Fatalf("path - opened %s, not standard output", s.f.Name())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat("-"); !os.IsNotExist(err) {
		t.Fatalf("a file named - exists: %v", err)
	}
}
