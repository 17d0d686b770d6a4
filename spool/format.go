package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"
)

const (
	segMagic        = "DTRSPOOL"
	segVersion      = 1
	segHeaderSize   = 32
	frameHeaderSize = 16
	// markInterval spaces the (position, time) marks kept per segment for
	// the oldest-age gauge.
	markInterval = int64(time.Second)
	// readChunk is how much a window reads at once.
	readChunk = 512 << 10
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errBadHeader = errors.New("spool: bad segment header")

// appendSegHeader appends the header of segment id created at created.
func appendSegHeader(dst []byte, id uint64, created int64) []byte {
	var h [segHeaderSize]byte
	copy(h[0:8], segMagic)
	binary.LittleEndian.PutUint32(h[8:12], segVersion)
	binary.LittleEndian.PutUint64(h[12:20], id)
	binary.LittleEndian.PutUint64(h[20:28], uint64(created))
	binary.LittleEndian.PutUint32(h[28:32], crc32.Checksum(h[:28], castagnoli))
	return append(dst, h[:]...)
}

// parseSegHeader checks a segment header and returns its id and creation time.
func parseSegHeader(h []byte) (id uint64, created int64, err error) {
	if len(h) < segHeaderSize || string(h[0:8]) != segMagic {
		return 0, 0, fmt.Errorf("%w: no magic", errBadHeader)
	}
	if v := binary.LittleEndian.Uint32(h[8:12]); v != segVersion {
		return 0, 0, fmt.Errorf("%w: version %d", errBadHeader, v)
	}
	if crc32.Checksum(h[:28], castagnoli) != binary.LittleEndian.Uint32(h[28:32]) {
		return 0, 0, fmt.Errorf("%w: checksum mismatch", errBadHeader)
	}
	return binary.LittleEndian.Uint64(h[12:20]), int64(binary.LittleEndian.Uint64(h[20:28])), nil
}

// appendFrame appends the frame of rec, stamped ts, to dst.
func appendFrame(dst, rec []byte, ts int64) []byte {
	n := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(rec)))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(ts))
	dst = binary.LittleEndian.AppendUint32(dst, 0)
	dst = append(dst, rec...)
	fr := dst[n:]
	binary.LittleEndian.PutUint32(fr[12:16], crc32.Update(crc32.Checksum(fr[:12], castagnoli), castagnoli, fr[frameHeaderSize:]))
	return dst
}

// frameLen returns the payload length and time stamp in frame header h.
func frameLen(h []byte) (n int64, ts int64) {
	return int64(binary.LittleEndian.Uint32(h[0:4])), int64(binary.LittleEndian.Uint64(h[4:12]))
}

// frameOK reports whether frame (header and payload) carries a valid CRC.
func frameOK(fr []byte) bool {
	crc := crc32.Update(crc32.Checksum(fr[:12], castagnoli), castagnoli, fr[frameHeaderSize:])
	return crc == binary.LittleEndian.Uint32(fr[12:16])
}

// plausibleTime filters resynchronisation candidates: a frame's stamp is
// near its segment's creation time (clocks may step back a little).
func plausibleTime(ts, created int64) bool {
	return ts >= created-int64(24*time.Hour) && ts <= created+int64(20*365*24*time.Hour)
}

// window is a read buffer over one segment file. Slices it returns stay
// valid until the next call of get or reset.
type window struct {
	ra  io.ReaderAt
	buf []byte
	off int64 // file offset of buf[0]
}

func (w *window) reset(ra io.ReaderAt) {
	w.ra, w.buf, w.off = ra, w.buf[:0], 0
}

// get returns the file bytes [off, off+n), reading ahead up to limit. It
// returns io.ErrUnexpectedEOF when off+n is past limit or the file end.
func (w *window) get(off, n, limit int64) ([]byte, error) {
	if off >= w.off && off+n <= w.off+int64(len(w.buf)) {
		return w.buf[off-w.off : off-w.off+n], nil
	}
	if off+n > limit {
		return nil, io.ErrUnexpectedEOF
	}
	want := max(n, readChunk)
	if off+want > limit {
		want = limit - off
	}
	if int64(cap(w.buf)) < want {
		w.buf = make([]byte, want)
	}
	w.buf = w.buf[:want]
	m, err := w.ra.ReadAt(w.buf, off)
	w.buf, w.off = w.buf[:m], off
	if int64(m) < n {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return w.buf[:n], nil
}

// frameAt returns the frame at off if a valid one lies within limit. ok is
// false for a corrupt frame; err reports an I/O error other than a short read.
func frameAt(w *window, off, limit int64, maxRec int) (fr []byte, ok bool, err error) {
	h, err := w.get(off, frameHeaderSize, limit)
	if err != nil {
		return nil, false, ioError(err)
	}
	n, _ := frameLen(h)
	if n > int64(maxRec) || off+frameHeaderSize+n > limit {
		return nil, false, nil
	}
	fr, err = w.get(off, frameHeaderSize+n, limit)
	if err != nil {
		return nil, false, ioError(err)
	}
	return fr, frameOK(fr), nil
}

func ioError(err error) error {
	if err == io.ErrUnexpectedEOF {
		return nil
	}
	return err
}

// resync returns the offset of the first valid frame at or after from, or
// (limit, false) when there is none.
func resync(w *window, from, limit, created int64, maxRec int) (int64, bool, error) {
	for o := from; o+frameHeaderSize <= limit; o++ {
		h, err := w.get(o, frameHeaderSize, limit)
		if err != nil {
			return limit, false, ioError(err)
		}
		n, ts := frameLen(h)
		if n > int64(maxRec) || o+frameHeaderSize+n > limit || !plausibleTime(ts, created) {
			continue
		}
		_, ok, err := frameAt(w, o, limit, maxRec)
		if err != nil {
			return limit, false, err
		}
		if ok {
			return o, true, nil
		}
	}
	return limit, false, nil
}

type mark struct{ off, ts int64 }  // the record at off was appended at ts
type skip struct{ from, to int64 } // a corrupt region, skipped by readers

// scanResult is what scanSegment learnt about one segment.
type scanResult struct {
	end          int64 // end of the valid data; the file is truncated here
	records      int64
	marks        []mark
	skips        []skip
	corrupt      int   // corrupt regions, a torn tail included
	corruptBytes int64 // bytes in those regions
}

// scanSegment verifies every frame of a segment of the given size, calling
// each for every valid record (idx counts records from 0 in this segment).
// A read error ends the scan early: the rest of the segment is reported as
// corrupt but err is returned so that the caller does not truncate it.
func scanSegment(w *window, size, created int64, maxRec int, each func(idx, start, end int64)) (scanResult, error) {
	var sc scanResult
	off := int64(segHeaderSize)
	for off < size {
		fr, ok, err := frameAt(w, off, size, maxRec)
		if err != nil {
			sc.end, sc.corrupt, sc.corruptBytes = off, sc.corrupt+1, sc.corruptBytes+size-off
			return sc, err
		}
		if ok {
			end := off + int64(len(fr))
			_, ts := frameLen(fr)
			if len(sc.marks) == 0 || ts-sc.marks[len(sc.marks)-1].ts >= markInterval {
				sc.marks = append(sc.marks, mark{off, ts})
			}
			each(sc.records, off, end)
			sc.records++
			off = end
			continue
		}
		next, found, err := resync(w, off+1, size, created, maxRec)
		sc.corrupt++
		sc.corruptBytes += next - off
		if err != nil || !found {
			sc.end = off
			return sc, err
		}
		sc.skips = append(sc.skips, skip{off, next})
		off = next
	}
	sc.end = off
	return sc, nil
}
