package receiver

import (
	"bufio"
	"bytes"
	"net/netip"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// kernelDrops reads the kernel's drop counter of an input's UDP sockets
// (one per event loop, SO_REUSEPORT): the datagrams the kernel discarded
// because a socket's receive buffer was full, which dtrelay never saw.
// gnet reads datagrams with recvfrom(2), so SO_RXQ_OVFL's ancillary count
// is not available; the per-socket "drops" column of /proc/net/udp{,6} is,
// matched by the sockets' inodes. It is read when the metrics are
// scraped, never per datagram. Safe for concurrent use.
type kernelDrops struct {
	inodes map[uint64]struct{}
	mu     sync.Mutex
	last   map[uint64]uint64 // highest count seen per socket: kept after it closes
}

// newKernelDrops finds this process's UDP sockets bound to addr (the
// input's, once every event loop has bound its own) and returns a reader
// of their drop counters, or nil if there is none or /proc cannot be read.
func newKernelDrops(addr netip.AddrPort) *kernelDrops {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	k := &kernelDrops{inodes: make(map[uint64]struct{}), last: make(map[uint64]uint64)}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || typ != unix.SOCK_DGRAM {
			continue
		}
		sa, err := unix.Getsockname(fd)
		if err != nil || sockaddrAddrPort(sa) != addr {
			continue
		}
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil {
			k.inodes[st.Ino] = struct{}{}
		}
	}
	if len(k.inodes) == 0 {
		return nil
	}
	return k
}

// sockets reports how many sockets k watches.
func (k *kernelDrops) sockets() int { return len(k.inodes) }

// total returns the datagrams dropped by the kernel on k's sockets since
// they were opened. It never decreases: a socket that is gone (the input
// stopped) keeps its last count.
func (k *kernelDrops) total() uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		readUDPDrops(f, func(inode, drops uint64) {
			if _, ok := k.inodes[inode]; ok && drops > k.last[inode] {
				k.last[inode] = drops
			}
		})
	}
	var n uint64
	for _, d := range k.last {
		n += d
	}
	return n
}

// readUDPDrops calls fn with the inode and drops columns of each socket
// listed in file, a /proc/net/udp-format table:
//
//	sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ref pointer drops
func readUDPDrops(file string, fn func(inode, drops uint64)) {
	f, err := os.Open(file)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := bytes.Fields(sc.Bytes())
		if len(fields) < 13 {
			continue
		}
		inode, err1 := strconv.ParseUint(string(fields[9]), 10, 64)
		drops, err2 := strconv.ParseUint(string(fields[12]), 10, 64)
		if err1 == nil && err2 == nil {
			fn(inode, drops)
		}
	}
}

func sockaddrAddrPort(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
	}
	return netip.AddrPort{}
}
