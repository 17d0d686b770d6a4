package forward

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fastjson"

	"github.com/dtrelay/dtrelay/internal/jsonenc"
)

// DeadLetter is one output's dead-letter file, DIR/OUTPUT.ndjson: the
// events the output gave up on (the intake refused them for their content,
// or they are too large for it), kept so that an operator can look at them
// and send them again (dtrelay deadletter replay). One JSON object per line:
//
//	{"time":"2025-01-02T03:04:05.123456789Z","output":"sekoia","reason":"oversize",
//	 "received":"2025-01-02T03:04:05.1Z","pri":165,"host":"dt-master","app":"darktrace",
//	 "payload":{...the alert...}}
//
// time is when the event was given up on, reason the metric label it was
// counted under; received, pri, host, app and timestamp (the RFC 5424
// TIMESTAMP) are those of the received message, when it had them, so that
// a replay encodes the event as the first attempt did. payload comes last:
// the alert itself when it is a JSON object (an LF between its tokens
// written as a space, so the line stays one line), else a JSON string, with
// "not_json":true for a message that was not JSON.
//
// The directory (0750) and the file (0640) are created by the first write.
// A write that would take the file past maxSize fails with
// ErrDeadLetterFull. A DeadLetter is safe for concurrent use: the output's
// batcher and the pipeline's producers write to it. Each line is written
// with one write call under an advisory lock (flock), so a replay running
// in another process (Take) may move the file away at any time: the next
// write creates a new one.
type DeadLetter struct {
	dir, output, path string
	maxSize           int64

	mu   sync.Mutex
	f    *os.File // the open file, or nil
	line []byte   // scratch, under mu
}

// ErrDeadLetterFull is returned by DeadLetter writes that would take the
// file past its max_size.
var ErrDeadLetterFull = errors.New("forward: dead-letter file full")

// DeadLetterFile returns the path of output's dead-letter file in dir.
func DeadLetterFile(dir, output string) string { return filepath.Join(dir, output+".ndjson") }

// NewDeadLetter returns the dead-letter file of output in dir, bounded to
// maxSize bytes. It does no I/O: the first write creates the directory and
// the file.
func NewDeadLetter(dir, output string, maxSize int64) *DeadLetter {
	return &DeadLetter{dir: dir, output: output, path: DeadLetterFile(dir, output), maxSize: maxSize}
}

// Path returns the file's path.
func (d *DeadLetter) Path() string { return d.path }

// Output returns the name of the output the file belongs to.
func (d *DeadLetter) Output() string { return d.output }

// Write appends r as one line with reason, given up on at time at.
func (d *DeadLetter) Write(r *Record, reason string, at time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.line = appendDeadLine(d.line[:0], d.output, reason, at, r)
	return d.appendLocked(d.line)
}

// writeLines appends lines that are dead-letter lines already (each ending
// with LF), as one write: what a replay could not deliver goes back.
func (d *DeadLetter) writeLines(lines []byte) error {
	if len(lines) == 0 {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.appendLocked(lines)
}

// Close closes the file, if open; a nil DeadLetter has nothing to close.
// A later write opens the file again.
func (d *DeadLetter) Close() error {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f = nil
	return err
}

// appendLocked writes p at the end of the file, under the file lock, after
// making sure the open file is still the one at d.path.
func (d *DeadLetter) appendLocked(p []byte) error {
	for range 3 {
		if d.f == nil {
			if err := os.MkdirAll(d.dir, 0o750); err != nil {
				return fmt.Errorf("cannot create the dead-letter directory: %w", err)
			}
			f, err := os.OpenFile(d.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|oNoFollow, 0o640)
			if err != nil {
				return fmt.Errorf("cannot open the dead-letter file: %w", err)
			}
			d.f = f
		}
		unlock, err := lockFile(d.f)
		if err != nil {
			return fmt.Errorf("cannot lock the dead-letter file: %w", err)
		}
		st, err := d.f.Stat()
		cur, err2 := os.Lstat(d.path)
		if err != nil || err2 != nil || !os.SameFile(st, cur) {
			// Moved away (a replay took it) or removed: open the new one.
			unlock()
			d.f.Close()
			d.f = nil
			continue
		}
		defer unlock()
		size := st.Size()
		if size+int64(len(p)) > d.maxSize {
			return fmt.Errorf("%w: %d bytes, max_size %d", ErrDeadLetterFull, size, d.maxSize)
		}
		if _, err := d.f.Write(p); err != nil {
			_ = d.f.Truncate(size) // no half line: the file stays NDJSON
			return fmt.Errorf("cannot write the dead-letter file: %w", err)
		}
		return nil
	}
	return errors.New("forward: the dead-letter file keeps moving")
}

// replaySuffix names the file a replay works from (Take).
const replaySuffix = ".replay"

// Take moves the dead-letter file aside for a replay and returns the path
// of the file to replay, or "" when there is nothing to replay. A file left
// by an interrupted replay is returned first, as it is (leftover); call
// Take again after replaying it. Writers (this process's or a running
// relay's) create a new file meanwhile.
func (d *DeadLetter) Take() (path string, leftover bool, err error) {
	replay := d.path + replaySuffix
	if _, err := os.Lstat(replay); err == nil {
		return replay, true, nil
	}
	f, err := os.OpenFile(d.path, os.O_RDONLY|oNoFollow, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("cannot open the dead-letter file: %w", err)
	}
	defer f.Close()
	unlock, err := lockFile(f)
	if err != nil {
		return "", false, fmt.Errorf("cannot lock the dead-letter file: %w", err)
	}
	defer unlock()
	if err := os.Rename(d.path, replay); err != nil {
		return "", false, fmt.Errorf("cannot move the dead-letter file aside: %w", err)
	}
	return replay, false, nil
}

// appendDeadLine appends the dead-letter line of r (see DeadLetter).
func appendDeadLine(dst []byte, output, reason string, at time.Time, r *Record) []byte {
	dst = append(dst, `{"time":"`...)
	dst = at.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","output":`...)
	dst = jsonenc.AppendString(dst, []byte(output))
	dst = append(dst, `,"reason":`...)
	dst = jsonenc.AppendString(dst, []byte(reason))
	if r.Received != 0 {
		dst = append(dst, `,"received":"`...)
		dst = time.Unix(0, r.Received).UTC().AppendFormat(dst, time.RFC3339Nano)
		dst = append(dst, '"')
	}
	if r.Pri >= 0 {
		dst = strconv.AppendInt(append(dst, `,"pri":`...), int64(r.Pri), 10)
	}
	for _, f := range [...]struct {
		key string
		v   []byte
	}{{`,"host":`, r.Host}, {`,"app":`, r.App}, {`,"timestamp":`, r.Timestamp}} {
		if f.v != nil {
			dst = jsonenc.AppendString(append(dst, f.key...), f.v)
		}
	}
	if r.NotJSON {
		dst = append(dst, `,"not_json":true`...)
	}
	dst = append(dst, `,"payload":`...)
	if isJSONObject(r) {
		dst = jsonenc.AppendNoLF(dst, r.Payload)
	} else {
		dst = jsonenc.AppendString(dst, r.Payload)
	}
	return append(dst, "}\n"...)
}

// isJSONObject reports whether r's payload can be written as it is: a
// valid JSON object.
func isJSONObject(r *Record) bool {
	p := r.Payload
	return !r.NotJSON && len(p) > 0 && p[0] == '{' && fastjson.ValidateBytes(p) == nil
}

// deadPayloadKey precedes the payload, the last member of a line. Inside
// the string members before it every quote is escaped, so its first
// occurrence is the member's.
var deadPayloadKey = []byte(`,"payload":`)

// DeadEvent is one line of a dead-letter file, decoded.
type DeadEvent struct {
	Time           time.Time
	Output, Reason string
	// Record is the event as a replay encodes it; Raw is its payload.
	// Its slices alias the line.
	Record Record
}

// parseDeadLine decodes a dead-letter line (without its LF) into e, with
// p's help. e's slices alias line or p's storage: valid until the next call
// with p.
func parseDeadLine(p *fastjson.Parser, line []byte, e *DeadEvent) error {
	i := bytes.Index(line, deadPayloadKey)
	if i < 0 || len(line) < i+len(deadPayloadKey)+1 || line[len(line)-1] != '}' {
		return errors.New("forward: not a dead-letter line")
	}
	v, err := p.ParseBytes(line)
	if err != nil {
		return fmt.Errorf("forward: not a dead-letter line: %w", err)
	}
	*e = DeadEvent{Output: string(v.GetStringBytes("output")), Reason: string(v.GetStringBytes("reason"))}
	e.Time, _ = time.Parse(time.RFC3339Nano, string(v.GetStringBytes("time")))
	r := &e.Record
	r.Pri = -1
	if pv := v.Get("pri"); pv != nil {
		r.Pri = int16(pv.GetInt())
	}
	if t, err := time.Parse(time.RFC3339Nano, string(v.GetStringBytes("received"))); err == nil {
		r.Received = t.UnixNano()
	}
	r.Host, r.App, r.Timestamp = optString(v, "host"), optString(v, "app"), optString(v, "timestamp")
	r.NotJSON = v.GetBool("not_json")
	raw := line[i+len(deadPayloadKey) : len(line)-1]
	if len(raw) > 0 && raw[0] == '"' {
		r.Payload = v.GetStringBytes("payload")
	} else {
		r.Payload = raw
	}
	if r.Payload == nil {
		return errors.New("forward: dead-letter line without a payload")
	}
	r.Raw = r.Payload
	return nil
}

func optString(v *fastjson.Value, key string) []byte {
	if v.Get(key) == nil {
		return nil
	}
	return v.GetStringBytes(key)
}
