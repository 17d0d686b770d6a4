// Package parser turns one syslog frame from a Darktrace master into a
// header (offsets into the frame) and a classified alert.
//
// Scan is a tolerant, allocation-free header scanner for RFC 5424, RFC 3164
// as Darktrace sends it (PRI optional, "Mmm  d" or "Mmm dd", tag "darktrace"
// or "darktrace_audit" without colon or PID) and bare JSON. It never copies:
// every field of Header is a Span into the frame it was given.
//
// Classifier validates the JSON payload and reads the few fields that
// routing needs in one pass, with a purpose-made scanner (jsonscan.go,
// jsonfields.go): it checks the full JSON grammar without copying the
// payload or building a tree, and records where the values it reads lie.
// A Classifier is not safe for concurrent use; keep one per event loop (or
// take one from a pool for the duration of a read).
package parser
