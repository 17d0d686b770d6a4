//go:build !linux

package output

import "syscall"

// peekAlive: without Linux's MSG_PEEK semantics at hand, the reader
// goroutine alone notices a closed connection.
func peekAlive(syscall.RawConn) error { return nil }

// peekPending: likewise, nothing is known to be pending.
func peekPending(syscall.RawConn) (bool, error) { return false, nil }

// ackProbe: SIOCOUTQ is Linux-only. Elsewhere a batch counts as delivered
// once written to the socket (dtrelay's appliance runs Linux).
type ackProbe struct{}

func newAckProbe(syscall.RawConn) *ackProbe { return &ackProbe{} }

func (*ackProbe) unacked() (int, bool, error) { return 0, false, nil }

// quickAck: TCP_QUICKACK is Linux-only.
func quickAck(syscall.RawConn, func(fd uintptr)) {}

func quickAckFunc() func(fd uintptr) { return func(uintptr) {} }

// rcvLowatFunc: elsewhere the mark stays at its default (one byte).
func rcvLowatFunc(*int) func(fd uintptr) { return func(uintptr) {} }
