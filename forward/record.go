package forward

import (
	"encoding/binary"

	"github.com/dtrelay/dtrelay/parser"
)

// The record format. A Block holds records back to back, and the spool
// stores each record as one of its opaque records, byte for byte: so this
// layout is also an on-disk format, read back by the next dtrelay to open
// the spool, which may be a newer or an older build.
//
// A record is a recHeaderSize-byte header (little endian) and the raw frame:
//
//	0  u32 raw length        4  u8 kind   5 u8 priority  6 u8 flags  7 u8 style
//	8  i16 pri              10  u16 input
//	12 u32 payload start    16 u32 payload end
//	20 u32 timestamp start  24 u32 timestamp end
//	28 u32 host start       32 u32 host end
//	36 u32 app start        40 u32 app end
//	44 u8  version          45 u8[3] reserved (written 0, ignored on read)
//	48 u64 output mask      56 i64 received (Unix ns)
//	64 raw frame (raw length bytes); the spans are offsets into it
//
// Kind, priority and style are parser's numbering, and input and the output
// mask refer to the configuration of the run that appended the record
// (spool.Reader.Owner translates the mask). testdata/record_v1.golden pins
// the bytes; a change that alters them is a format change.
//
// Versions:
//
//   - 0: the layout above, written before byte 44 held a version (it was a
//     reserved u32, always written 0). Spools of dtrelay builds from before
//     the version byte hold only version-0 records
//     (testdata/record_v0.golden, written by such a build).
//   - 1: the same layout, the version byte set. A build that predates the
//     version byte ignores byte 44, so it reads version-1 records correctly.
//
// Every version keeps the version byte at offset 44 (so a record is at
// least 45 bytes long); everything else may change. A change that older
// readers may safely ignore can use the reserved bytes without a new
// version. Any other change (a field moved, resized or given another
// meaning, a different header size) takes the next version, and readers
// decode every version up to theirs. A reader never forwards a record of a
// version above recordVersion as if it were its own: fromDisk counts it
// (dropped, reason "spool_unknown_version"), logs that a newer dtrelay
// wrote it, and keeps its spool segment on disk (spool.Reader.Keep).
const (
	recHeaderSize = 64
	recordVersion = 1
)

// Offsets of the header fields the pipeline reads or patches outside
// appendRecord and readRecord.
const (
	recFlagsOffset   = 6
	recVersionOffset = 44
	recMaskOffset    = 48
)

// Record flags (byte 6). flagUnspooled marks a record the spool refused
// (too large, or the pipeline stopping): it exists in memory only, so it is
// never on disk.
const (
	flagNotJSON   = 1
	flagUnspooled = 2
)

// appendRecord copies frame and its metadata into b. The caller checked room.
func (b *Block) appendRecord(frame []byte, h *parser.Header, a *parser.Alert, notJSON bool, input uint16, mask uint64, received int64) {
	off := len(b.buf)
	b.buf = b.buf[:off+recHeaderSize]
	hd := b.buf[off : off+recHeaderSize]
	le := binary.LittleEndian
	le.PutUint32(hd[0:], uint32(len(frame)))
	hd[4], hd[5], hd[6], hd[7] = byte(a.Kind), byte(a.Priority), 0, byte(h.Style)
	if notJSON {
		hd[6] = flagNotJSON
	}
	le.PutUint16(hd[8:], uint16(h.Pri))
	le.PutUint16(hd[10:], input)
	putSpan(hd[12:], h.Payload)
	putSpan(hd[20:], h.Timestamp)
	putSpan(hd[28:], h.Host)
	putSpan(hd[36:], h.App)
	le.PutUint32(hd[44:], recordVersion) // the version byte, then 3 reserved zero bytes
	le.PutUint64(hd[48:], mask)
	le.PutUint64(hd[56:], uint64(received))
	b.buf = append(b.buf, frame...)
	b.n++
	b.mask |= mask
}

func putSpan(dst []byte, s parser.Span) {
	binary.LittleEndian.PutUint32(dst, uint32(s.Start))
	binary.LittleEndian.PutUint32(dst[4:], uint32(s.End))
}

func span(raw []byte, hd []byte) []byte {
	s := binary.LittleEndian.Uint32(hd)
	e := binary.LittleEndian.Uint32(hd[4:])
	if e <= s {
		return nil
	}
	return raw[s:e]
}

// readRecord decodes the record at off into r and returns its output mask
// and the offset of the next record. r's slices alias b. The record is of
// a version this build reads (0 or 1, the same layout): a Block holds only
// records appendRecord wrote or fromDisk checked with recordProblem.
func (b *Block) readRecord(off int, r *Record) (mask uint64, next int) {
	le := binary.LittleEndian
	hd := b.buf[off : off+recHeaderSize]
	n := int(le.Uint32(hd[0:]))
	raw := b.buf[off+recHeaderSize : off+recHeaderSize+n]
	style := parser.Style(hd[7])
	*r = Record{
		Raw:      raw,
		Payload:  span(raw, hd[12:]),
		Host:     span(raw, hd[28:]),
		App:      span(raw, hd[36:]),
		Pri:      int16(le.Uint16(hd[8:])),
		Received: int64(le.Uint64(hd[56:])),
		Kind:     parser.Kind(hd[4]),
		Priority: parser.Priority(hd[5]),
		Input:    le.Uint16(hd[10:]),
		NotJSON:  hd[6]&flagNotJSON != 0,
		memOnly:  hd[6]&flagUnspooled != 0,
	}
	if style == parser.Style5424 {
		r.Timestamp = span(raw, hd[20:])
	}
	if r.Payload == nil {
		r.Payload = raw[:0]
	}
	return le.Uint64(hd[48:]), off + recHeaderSize + n
}

// recordLen returns the size of the record that starts rec: its header
// and raw frame.
func recordLen(rec []byte) int {
	return recHeaderSize + int(binary.LittleEndian.Uint32(rec))
}

// recordProblem says why a record read back from the spool cannot be
// decoded: "" when it can; "spool_unknown_version" when a newer dtrelay
// wrote it (version above recordVersion); "spool_corrupt" when it is
// shorter than its header, its length disagrees with its header or a span
// lies outside its frame (the spool's checksum verified, so these are a bug
// or a foreign writer, not disk damage). The reasons are those counted in
// dtrelay_output_dropped_total.
func recordProblem(rec []byte) string {
	if len(rec) > recVersionOffset && rec[recVersionOffset] > recordVersion {
		return "spool_unknown_version" // checked first: a newer layout may differ in every other byte
	}
	if len(rec) < recHeaderSize || recordLen(rec) != len(rec) {
		return "spool_corrupt"
	}
	n := uint32(len(rec) - recHeaderSize)
	for off := 12; off < 44; off += 8 {
		s, e := binary.LittleEndian.Uint32(rec[off:]), binary.LittleEndian.Uint32(rec[off+4:])
		if e > s && e > n {
			return "spool_corrupt"
		}
	}
	return ""
}

// recordMask returns the output mask in the header of rec.
func recordMask(rec []byte) uint64 {
	return binary.LittleEndian.Uint64(rec[recMaskOffset:])
}

func setRecordMask(rec []byte, mask uint64) {
	binary.LittleEndian.PutUint64(rec[recMaskOffset:], mask)
}

// recordReceived returns the reception time (Unix ns) in the header of the
// record at off in buf.
func recordReceived(buf []byte, off int) int64 {
	return int64(binary.LittleEndian.Uint64(buf[off+56:]))
}
