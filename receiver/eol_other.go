//go:build !amd64 || purego

package receiver

// indexEOL returns the index of the first LF or NUL in b, or -1.
func indexEOL(b []byte) int { return indexEOLGeneric(b) }
