package spool

import (
	"errors"
	"fmt"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
)

// WhenFull policies.
const (
	WhenFullBlock      = "block"
	WhenFullDropOldest = "drop_oldest"
)

// Defaults applied by Open to zero Options fields.
const (
	DefaultMaxSize = 1 << 30
	// DefaultSegmentSize caps the segment size Open derives from MaxSize.
	DefaultSegmentSize   = 64 << 20
	DefaultFsyncInterval = time.Second
	// MaxRecordSize bounds one record (a 16 MiB message and its metadata);
	// smaller segments lower it further to what fits in one segment.
	MaxRecordSize = 16<<20 + 64<<10

	minSegmentSize = 4 << 10
	// Derived segment size: MaxSize/segmentsPerSpool, at least segmentFloor
	// (or MaxSize/minSegments for smaller spools) and one record.
	segmentsPerSpool = 16
	segmentFloor     = 1 << 20
	// minSegments is how many segments MaxSize holds at least, so that
	// acknowledged or dropped segments give space back in steps.
	minSegments = 4
)

// MinMaxSize returns the smallest MaxSize with which Open accepts a
// MaxRecord of maxRecord bytes: room for minSegments (4) segments that each
// hold such a record.
func MinMaxSize(maxRecord int) int64 {
	return minSegments * (int64(maxRecord) + segHeaderSize + frameHeaderSize)
}

// Errors returned by the spool.
var (
	ErrClosed          = errors.New("spool: closed")
	ErrTooLarge        = errors.New("spool: record too large")
	ErrFull            = errors.New("spool: full")
	ErrLocked          = errors.New("spool: directory in use by another process")
	ErrUnknownConsumer = errors.New("spool: unknown consumer")
	ErrReaderInUse     = errors.New("spool: consumer already has an open reader")
	ErrAckAhead        = errors.New("spool: ack beyond the last record read")
	ErrNotReady        = errors.New("spool: no record ready")
)

// Options configure a Spool. Dir and Consumers are required; zero values of
// the other fields take the defaults above.
type Options struct {
	// Dir is the spool directory; it is created if missing.
	Dir string
	// MaxSize bounds the total size of the segment files, in bytes.
	MaxSize int64
	// FsyncInterval is the group-commit period: written records are fsynced
	// and the cursors persisted this often.
	FsyncInterval time.Duration
	// WhenFull is WhenFullBlock (default) or WhenFullDropOldest.
	WhenFull string
	// SegmentSize is the size at which the active segment is sealed and a
	// new one started. Zero derives it from MaxSize: MaxSize/16, at least
	// 1 MiB (MaxSize/4 for spools under 4 MiB) and one MaxRecord, at most
	// DefaultSegmentSize. It is lowered to MaxSize/4 so that acknowledged
	// space can always be freed, and on a full disk to an eighth of what
	// the disk held.
	SegmentSize int64
	// MaxRecord is the largest record the caller will append (0: no
	// promise). Segments are made to hold one, and Open fails when MaxSize
	// is under MinMaxSize(MaxRecord).
	MaxRecord int
	// Consumers names the consumers (outputs); each has a persisted cursor.
	// A consumer that is new to an existing spool starts at its end; the
	// cursor of a consumer no longer listed is kept unclaimed while it has
	// records pending (see claims.go). The order matters: Reader.Owner
	// tells a record's consumer index in the Open that appended it.
	Consumers []string
	// Rename hands the cursor of a consumer that is gone (the key) to one
	// of Consumers (the value), so that a renamed output gets its backlog;
	// see claims.go. A rename that does not apply is logged and ignored.
	Rename map[string]string
	// Metrics receives the spool's metrics; nil means a private set. Use one
	// set per open Spool: gauges are registered on Open and removed on Close.
	Metrics *metrics.Set
	// Log receives recovery reports, drops, write errors and block notices.
	Log zerolog.Logger

	fs  fileSystem       // nil: the operating system (tests inject faults)
	now func() time.Time // nil: time.Now (tests move the clock)
}

func (o *Options) normalize() error {
	if o.Dir == "" {
		return errors.New("spool: dir is required")
	}
	if o.MaxSize == 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.FsyncInterval == 0 {
		o.FsyncInterval = DefaultFsyncInterval
	}
	if o.WhenFull == "" {
		o.WhenFull = WhenFullBlock
	}
	switch {
	case o.MaxSize < 0:
		return fmt.Errorf("spool: invalid max_size %d", o.MaxSize)
	case o.SegmentSize < 0:
		return fmt.Errorf("spool: invalid segment size %d", o.SegmentSize)
	case o.MaxRecord < 0 || o.MaxRecord > MaxRecordSize:
		return fmt.Errorf("spool: invalid max record size %d (limit %d)", o.MaxRecord, MaxRecordSize)
	case o.FsyncInterval < 0:
		return fmt.Errorf("spool: invalid fsync_interval %v", o.FsyncInterval)
	case o.WhenFull != WhenFullBlock && o.WhenFull != WhenFullDropOldest:
		return fmt.Errorf("spool: invalid when_full %q (want %q or %q)", o.WhenFull, WhenFullBlock, WhenFullDropOldest)
	}
	fit := int64(o.MaxRecord) + segHeaderSize + frameHeaderSize
	if o.SegmentSize == 0 {
		o.SegmentSize = min(max(o.MaxSize/segmentsPerSpool, min(segmentFloor, o.MaxSize/minSegments), fit), DefaultSegmentSize)
	}
	if o.SegmentSize > o.MaxSize/minSegments {
		o.SegmentSize = o.MaxSize / minSegments
	}
	if o.SegmentSize < minSegmentSize {
		return fmt.Errorf("spool: max_size %d too small (minimum %d)", o.MaxSize, minSegments*minSegmentSize)
	}
	if o.MaxRecord > 0 && o.SegmentSize < fit {
		return fmt.Errorf("spool: max_size %d cannot hold %d segments of a %d-byte record (minimum %d)",
			o.MaxSize, minSegments, o.MaxRecord, MinMaxSize(o.MaxRecord))
	}
	if len(o.Consumers) == 0 {
		return errors.New("spool: at least one consumer is required")
	}
	seen := make(map[string]bool, len(o.Consumers))
	for _, c := range o.Consumers {
		if c == "" || len(c) > 255 {
			return fmt.Errorf("spool: invalid consumer name %q", truncate(c))
		}
		if seen[c] {
			return fmt.Errorf("spool: duplicate consumer %q", c)
		}
		seen[c] = true
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewSet()
	}
	if o.fs == nil {
		o.fs = osFS{}
	}
	if o.now == nil {
		o.now = time.Now
	}
	return nil
}

// maxRecord returns the largest record that fits in one segment.
func (o *Options) maxRecord() int {
	n := o.SegmentSize - segHeaderSize - frameHeaderSize
	if n > MaxRecordSize {
		n = MaxRecordSize
	}
	return int(n)
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
