package output

import (
	"errors"
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// peekAlive peeks at the socket without blocking or consuming: EOF (the
// peer closed) or a pending error (reset) means the connection is dead;
// nothing to read, or data, means it is alive.
func peekAlive(raw syscall.RawConn) error {
	_, err := peekPending(raw)
	return err
}

// peekPending is peekAlive that also tells whether the peer sent bytes
// not yet read.
func peekPending(raw syscall.RawConn) (pending bool, err error) {
	var (
		n    int
		rerr error
		buf  [1]byte
	)
	if cerr := raw.Control(func(fd uintptr) {
		n, _, rerr = unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	}); cerr != nil {
		return false, cerr
	}
	switch {
	case errors.Is(rerr, unix.EAGAIN) || errors.Is(rerr, unix.EINTR):
		return false, nil
	case rerr != nil:
		return false, fmt.Errorf("%w: %w", errPeerClosed, rerr)
	case n == 0:
		return false, errPeerClosed
	}
	return true, nil
}

// ackProbe reads a socket's count of bytes sent but not yet acknowledged
// by the peer (plus those not yet sent): SIOCOUTQ; and, while that is not
// zero, whether the connection is gone (TCP state CLOSE: reset by the
// peer), in which case the count will never drop. The Control function and
// its results live in the probe, made once per connection, so that a poll
// allocates nothing (a closure per call would, and so would
// unix.GetsockoptTCPInfo).
type ackProbe struct {
	raw   syscall.RawConn
	fn    func(fd uintptr)
	n     int
	reset bool
	err   error
	info  unix.TCPInfo
}

func newAckProbe(raw syscall.RawConn) *ackProbe {
	p := &ackProbe{raw: raw}
	p.fn = p.control
	return p
}

func (p *ackProbe) control(fd uintptr) {
	p.reset = false
	p.n, p.err = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
	if p.err != nil || p.n == 0 {
		return
	}
	l := uint32(unsafe.Sizeof(p.info))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.IPPROTO_TCP, unix.TCP_INFO,
		uintptr(unsafe.Pointer(&p.info)), uintptr(unsafe.Pointer(&l)), 0); e != 0 {
		p.err = e
		return
	}
	p.reset = p.info.State == tcpStateClose
}

// unacked returns the count, whether the connection was reset, and an
// error if the socket could not be read.
func (p *ackProbe) unacked() (n int, reset bool, err error) {
	if cerr := p.raw.Control(p.fn); cerr != nil {
		return 0, false, cerr
	}
	return p.n, p.reset, p.err
}

// tcpStateClose is TCP_CLOSE of the kernel's tcp_states.h.
const tcpStateClose = 7

// quickAck asks the kernel to acknowledge at once what it received and
// has not acknowledged yet (TCP_QUICKACK), instead of delaying the ACK up
// to 40 ms: a peer writing small answers with Nagle's algorithm on waits
// for that ACK before it sends the next ones.
func quickAck(raw syscall.RawConn, set func(fd uintptr)) {
	_ = raw.Control(set)
}

// quickAckFunc returns the Control function quickAck runs (made once per
// connection: a closure per call would allocate).
func quickAckFunc() func(fd uintptr) {
	return func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1) }
}

// rcvLowatFunc returns a Control function that sets the socket's receive
// low-water mark to *n bytes (SO_RCVLOWAT): the poller reports the socket
// readable only once that many bytes wait (or on EOF or an error), so a
// reader parked on it wakes once per many small answers instead of once
// per answer. Linux re-checks readiness when the mark is lowered, which
// wakes a parked reader at once. Made once per connection (a closure per
// call would allocate).
func rcvLowatFunc(n *int) func(fd uintptr) {
	return func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT, *n) }
}
