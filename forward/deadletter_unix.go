//go:build unix

package forward

import (
	"os"
	"syscall"
)

// oNoFollow makes opening a symbolic link fail (ELOOP).
const oNoFollow = syscall.O_NOFOLLOW

// lockFile takes an exclusive advisory lock (flock) on f, waiting for it,
// and returns its release.
func lockFile(f *os.File) (unlock func(), err error) {
	fd := int(f.Fd())
	for {
		err = syscall.Flock(fd, syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	return func() { _ = syscall.Flock(fd, syscall.LOCK_UN) }, nil
}
