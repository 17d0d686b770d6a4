package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// Pos is the position of a record in the spool, as returned by Reader.Next:
// it designates that record and, for Ack, every record before it. Positions
// of one spool are totally ordered; the zero Pos precedes every record.
type Pos struct {
	seg uint64 // segment id
	off int64  // offset just past the record in its segment
	n   int64  // records in the segment up to and including this one
}

// Before reports whether p is before q.
func (p Pos) Before(q Pos) bool {
	return p.seg < q.seg || (p.seg == q.seg && p.off < q.off)
}

// String returns "segment:offset", for logs.
func (p Pos) String() string { return fmt.Sprintf("%016x:%d", p.seg, p.off) }

const (
	cursorMagic   = "DTRSCUR1"
	cursorsFile   = "cursors"
	cursorsTemp   = "cursors.tmp"
	cursorMaxSize = 1 << 20
)

var errBadCursors = errors.New("spool: corrupt cursors file")

// cursorRec is one consumer's persisted positions: everything before ack is
// acknowledged; everything before read had been handed out by Next.
type cursorRec struct {
	name      string
	ack, read Pos
}

// encodeCursors: magic | count u32 | {len u16, name, ackSeg, ackOff, readSeg, readOff} | crc u32.
func encodeCursors(recs []cursorRec) []byte {
	b := append([]byte(nil), cursorMagic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(recs)))
	for _, r := range recs {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(r.name)))
		b = append(b, r.name...)
		b = binary.LittleEndian.AppendUint64(b, r.ack.seg)
		b = binary.LittleEndian.AppendUint64(b, uint64(r.ack.off))
		b = binary.LittleEndian.AppendUint64(b, r.read.seg)
		b = binary.LittleEndian.AppendUint64(b, uint64(r.read.off))
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeCursors(b []byte) (map[string]cursorRec, error) {
	if len(b) < len(cursorMagic)+8 || string(b[:len(cursorMagic)]) != cursorMagic {
		return nil, fmt.Errorf("%w: no magic", errBadCursors)
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", errBadCursors)
	}
	p := body[len(cursorMagic):]
	count := binary.LittleEndian.Uint32(p)
	p = p[4:]
	out := make(map[string]cursorRec, min(count, 1024))
	for i := uint32(0); i < count; i++ {
		if len(p) < 2 {
			return nil, fmt.Errorf("%w: short entry", errBadCursors)
		}
		n := int(binary.LittleEndian.Uint16(p))
		if len(p) < 2+n+32 {
			return nil, fmt.Errorf("%w: short entry", errBadCursors)
		}
		r := cursorRec{name: string(p[2 : 2+n])}
		q := p[2+n:]
		r.ack = Pos{seg: binary.LittleEndian.Uint64(q), off: int64(binary.LittleEndian.Uint64(q[8:]))}
		r.read = Pos{seg: binary.LittleEndian.Uint64(q[16:]), off: int64(binary.LittleEndian.Uint64(q[24:]))}
		out[r.name] = r
		p = q[32:]
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("%w: trailing bytes", errBadCursors)
	}
	return out, nil
}

// readCursors loads the cursors file of dir. It returns (nil, nil) when the
// file does not exist.
func readCursors(fsys fileSystem, dir string) (map[string]cursorRec, error) {
	f, err := fsys.OpenFile(filepath.Join(dir, cursorsFile), os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot open spool cursors: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot stat spool cursors: %w", err)
	}
	if st.Size() > cursorMaxSize {
		return nil, fmt.Errorf("%w: %d bytes", errBadCursors, st.Size())
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("cannot read spool cursors: %w", err)
	}
	return decodeCursors(b)
}

// writeCursors atomically replaces the cursors file of dir.
func writeCursors(fsys fileSystem, dir string, recs []cursorRec) error {
	tmp := filepath.Join(dir, cursorsTemp)
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("cannot create spool cursors: %w", err)
	}
	_, err = f.WriteAt(encodeCursors(recs), 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot write spool cursors: %w", err)
	}
	if err := fsys.Rename(tmp, filepath.Join(dir, cursorsFile)); err != nil {
		return fmt.Errorf("cannot rename spool cursors: %w", err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("cannot sync spool directory: %w", err)
	}
	return nil
}
