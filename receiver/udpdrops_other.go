//go:build !linux

package receiver

import "net/netip"

// kernelDrops reads the kernel's UDP drop counters; only implemented on
// Linux (see udpdrops_linux.go).
type kernelDrops struct{}

func newKernelDrops(netip.AddrPort) *kernelDrops { return nil }
func (*kernelDrops) sockets() int                { return 0 }
func (*kernelDrops) total() uint64               { return 0 }
