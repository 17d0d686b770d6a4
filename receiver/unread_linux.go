package receiver

import "golang.org/x/sys/unix"

// unreadBytes reports how many received bytes wait in the socket's kernel
// buffer (SIOCINQ); 0 when unknown.
func unreadBytes(fd int) int {
	n, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
	if err != nil {
		return 0
	}
	return n
}
