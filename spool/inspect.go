package spool

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Report is what Inspect found in a spool directory.
type Report struct {
	Dir string
	// LockPID is the process that holds the spool's lock (a running
	// relay), 0 if none; LockKnown is false when that cannot be told
	// (no /proc/locks). While a relay runs the figures are a snapshot: the
	// acknowledgements are those its outputs wrote to the marks file, or
	// those of its last commit (at most fsync_interval old).
	LockPID   int
	LockKnown bool
	// CursorsErr is set when the cursors file is unreadable: the next Open
	// replays everything to every consumer (counted as redelivered).
	CursorsErr error
	// CursorsMissing: segments but no cursors file (the same at Open).
	CursorsMissing bool
	Consumers      []ConsumerReport
	Segments       []SegmentReport
	Corrupt        []Region
	SetAside       []string // files set aside: *.seg.corrupt, *.seg.kept (Reader.Keep)
	Bytes, Records int64    // of the segments listed

	st cursorState
}

// Claims says, for each consumer of the report, what an Open with the
// given consumers and renames would do with it: "" when the consumer of
// that name resumes it, the name of the consumer it is handed to (by a
// rename), or "unclaimed: " and why.
func (r *Report) Claims(consumers []string, rename map[string]string) map[string]string {
	p := planClaims(r.st, consumers, rename)
	out := make(map[string]string, len(r.st.recs))
	for to, from := range p.own {
		if from != to {
			out[from] = to
		}
	}
	for to, from := range p.backlog {
		out[from] = to
	}
	for _, n := range p.unclaimed {
		why := "no output has this name"
		if r := p.refused[n]; r != "" {
			why = "spool.rename does not apply: " + r
		}
		out[n] = "unclaimed: " + why
	}
	return out
}

// ConsumerReport is one saved cursor.
type ConsumerReport struct {
	Name string
	// Unclaimed: no consumer of the last Open claimed it; its backlog is
	// kept for a spool.rename.
	Unclaimed    bool
	Pending      int64 // records not acknowledged
	PendingBytes int64 // their frames on disk
	// Handed is how many of the pending records had been handed out: the
	// next Open counts them as redelivered.
	Handed int64
	// Oldest is the age of the oldest pending record (to about a second).
	Oldest time.Duration
	// Reason, from CheckConsumers, says why a rename that names it does
	// not apply.
	Reason string
}

// SegmentReport is one segment file.
type SegmentReport struct {
	Name    string
	Bytes   int64
	Records int64
	Created time.Time
}

// Region is a corrupt or unreadable part of a segment.
type Region struct {
	Segment       string
	Offset, Bytes int64
	What          string
}

// Inspect reads the spool in dir without changing anything and without
// taking its lock, so it works on a stopped spool and beside a running
// relay. It reads every segment, so it takes time proportional to the
// spool's size.
func Inspect(dir string) (*Report, error) {
	return inspect(osFS{}, dir, nil, time.Now())
}

// CheckConsumers reports the saved cursors of the spool in dir that the
// given consumers and renames leave unclaimed and that have records
// pending: what Open would keep aside (and drop when it needs the space)
// instead of delivering. Like Inspect it changes nothing; it reads the
// segments only when some cursor is unclaimed. A missing dir has none.
func CheckConsumers(dir string, consumers []string, rename map[string]string) ([]ConsumerReport, error) {
	if _, err := os.Stat(filepath.Join(dir, cursorsFile)); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	st, _, err := readCursors(osFS{}, dir)
	if err != nil {
		return nil, err
	}
	plan := planClaims(st, consumers, rename)
	if len(plan.unclaimed) == 0 {
		return nil, nil
	}
	only := make(map[string]bool, len(plan.unclaimed))
	for _, n := range plan.unclaimed {
		only[n] = true
	}
	rep, err := inspect(osFS{}, dir, only, time.Now())
	if err != nil {
		return nil, err
	}
	var out []ConsumerReport
	for _, c := range rep.Consumers {
		if c.Pending == 0 {
			continue
		}
		for old, why := range plan.refused {
			if old == c.Name {
				c.Reason = why
			}
		}
		out = append(out, c)
	}
	return out, nil
}

func inspect(fsys fileSystem, dir string, only map[string]bool, now time.Time) (*Report, error) {
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("cannot inspect spool: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("cannot inspect spool: %s is not a directory", dir)
	}
	rep := &Report{Dir: dir}
	rep.LockPID, rep.LockKnown = lockHolder(filepath.Join(dir, "lock"))
	st, found, curErr, _ := readState(fsys, dir)
	rep.CursorsErr, rep.st = curErr, st
	ids, _, aside, err := listSegmentFiles(fsys, dir)
	if err != nil {
		return nil, err
	}
	rep.SetAside = aside
	rep.CursorsMissing = !found && curErr == nil && len(ids) > 0
	var rs []*resume
	for _, r := range st.recs {
		if only == nil || only[r.name] {
			r.ack = maxPos(r.ack, r.markAck) // as Open resumes it
			rs = append(rs, &resume{rec: r})
		}
	}
	marks := make(map[uint64][]mark, len(ids))
	w := &window{}
	for i, id := range ids {
		name := filepath.Join(dir, fmt.Sprintf("%016x.seg", id))
		base := filepath.Base(name)
		ss, f := scanFile(fsys, w, name, id, os.O_RDONLY, func(idx, start, end int64) {
			for _, r := range rs {
				r.visit(id, idx, start, end)
			}
		})
		if f != nil {
			_ = f.Close()
		}
		writing := rep.LockPID != 0 && i == len(ids)-1 // the active segment of a running relay
		switch {
		case errors.Is(ss.unreadable, os.ErrNotExist): // deleted meanwhile
			continue
		case ss.unreadable != nil:
			rep.Corrupt = append(rep.Corrupt, Region{base, 0, 0, "cannot be read: " + ss.unreadable.Error()})
			continue
		case ss.torn:
			if ss.size > 0 && !writing {
				rep.Corrupt = append(rep.Corrupt, Region{base, 0, ss.size, "torn header (removed at the next start)"})
			}
			continue
		case ss.setAside != nil:
			rep.Corrupt = append(rep.Corrupt, Region{base, 0, ss.size, ss.setAside.Error() + " (set aside at the next start)"})
			continue
		}
		if ss.badHeader != nil {
			rep.Corrupt = append(rep.Corrupt, Region{base, 0, segHeaderSize, ss.badHeader.Error() + " (frames recovered)"})
		}
		for _, k := range ss.sc.skips {
			rep.Corrupt = append(rep.Corrupt, Region{base, k.from, k.to - k.from, "corrupt frames (skipped)"})
		}
		if tail := ss.size - ss.sc.end; tail > 0 && !writing {
			what := "torn tail (cut at the next start)"
			if ss.readErr != nil {
				what = "unreadable: " + ss.readErr.Error()
			}
			rep.Corrupt = append(rep.Corrupt, Region{base, ss.sc.end, tail, what})
		}
		marks[id] = ss.sc.marks
		rep.Segments = append(rep.Segments, SegmentReport{base, ss.size, ss.sc.records, time.Unix(0, ss.created)})
		rep.Bytes += ss.size
		rep.Records += ss.sc.records
	}
	for _, r := range rs {
		c := ConsumerReport{Name: r.rec.name, Unclaimed: r.rec.until != 0,
			Pending: r.replayed, PendingBytes: r.bytes, Handed: r.redelivered}
		if r.found {
			c.Oldest = ageAt(marks[r.at.seg], r.at.off, now)
		}
		rep.Consumers = append(rep.Consumers, c)
	}
	return rep, nil
}

// ageAt approximates from a segment's marks the age of the record at off.
func ageAt(ms []mark, off int64, now time.Time) time.Duration {
	if len(ms) == 0 {
		return 0
	}
	i := sort.Search(len(ms), func(i int) bool { return ms[i].off > off })
	if i > 0 {
		i--
	}
	return max(time.Duration(now.UnixNano()-ms[i].ts), 0)
}

// lockHolder returns the pid that holds a flock on the file at path, from
// /proc/locks, without taking the lock (which a relay starting meanwhile
// would find taken). known is false without /proc/locks.
func lockHolder(path string) (pid int, known bool) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, errors.Is(err, os.ErrNotExist) // no lock file: not running
	}
	f, err := os.Open("/proc/locks")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	dev := uint64(st.Dev)
	major, minor := (dev>>8)&0xfff|(dev>>32)&^0xfff, dev&0xff|(dev>>12)&^0xff
	want := fmt.Sprintf("%02x:%02x:%d", major, minor, st.Ino)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 1: FLOCK  ADVISORY  WRITE 1234 08:01:56789 0 EOF
		fs := strings.Fields(sc.Text())
		if len(fs) >= 6 && fs[1] == "FLOCK" && fs[5] == want {
			if p, err := strconv.Atoi(fs[4]); err == nil {
				return p, true
			}
		}
	}
	return 0, true
}
