package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
)

// The marks file holds, for each consumer of Options.Consumers, how far it
// has been handed records (Reader.Mark) and how far it has acknowledged
// them (Reader.Ack, Skip). It is rewritten by Open and then updated in
// place: a mark or an acknowledgement is one positional write of a 32-byte
// slot into the page cache, without fsync, so it survives a kill -9 (the
// kernel keeps what was written) but maybe not a power loss. At the next
// Open, a consumer resumes after the later of its acknowledgement in the
// cursors file and the one in its ack slot, and the records between there
// and its mark are counted as redelivered: every record an output may have
// delivered before a crash, and not acknowledged, is counted when it is
// replayed.
//
//	header: magic | count u32 | count × {len u16, name} | crc u32, zero-padded to a slot multiple
//	slot i (mark of consumer i): seg u64 | off u64 | n u64 | crc u32 (of the 24 bytes before, seeded with i) | 0 u32
//	slot count+i (ack of consumer i): the same, its crc seeded with count+i and
//	    also covering run u64, the first segment of the Open that wrote the file
//
// An ack slot verifies only against the run that the cursors file names
// last (its newest epoch): a marks file left over from an earlier Open
// (a crash between Open's commit and its reset of the marks) or written by
// an Open whose cursors never reached the disk is not trusted for acks. A
// file written before ack slots existed has none (it is shorter): the
// cursors file counts, as it did.
const (
	marksMagic    = "DTRSMRK1"
	marksFile     = "marks"
	marksTemp     = "marks.tmp"
	markSlotSize  = 32
	marksMaxSize  = 1 << 20
	markSlotBytes = 24
)

var errBadMarks = errors.New("spool: corrupt marks file")

// marks is the open marks file. write may be called concurrently for
// different slots; close waits for writes under way.
type marks struct {
	mu    sync.RWMutex
	f     file // nil once closed
	base  int64
	count int     // consumers: the ack slots follow the mark slots
	run   [8]byte // little-endian run id, covered by the ack slots' crc
}

func encodeMarksHeader(names []string) []byte {
	b := append([]byte(nil), marksMagic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(names)))
	for _, n := range names {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(n)))
		b = append(b, n...)
	}
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	for len(b)%markSlotSize != 0 {
		b = append(b, 0)
	}
	return b
}

// encodeSlot fills dst with slot i holding p; run is nil for a mark slot.
func encodeSlot(dst *[markSlotSize]byte, i int, run []byte, p Pos) {
	le := binary.LittleEndian
	le.PutUint64(dst[0:], p.seg)
	le.PutUint64(dst[8:], uint64(p.off))
	le.PutUint64(dst[16:], uint64(p.n))
	le.PutUint32(dst[24:], slotCRC(i, run, dst[:markSlotBytes]))
	le.PutUint32(dst[28:], 0)
}

// slotCRC is the CRC-32C of run and b seeded with the slot index, so that a
// slot moved to another index, or an ack slot of another run, does not
// verify.
func slotCRC(i int, run, b []byte) uint32 {
	return crc32.Update(crc32.Update(^uint32(i), castagnoli, run), castagnoli, b)
}

func runBytes(run uint64) [8]byte {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], run)
	return b
}

// savedMarks is what a marks file holds, by consumer name: marks, and the
// acknowledgements whose slots verify against the run the cursors name.
type savedMarks struct {
	marks, acks map[string]Pos
}

// decodeMarks returns the valid, non-zero marks and acks by consumer name.
// A slot that does not verify (torn by a power loss, or an ack slot of
// another run than run) is left out; so are ack slots when run is zero
// (cursors that name no run).
func decodeMarks(b []byte, run uint64) (savedMarks, error) {
	if len(b) < len(marksMagic)+8 || string(b[:len(marksMagic)]) != marksMagic {
		return savedMarks{}, fmt.Errorf("%w: no magic", errBadMarks)
	}
	d := &cursorDecoder{p: b[len(marksMagic):]}
	count := d.u32()
	names := make([]string, 0, min(count, 1024))
	for i := uint32(0); i < count && d.err == nil; i++ {
		names = append(names, d.name())
	}
	hdr := len(b) - len(d.p)
	sum := d.u32()
	if d.err != nil {
		return savedMarks{}, fmt.Errorf("%w: short header", errBadMarks)
	}
	if crc32.Checksum(b[:hdr], castagnoli) != sum {
		return savedMarks{}, fmt.Errorf("%w: checksum mismatch", errBadMarks)
	}
	base := (hdr + 4 + markSlotSize - 1) / markSlotSize * markSlotSize
	out := savedMarks{marks: make(map[string]Pos, len(names)), acks: make(map[string]Pos, len(names))}
	rb := runBytes(run)
	for i, name := range names {
		if p, ok := decodeSlot(b, base, i, nil); ok {
			out.marks[name] = p
		}
		if run == 0 {
			continue
		}
		if p, ok := decodeSlot(b, base, len(names)+i, rb[:]); ok {
			out.acks[name] = p
		}
	}
	return out, nil
}

// decodeSlot returns the position in slot i if the slot exists, verifies
// and is not zero.
func decodeSlot(b []byte, base, i int, run []byte) (Pos, bool) {
	o := base + i*markSlotSize
	if o+markSlotSize > len(b) {
		return Pos{}, false
	}
	s := b[o : o+markSlotSize]
	le := binary.LittleEndian
	if le.Uint32(s[24:]) != slotCRC(i, run, s[:markSlotBytes]) {
		return Pos{}, false
	}
	p := Pos{seg: le.Uint64(s[0:]), off: int64(le.Uint64(s[8:])), n: int64(le.Uint64(s[16:]))}
	return p, p != (Pos{})
}

// readMarks loads the marks of dir, with the acks of run; none when the
// file does not exist.
func readMarks(fsys fileSystem, dir string, run uint64) (savedMarks, error) {
	b, found, err := readSmallFile(fsys, filepath.Join(dir, marksFile), marksMaxSize)
	if err != nil || !found {
		return savedMarks{}, err
	}
	return decodeMarks(b, run)
}

// createMarks replaces the marks file of dir with one whose slots are all
// unset, for names and the Open whose first segment is run, and opens it
// for Reader.Mark and the acks.
func createMarks(fsys fileSystem, dir string, names []string, run uint64) (*marks, error) {
	hdr := encodeMarksHeader(names)
	data := append(hdr, make([]byte, 2*len(names)*markSlotSize)...)
	if err := replaceFile(fsys, dir, marksTemp, marksFile, data, "spool marks"); err != nil {
		return nil, err
	}
	f, err := fsys.OpenFile(filepath.Join(dir, marksFile), os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot open spool marks: %w", err)
	}
	return &marks{f: f, base: int64(len(hdr)), count: len(names), run: runBytes(run)}, nil
}

// write stores the mark (ack false) or the ack of consumer i; buf is the
// caller's scratch, so that no write allocates.
func (m *marks) write(i int, ack bool, p Pos, buf *[markSlotSize]byte) error {
	var run []byte
	if ack {
		i, run = m.count+i, m.run[:]
	}
	encodeSlot(buf, i, run, p)
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.f == nil {
		return ErrClosed
	}
	if _, err := m.f.WriteAt(buf[:], m.base+int64(i)*markSlotSize); err != nil {
		return fmt.Errorf("cannot write spool marks: %w", err)
	}
	return nil
}

func (m *marks) close() error {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.f == nil {
		return nil
	}
	err := m.f.Close()
	m.f = nil
	return err
}

// Mark records, before the consumer delivers them, that every record up to
// and including the one at pos may be delivered from now on: records it
// was handed by Next, or received by other means (an in-memory fast path,
// see AppendPos). It writes pos into the consumer's slot of the marks file
// (one positional write, no fsync: it survives a kill -9, not necessarily a
// power loss, after which the read position of the last commit counts).
// After a crash, Open counts the records between where the consumer
// resumes (its last acknowledgement, see Ack) and its mark as redelivered. A pos at or before the last
// mark is a no-op. Call it once per delivery (a batch), not per record,
// from the goroutine that calls Next. A write error is counted, and
// returned: duplicates after a crash may then go uncounted.
func (r *Reader) Mark(pos Pos) error {
	r.pmu.Lock()
	if !r.mark.Before(pos) {
		r.pmu.Unlock()
		return nil
	}
	r.mark = pos
	r.pmu.Unlock()
	m := r.s.marks
	if m == nil {
		return nil // reported by Open
	}
	if err := m.write(r.c.slot, false, pos, &r.slotBuf); err != nil {
		r.s.m.writeErrors.Inc()
		return err
	}
	return nil
}

// ackAndMark acknowledges pos for c and, if that moved its
// acknowledgement, writes it to c's ack slot: one positional write, no
// fsync and no allocation. Concurrent calls write in order (a later
// position is never overwritten by an earlier one). A write error is
// counted and logged, not returned: the acknowledgement holds, only its
// survival of a crash before the next commit is lost.
func (s *Spool) ackAndMark(c *consumer, pos Pos) error {
	moved, err := s.ack(c, pos)
	if !moved || c.slot < 0 || s.marks == nil {
		return err
	}
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	if !c.ackWritten.Before(pos) {
		return nil
	}
	if werr := s.marks.write(c.slot, true, pos, &c.ackBuf); werr != nil {
		if !errors.Is(werr, ErrClosed) {
			s.m.writeErrors.Inc()
			s.sample.Error().Err(werr).Msg("cannot write a spool acknowledgement to the marks file: a crash before the next commit redelivers more (counted)")
		}
		return nil
	}
	c.ackWritten = pos
	return nil
}
