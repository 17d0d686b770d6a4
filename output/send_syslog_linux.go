package output

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// peekAlive peeks at the socket without blocking or consuming: EOF (the
// peer closed) or a pending error (reset) means the connection is dead;
// nothing to read, or data, means it is alive.
func peekAlive(raw syscall.RawConn) error {
	var (
		n   int
		err error
		buf [1]byte
	)
	if cerr := raw.Control(func(fd uintptr) {
		n, _, err = unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	}); cerr != nil {
		return cerr
	}
	switch {
	case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
		return nil
	case err != nil:
		return fmt.Errorf("%w: %w", errPeerClosed, err)
	case n == 0:
		return errPeerClosed
	}
	return nil
}

// unackedBytes returns the socket's count of bytes sent but not yet
// acknowledged by the peer (plus those not yet sent): SIOCOUTQ. reset is
// true when the connection is gone (TCP state CLOSE: reset by the peer),
// in which case the count will never drop.
func unackedBytes(raw syscall.RawConn) (n int, reset bool, err error) {
	cerr := raw.Control(func(fd uintptr) {
		n, err = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
		if err != nil || n == 0 {
			return
		}
		var info *unix.TCPInfo
		info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err == nil {
			reset = info.State == tcpStateClose
		}
	})
	if cerr != nil {
		return 0, false, cerr
	}
	return n, reset, err
}

// tcpStateClose is TCP_CLOSE of the kernel's tcp_states.h.
const tcpStateClose = 7
