// Package spool is a durable, disk-backed queue of opaque records with one
// cursor per consumer (per output), used when memory is not enough: an
// intake outage, a graceful stop or a crash must not lose an accepted alert.
//
// # Layout
//
// A spool directory holds append-only segment files named "%016x.seg" (the
// segment id in hex, never reused), a "cursors" file with every consumer's
// positions, a "marks" file with how far each consumer has been handed
// records (Reader.Mark) and has acknowledged them (Reader.Ack, Skip), and
// a "lock" file (flock) so that only one process uses it.
// A segment starts with a 32-byte header (magic "DTRSPOOL", version, id,
// creation time, CRC-32C of the header) followed by frames:
//
//	len u32 | unix-nanos i64 | crc u32 | payload[len]     (little endian)
//
// where crc is the CRC-32C (Castagnoli) of the first 12 header bytes and the
// payload, so a zero-filled or shifted region never passes as a record.
// A record never spans two segments.
//
// # Durability
//
// Append frames the records of one call and writes them to the active
// segment with one write(2) before it returns (more only when a segment
// fills), so the records of a call for which Append returned are in the
// page cache: a process crash (kill -9) loses none of them. A group-commit
// goroutine fsyncs, every Options.FsyncInterval, the segments written since
// the previous commit and atomically replaces the cursors file (write,
// fsync, rename, fsync dir); Sync does the same at once. So a record is on
// disk against power loss within FsyncInterval (plus the fsync time) of
// its acceptance, unless an fsync error is reported (counted, logged,
// returned by Sync). A write that fails takes back the records it did not
// write entirely: they are not accepted (Append says how many were).
//
// # Recovery
//
// Open scans every segment and verifies every frame. A torn or corrupt tail
// (partial header, impossible length, bad CRC up to the end of a segment) is
// truncated; a corrupt region inside a segment is skipped by resynchronising
// on the next frame whose CRC verifies; so is a bad segment header (the
// frames carry their own checksums; the header is rewritten), and only a
// segment in which no frame verifies, or of an unknown format version, is
// renamed to "*.corrupt"; a file that cannot be opened is reported and left
// alone. Each such event increments dtrelay_spool_corrupt_total and is
// logged; none is fatal. Intact records are all delivered. Inspect reports
// the same without changing anything or taking the lock.
//
// # Cursors, acknowledgement and duplicates
//
// Each consumer reads with its own Reader and acknowledges with Reader.Ack;
// records leave the spool (their segment file is deleted) once every consumer
// has acknowledged them, so a slow consumer delays only deletion, until the
// spool is full. A consumer that met a record it cannot use may keep its
// segment (Reader.Keep): the file survives the deletion as "*.seg.kept",
// outside the spool. Each Ack (or Skip) that moves the acknowledgement is also
// written at once, without fsync, to the consumer's slot of the marks file:
// one positional write per call, kept by the page cache through a kill -9.
// After a restart each consumer resumes right after the later of its
// acknowledgement in the cursors file and the one in the marks file (when
// that slot verifies and was written by the Open whose cursors are on
// disk), or at the oldest record still on disk if that is later (segments
// deleted by acknowledgements not yet persisted are not replayed). After a
// kill -9, a consumer that acknowledges each batch once delivered replays
// only the batch it had in flight; after a power loss (the marks file
// lost, torn, or older than the cursors) it resumes at the last commit.
// Duplicates are possible only for records a consumer had been handed and
// had not acknowledged (in the marks file or durably); Open counts them in
// dtrelay_spool_redelivered_total {consumer}: the records between where
// the consumer resumes and the furthest of its persisted read position and
// its mark. A consumer that calls Reader.Mark before each delivery (one
// positional write per batch) is counted in full after a kill -9: the
// count is at least the duplicates (more when a marked batch had not been
// delivered yet); without marks, or after a power loss, it may be short by
// what the consumer was handed during the last FsyncInterval. When
// the cursors are unreadable or missing, every consumer replays the whole
// spool and every replayed record is counted as redelivered.
//
// # Consumers that change
//
// The cursor of a consumer no longer configured is kept, "unclaimed", with
// the records it had not acknowledged, until Options.Rename hands it to a
// consumer or the spool needs the space (its segments are then dropped
// first, counted in dtrelay_spool_dropped_total, and logged): see
// claims.go. Open logs each one as an error; CheckConsumers and Inspect
// report them. The cursors file also records the consumers of each Open,
// so that Reader.Owner can tell which consumer a record was appended for
// after outputs were renamed or reordered.
//
// # Full spool, full disk
//
// Options.MaxSize bounds the bytes of all segments; segments are sized from
// it (MaxSize/16, at most 64 MiB), so that acknowledged segments give space
// back in steps. The disk may fill before MaxSize: a write that fails with
// ENOSPC (or EDQUOT) is handled the same way, and the spool lowers its
// segment size to an eighth of what the disk held. Nothing that frees space
// needs a write: a segment every consumer acknowledged is deleted (the
// active one too, replaced by an empty file), new segment files are created
// empty, and a full disk at Open is no error.
//
// When an Append does not fit, WhenFull "block" makes it wait (counted in
// dtrelay_spool_blocked_seconds_total, logged) until acknowledgements free
// a segment, space frees on the disk (retried every second), StopWaiting
// or Close; "drop_oldest" deletes the oldest segment (on a full disk, the
// active one if it is the only one) and counts in
// dtrelay_spool_dropped_total the records some consumer will not get: those
// it neither acknowledged, read, nor holds in memory (Reader.Hold). Held
// records it never acknowledges are counted by Close, which reports them in
// a *LostError. A record larger than a segment can hold is refused with
// ErrTooLarge and counted in dtrelay_spool_rejected_total{reason="too_large"};
// Options.MaxRecord and MinMaxSize let a caller rule that out.
package spool
