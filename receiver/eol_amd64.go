//go:build amd64 && !purego

package receiver

import "golang.org/x/sys/cpu"

// hasAVX2 selects indexEOLAVX2; read-only after init.
var hasAVX2 = cpu.X86.HasAVX2

// indexEOL returns the index of the first LF or NUL in b, or -1.
func indexEOL(b []byte) int {
	if len(b) >= 32 && hasAVX2 {
		return indexEOLAVX2(b)
	}
	return indexEOLGeneric(b)
}

// indexEOLAVX2 is indexEOL for len(b) >= 32 on a CPU with AVX2.
//
//go:noescape
func indexEOLAVX2(b []byte) int
