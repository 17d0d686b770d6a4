package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// unknownCreatedSlack places the stand-in creation time of a segment whose
// header is unreadable this far before the file's modification time, so
// that plausibleTime (which accepts stamps from a day before a segment's
// creation to 20 years after it) accepts every stamp its frames can carry.
const unknownCreatedSlack = 19 * 365 * 24 * time.Hour

// segScan is what reading one segment file found; scanning changes nothing.
type segScan struct {
	size    int64 // of the file
	created int64
	sc      scanResult
	// readErr is an I/O error that ended the frame scan early: the rest of
	// the file is unknown, not corrupt, and must not be truncated.
	readErr error
	// badHeader: the header did not verify (or named another segment); the
	// frames were found by resynchronisation and created is the first
	// frame's stamp.
	badHeader error
	// unreadable: the file could not be opened or read at all.
	unreadable error
	// torn: shorter than a header (created, never written, or cut).
	torn bool
	// setAside: nothing usable (an unknown format version, or a bad header
	// and no frame that verifies); why says what.
	setAside error
}

// scanFile verifies segment file name (segment id), calling visit for every
// valid record. It returns the file, opened with flag, unless unreadable;
// the caller closes it.
func scanFile(fsys fileSystem, w *window, name string, id uint64, flag int, visit func(idx, start, end int64)) (segScan, file) {
	var ss segScan
	f, err := fsys.OpenFile(name, flag, 0)
	if err != nil {
		ss.unreadable = err
		return ss, nil
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = errors.New("not a regular file")
	}
	if err != nil {
		_ = f.Close()
		ss.unreadable = err
		return ss, nil
	}
	ss.size = st.Size()
	hdr := make([]byte, segHeaderSize)
	if ss.size >= segHeaderSize {
		_, err = f.ReadAt(hdr, 0)
	}
	if ss.size < segHeaderSize || err != nil {
		ss.torn, ss.readErr = true, err
		return ss, f
	}
	hid, created, err := parseSegHeader(hdr)
	if err == nil && hid != id {
		err = fmt.Errorf("%w: it names segment %016x", errBadHeader, hid)
	}
	if err != nil && unknownVersion(hdr) {
		ss.setAside = err
		return ss, f
	}
	if err != nil {
		ss.badHeader = err
		created = st.ModTime().UnixNano() - int64(unknownCreatedSlack)
	}
	w.reset(f)
	ss.sc, ss.readErr = scanSegment(w, ss.size, created, MaxRecordSize, visit)
	w.reset(nil)
	ss.created = created
	if ss.badHeader != nil {
		if ss.sc.records == 0 {
			ss.setAside = ss.badHeader
			return ss, f
		}
		ss.created = ss.sc.marks[0].ts
	}
	return ss, f
}

// unknownVersion reports a header that verifies but carries a format
// version this code does not know: set aside, never resynchronised.
func unknownVersion(h []byte) bool {
	return string(h[0:8]) == segMagic &&
		crc32.Checksum(h[:28], castagnoli) == binary.LittleEndian.Uint32(h[28:32]) &&
		binary.LittleEndian.Uint32(h[8:12]) != segVersion
}

// corruptRegions returns the corrupt regions and bytes of a scanned,
// usable segment, a bad header included.
func (ss *segScan) corruptRegions() (int, int64) {
	n, b := ss.sc.corrupt, ss.sc.corruptBytes
	if ss.badHeader != nil {
		n, b = n+1, b+segHeaderSize
	}
	return n, b
}

// listSegmentFiles returns the ids of the segment files of dir in
// ascending order, the highest id in use (set-aside files included) and
// the names of the set-aside files: "*.seg.corrupt" (recovery) and
// "*.seg.kept" (Reader.Keep).
func listSegmentFiles(fsys fileSystem, dir string) (ids []uint64, maxID uint64, aside []string, err error) {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("cannot list spool directory: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		base, set := strings.CutSuffix(name, ".seg.corrupt")
		if !set {
			base, set = strings.CutSuffix(name, ".seg"+keptSuffix)
		}
		if !set {
			var ok bool
			if base, ok = strings.CutSuffix(name, ".seg"); !ok {
				continue
			}
		}
		if len(base) != 16 {
			continue
		}
		id, err := strconv.ParseUint(base, 16, 64)
		if err != nil {
			continue
		}
		maxID = max(maxID, id)
		if set {
			aside = append(aside, name)
		} else {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	sort.Strings(aside)
	return ids, maxID, aside, nil
}

// listSegments is listSegmentFiles for Open, which also removes the
// temporary file of an interrupted cursors or marks write.
func (s *Spool) listSegments() (ids []uint64, maxID uint64, err error) {
	for _, tmp := range []string{cursorsTemp, marksTemp} {
		if err := s.fs.Remove(filepath.Join(s.opts.Dir, tmp)); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn().Err(err).Str("file", tmp).Msg("cannot remove an interrupted spool write")
		}
	}
	ids, maxID, _, err = listSegmentFiles(s.fs, s.opts.Dir)
	if err == nil && maxID >= math.MaxUint64/2 {
		err = fmt.Errorf("spool: segment ids exhausted in %s", s.opts.Dir)
	}
	return ids, maxID, err
}
