package receiver

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestKeepAliveOnAcceptedConnections reads, with getsockopt, the keep-alive
// settings of the server side of real tcp and tls connections: on by
// default (60s idle, a probe every 15s, 4 probes), scaled from a configured
// KeepAlive, off when it is negative.
func TestKeepAliveOnAcceptedConnections(t *testing.T) {
	pki := newTestPKI(t)
	type want struct{ on, idle, intvl, cnt int }
	f := func(protocol string, ka time.Duration, w want) {
		t.Run(fmt.Sprintf("%s/%v", protocol, ka), func(t *testing.T) {
			cfg := Config{Protocol: protocol, KeepAlive: ka}
			if protocol == ProtocolTLS {
				cfg.TLS = pki.serverConfig(false)
			}
			pool := newRecPool(false)
			l, _ := startInput(t, cfg, pool)
			c := dial(t, l, pki, false)
			defer c.Close()
			// A frame through: the connection is accepted and set up
			// (OnOpen ran on the gnet path).
			if _, err := c.Write([]byte("<13>1 - h a - - - {\"a\":1}\n")); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 5*time.Second, "the frame", func() bool { return pool.count.Load() == 1 })
			fd := acceptedFd(t, l.Addr(), c.LocalAddr())
			defer unix.Close(fd)
			got := want{
				on:    sockopt(t, fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE),
				idle:  sockopt(t, fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE),
				intvl: sockopt(t, fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL),
				cnt:   sockopt(t, fd, unix.IPPROTO_TCP, unix.TCP_KEEPCNT),
			}
			if w.on == 0 {
				got.idle, got.intvl, got.cnt = 0, 0, 0 // the kernel's defaults, unused
			}
			if got != w {
				t.Fatalf("accepted socket: SO_KEEPALIVE %d, TCP_KEEPIDLE %ds, TCP_KEEPINTVL %ds, TCP_KEEPCNT %d; want %+v",
					got.on, got.idle, got.intvl, got.cnt, w)
			}
		})
	}
	for _, p := range []string{ProtocolTCP, ProtocolTLS} {
		f(p, 0, want{1, 60, 15, KeepAliveProbes})
		f(p, 8*time.Second, want{1, 8, 2, KeepAliveProbes})
		f(p, 2*time.Second, want{1, 2, 1, KeepAliveProbes})
		f(p, -1, want{})
	}
}

func sockopt(t *testing.T, fd, level, opt int) int {
	t.Helper()
	v, err := unix.GetsockoptInt(fd, level, opt)
	if err != nil {
		t.Fatalf("getsockopt(%d, %d): %v", level, opt, err)
	}
	return v
}

// acceptedFd returns a duplicate of this process's descriptor of the
// server side of the TCP connection from client to listener: the socket
// bound to listener's address whose peer is client. The caller closes it.
func acceptedFd(t *testing.T, listener, client net.Addr) int {
	t.Helper()
	local, peer := listener.(*net.TCPAddr).AddrPort(), client.(*net.TCPAddr).AddrPort()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot list this process's descriptors: %v", err)
	}
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fd, err := unix.Dup(n) // n may be closed and reused meanwhile: work on a copy
		if err != nil {
			continue
		}
		if sa, err := unix.Getsockname(fd); err == nil && sameAddr(sa, local.Port()) {
			if pa, err := unix.Getpeername(fd); err == nil && sameAddr(pa, peer.Port()) {
				return fd
			}
		}
		unix.Close(fd)
	}
	t.Fatalf("no socket of this process connects %s to %s", listener, client)
	return -1
}

// sameAddr reports whether sa is a loopback TCP address with port.
func sameAddr(sa unix.Sockaddr, port uint16) bool {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return a.Port == int(port) && a.Addr == [4]byte{127, 0, 0, 1}
	case *unix.SockaddrInet6:
		return a.Port == int(port)
	}
	return false
}
