// Package spool is a durable, disk-backed queue of opaque records with one
// cursor per consumer (per output), used when memory is not enough: an
// intake outage, a graceful stop or a crash must not lose an accepted alert.
//
// # Layout
//
// A spool directory holds append-only segment files named "%016x.seg" (the
// segment id in hex, never reused), a "cursors" file with every consumer's
// positions, and a "lock" file (flock) so that only one process uses it.
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
// Append copies records into a write buffer (at most ~1 MiB) that is written
// to the active segment when it fills, when a reader has caught up with it,
// and by a group-commit goroutine every Options.FsyncInterval, which then
// fsyncs the segments written since the previous commit and atomically
// replaces the cursors file (write, fsync, rename, fsync dir). Sync does the
// same at once. So a record for which Append returned nil is on disk within
// FsyncInterval (plus the fsync time) of its acceptance, unless a write or
// fsync error is reported (counted, logged, returned by Append and Sync).
// A kill -9 loses only the unwritten buffer; a power loss loses at most what
// was appended since the last completed commit.
//
// # Recovery
//
// Open scans every segment and verifies every frame. A torn or corrupt tail
// (partial header, impossible length, bad CRC up to the end of a segment) is
// truncated; a corrupt region inside a segment is skipped by resynchronising
// on the next frame whose CRC verifies; a segment with a bad header is
// renamed to "*.corrupt"; a file that cannot be opened is reported and left
// alone. Each such event increments dtrelay_spool_corrupt_total and is
// logged; none is fatal. Intact records are all delivered.
//
// # Cursors, acknowledgement and duplicates
//
// Each consumer reads with its own Reader and acknowledges with Reader.Ack;
// records leave the spool (their segment file is deleted) once every consumer
// has acknowledged them, so a slow consumer delays only deletion, until the
// spool is full. After a restart each consumer resumes right after its last
// persisted acknowledgement, or at the oldest record still on disk if that
// is later (segments deleted by acknowledgements not yet persisted are not
// replayed). Duplicates are therefore possible only for
// records a consumer had been given (or had acknowledged) after the last
// commit before a crash, or had been given but not acknowledged before a
// clean Close. The cursors file also records how far each consumer had read,
// and Open counts the records between a consumer's acknowledged and read
// positions in dtrelay_spool_redelivered_total{consumer}: exact after Close,
// and after a crash short by at most what that consumer read during the last
// FsyncInterval.
//
// # Full spool
//
// Options.MaxSize bounds the bytes of all segments. When an Append would
// exceed it, WhenFull "block" makes Append wait (counted in
// dtrelay_spool_blocked_seconds_total, logged) until acknowledgements free a
// segment or the spool is closed; "drop_oldest" deletes the oldest segment
// and counts the records some consumer had not acknowledged in
// dtrelay_spool_dropped_total.
package spool
