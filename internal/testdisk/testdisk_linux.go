// Package testdisk gives tests a small, real file system to fill: a tmpfs
// of a fixed size, so that "disk full" (ENOSPC) happens for real.
package testdisk

import (
	"os"
	"syscall"
	"testing"
)

// Small mounts an 8 MiB tmpfs on a new directory and returns it; it is
// unmounted (detached, so that a file a failed test left open does not keep
// it busy) when the test ends. It skips the test when not root or when
// mounting fails.
func Small(t testing.TB) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount an 8 MiB tmpfs")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=8m"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("cannot unmount %s: %v", dir, err)
		}
	})
	return dir
}
