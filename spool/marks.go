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
// has been handed records (Reader.Mark). It is rewritten by Open and then
// updated in place: a mark is one positional write of a 32-byte slot into
// the page cache, without fsync, so it survives a kill -9 (the kernel keeps
// what was written) but maybe not a power loss. At the next Open, the
// records between a consumer's persisted acknowledgement and its mark are
// counted as redelivered: every record an output may have delivered before
// a crash, and not acknowledged durably, is counted when it is replayed.
//
//	header: magic | count u32 | count × {len u16, name} | crc u32, zero-padded to a slot multiple
//	slot i: seg u64 | off u64 | n u64 | crc u32 (of the 24 bytes before, seeded with i) | 0 u32
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
	mu   sync.RWMutex
	f    file // nil once closed
	base int64
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

// encodeSlot fills dst with slot i holding p.
func encodeSlot(dst *[markSlotSize]byte, i int, p Pos) {
	le := binary.LittleEndian
	le.PutUint64(dst[0:], p.seg)
	le.PutUint64(dst[8:], uint64(p.off))
	le.PutUint64(dst[16:], uint64(p.n))
	le.PutUint32(dst[24:], slotCRC(i, dst[:markSlotBytes]))
	le.PutUint32(dst[28:], 0)
}

// slotCRC is the CRC-32C of b seeded with the slot index, so that a slot
// moved to another index does not verify.
func slotCRC(i int, b []byte) uint32 {
	return crc32.Update(^uint32(i), castagnoli, b)
}

// decodeMarks returns the valid, non-zero marks by consumer name. A slot
// that does not verify (torn by a power loss) is left out.
func decodeMarks(b []byte) (map[string]Pos, error) {
	if len(b) < len(marksMagic)+8 || string(b[:len(marksMagic)]) != marksMagic {
		return nil, fmt.Errorf("%w: no magic", errBadMarks)
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
		return nil, fmt.Errorf("%w: short header", errBadMarks)
	}
	if crc32.Checksum(b[:hdr], castagnoli) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", errBadMarks)
	}
	base := (hdr + 4 + markSlotSize - 1) / markSlotSize * markSlotSize
	out := make(map[string]Pos, len(names))
	le := binary.LittleEndian
	for i, name := range names {
		o := base + i*markSlotSize
		if o+markSlotSize > len(b) {
			break
		}
		s := b[o : o+markSlotSize]
		if le.Uint32(s[24:]) != slotCRC(i, s[:markSlotBytes]) {
			continue
		}
		p := Pos{seg: le.Uint64(s[0:]), off: int64(le.Uint64(s[8:])), n: int64(le.Uint64(s[16:]))}
		if p != (Pos{}) {
			out[name] = p
		}
	}
	return out, nil
}

// readMarks loads the marks of dir; none when the file does not exist.
func readMarks(fsys fileSystem, dir string) (map[string]Pos, error) {
	b, found, err := readSmallFile(fsys, filepath.Join(dir, marksFile), marksMaxSize)
	if err != nil || !found {
		return nil, err
	}
	return decodeMarks(b)
}

// createMarks replaces the marks file of dir with one whose slots are all
// unset, for names, and opens it for Reader.Mark.
func createMarks(fsys fileSystem, dir string, names []string) (*marks, error) {
	hdr := encodeMarksHeader(names)
	data := append(hdr, make([]byte, len(names)*markSlotSize)...)
	if err := replaceFile(fsys, dir, marksTemp, marksFile, data, "spool marks"); err != nil {
		return nil, err
	}
	f, err := fsys.OpenFile(filepath.Join(dir, marksFile), os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot open spool marks: %w", err)
	}
	return &marks{f: f, base: int64(len(hdr))}, nil
}

// write stores slot i; buf is the caller's scratch, so that no write
// allocates.
func (m *marks) write(i int, p Pos, buf *[markSlotSize]byte) error {
	encodeSlot(buf, i, p)
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
// After a crash, Open counts the records between the consumer's persisted
// acknowledgement and its mark as redelivered. A pos at or before the last
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
	if err := m.write(r.c.slot, pos, &r.slotBuf); err != nil {
		r.s.m.writeErrors.Inc()
		return err
	}
	return nil
}
