package receiver

import "bytes"

// A non-transparent frame (RFC 6587 §3.4.2) ends at an LF or a NUL, as in
// syslog-ng: Python's logging.handlers.SysLogHandler ends every message with
// NUL and sends no LF. indexEOL finds the first of either; on amd64 with
// AVX2 it scans both at once (eol_amd64.s), as fast as bytes.IndexByte
// scans for one, so LF-framed streams pay nothing for NUL
// (BenchmarkFramer, BenchmarkIndexEOL).

// eolChunk is the span indexEOLGeneric looks at per pair of IndexByte
// calls: a stream without LF (NUL-framed) or without NUL (LF-framed) is not
// scanned to the end of the read for the terminator it never uses.
const eolChunk = 512

// indexEOLGeneric is indexEOL in portable Go: two bytes.IndexByte passes
// over each eolChunk bytes.
func indexEOLGeneric(b []byte) int {
	for off := 0; off < len(b); off += eolChunk {
		c := b[off:min(off+eolChunk, len(b))]
		lf := bytes.IndexByte(c, '\n')
		if lf >= 0 {
			c = c[:lf]
		}
		if nul := bytes.IndexByte(c, 0); nul >= 0 {
			return off + nul
		}
		if lf >= 0 {
			return off + lf
		}
	}
	return -1
}
