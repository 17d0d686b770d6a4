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

func maxPos(p, q Pos) Pos {
	if p.Before(q) {
		return q
	}
	return p
}

const (
	cursorMagicV1 = "DTRSCUR1"
	cursorMagic   = "DTRSCUR2"
	cursorsFile   = "cursors"
	cursorsTemp   = "cursors.tmp"
	cursorMaxSize = 1 << 20
)

var errBadCursors = errors.New("spool: corrupt cursors file")

// cursorRec is one consumer's persisted positions: everything before ack is
// acknowledged; everything before read had been handed out.
type cursorRec struct {
	name      string
	ack, read Pos
	// until is set for a consumer no output claims, kept so that
	// spool.rename can still hand its backlog over: the backlog ends before
	// segment until (what was appended later was never meant for it).
	until uint64
	// A consumer that took over another's backlog while it had records of
	// its own skips [gapFrom, gapTo): the records between the end of the
	// backlog and its own first pending record. gapTo is zero when none.
	gapFrom, gapTo Pos
	// markAck is the acknowledgement read from the marks file (marks.go),
	// zero if none; not part of the cursors file.
	markAck Pos
}

func (c *cursorRec) gapped() bool { return c.gapTo != Pos{} }

// epoch records the consumers, in Options.Consumers order, of the Open that
// started segment first: a record's output mask (kept by the caller inside
// the record) refers to that order, which a later configuration may change.
type epoch struct {
	first uint64
	names []string
}

// cursorState is the content of the cursors file.
type cursorState struct {
	recs   []cursorRec
	epochs []epoch
}

// encodeCursors (version 2), little endian:
//
//	magic | count u32 | count × {len u16, name, ack, read, until u64, gapFrom, gapTo}
//	| epochs u32 | epochs × {first u64, n u16, n × {len u16, name}} | crc u32
//
// where each position is {seg u64, off u64} and crc is the CRC-32C of all
// that precedes it.
func encodeCursors(st cursorState) []byte {
	b := append([]byte(nil), cursorMagic...)
	le := binary.LittleEndian
	pos := func(p Pos) {
		b = le.AppendUint64(b, p.seg)
		b = le.AppendUint64(b, uint64(p.off))
	}
	name := func(s string) {
		b = le.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	}
	b = le.AppendUint32(b, uint32(len(st.recs)))
	for _, r := range st.recs {
		name(r.name)
		pos(r.ack)
		pos(r.read)
		b = le.AppendUint64(b, r.until)
		pos(r.gapFrom)
		pos(r.gapTo)
	}
	b = le.AppendUint32(b, uint32(len(st.epochs)))
	for _, e := range st.epochs {
		b = le.AppendUint64(b, e.first)
		b = le.AppendUint16(b, uint16(len(e.names)))
		for _, n := range e.names {
			name(n)
		}
	}
	return le.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// cursorDecoder reads the fields of a cursors file, failing once.
type cursorDecoder struct {
	p   []byte
	err error
}

func (d *cursorDecoder) take(n int) []byte {
	if d.err != nil || len(d.p) < n {
		d.err = fmt.Errorf("%w: short entry", errBadCursors)
		return nil
	}
	b := d.p[:n]
	d.p = d.p[n:]
	return b
}

func (d *cursorDecoder) u16() int {
	if b := d.take(2); b != nil {
		return int(binary.LittleEndian.Uint16(b))
	}
	return 0
}

func (d *cursorDecoder) u32() uint32 {
	if b := d.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (d *cursorDecoder) u64() uint64 {
	if b := d.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (d *cursorDecoder) pos() Pos { return Pos{seg: d.u64(), off: int64(d.u64())} }

func (d *cursorDecoder) name() string { return string(d.take(d.u16())) }

// decodeCursors reads version 2, and version 1 (no until, gaps or epochs).
func decodeCursors(b []byte) (cursorState, error) {
	var st cursorState
	if len(b) < len(cursorMagic)+8 {
		return st, fmt.Errorf("%w: no magic", errBadCursors)
	}
	v1 := string(b[:len(cursorMagic)]) == cursorMagicV1
	if !v1 && string(b[:len(cursorMagic)]) != cursorMagic {
		return st, fmt.Errorf("%w: no magic", errBadCursors)
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return st, fmt.Errorf("%w: checksum mismatch", errBadCursors)
	}
	d := &cursorDecoder{p: body[len(cursorMagic):]}
	count := d.u32()
	for i := uint32(0); i < count && d.err == nil; i++ {
		r := cursorRec{name: d.name(), ack: d.pos(), read: d.pos()}
		if !v1 {
			r.until, r.gapFrom, r.gapTo = d.u64(), d.pos(), d.pos()
		}
		st.recs = append(st.recs, r)
	}
	if !v1 {
		n := d.u32()
		for i := uint32(0); i < n && d.err == nil; i++ {
			e := epoch{first: d.u64()}
			k := d.u16()
			for j := 0; j < k && d.err == nil; j++ {
				e.names = append(e.names, d.name())
			}
			st.epochs = append(st.epochs, e)
		}
	}
	if d.err == nil && len(d.p) != 0 {
		d.err = fmt.Errorf("%w: trailing bytes", errBadCursors)
	}
	if d.err != nil {
		return cursorState{}, d.err
	}
	return st, nil
}

// readCursors loads the cursors file of dir. It reports found false when
// the file does not exist.
func readCursors(fsys fileSystem, dir string) (st cursorState, found bool, err error) {
	b, found, err := readSmallFile(fsys, filepath.Join(dir, cursorsFile), cursorMaxSize)
	if err != nil || !found {
		return st, found, err
	}
	st, err = decodeCursors(b)
	return st, true, err
}

// readSmallFile reads a file of at most limit bytes; found is false when it
// does not exist.
func readSmallFile(fsys fileSystem, name string, limit int64) (b []byte, found bool, err error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, fmt.Errorf("cannot open %s: %w", filepath.Base(name), err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, true, fmt.Errorf("cannot stat %s: %w", filepath.Base(name), err)
	}
	if st.Size() > limit {
		return nil, true, fmt.Errorf("%w: %s has %d bytes", errBadCursors, filepath.Base(name), st.Size())
	}
	b = make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
		return nil, true, fmt.Errorf("cannot read %s: %w", filepath.Base(name), err)
	}
	return b, true, nil
}

// writeCursors atomically replaces the cursors file of dir.
func writeCursors(fsys fileSystem, dir string, st *cursorState) error {
	return replaceFile(fsys, dir, cursorsTemp, cursorsFile, encodeCursors(*st), "spool cursors")
}

// replaceFile atomically replaces dir/name with data through dir/tmp:
// write, fsync, rename, fsync the directory.
func replaceFile(fsys fileSystem, dir, tmp, name string, data []byte, what string) error {
	tp := filepath.Join(dir, tmp)
	f, err := fsys.OpenFile(tp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("cannot create %s: %w", what, err)
	}
	_, err = f.WriteAt(data, 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", what, err)
	}
	if err := fsys.Rename(tp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("cannot rename %s: %w", what, err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("cannot sync spool directory: %w", err)
	}
	return nil
}

// cursorSnapshotLocked returns every consumer's state if any position
// changed since it was last persisted, else nil.
func (s *Spool) cursorSnapshotLocked() *cursorState {
	st := &cursorState{recs: make([]cursorRec, 0, len(s.cons)), epochs: s.liveEpochsLocked()}
	changed := false
	for _, c := range s.cons {
		read := c.lastRead
		if c.r != nil {
			read = c.r.readPos()
		}
		if read.Before(c.ack) {
			read = c.ack
		}
		changed = changed || read != c.persistedRead || c.ack != c.persistedAck
		st.recs = append(st.recs, cursorRec{name: c.name, ack: c.ack, read: read,
			until: c.until, gapFrom: c.gapFrom, gapTo: c.gapTo})
	}
	if !changed {
		return nil
	}
	return st
}

// liveEpochsLocked returns the epochs that still describe a segment on
// disk: those before the first segment's epoch are dropped.
func (s *Spool) liveEpochsLocked() []epoch {
	ep := s.epochs
	if len(s.segs) == 0 {
		return ep
	}
	first := s.segs[0].id
	for len(ep) > 1 && ep[1].first <= first {
		ep = ep[1:]
	}
	return ep
}
