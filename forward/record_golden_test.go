package forward

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/parser"
)

// update rewrites testdata/record_v<recordVersion>.golden from the current
// encoder: go test ./forward/ -run RecordGolden -update. Review the diff: a
// change to those bytes is a change to the spool's on-disk format, which
// takes a new record version (record.go). record_v0.golden is history and
// is never rewritten.
var update = flag.Bool("update", false, "rewrite testdata/record_v*.golden from the current encoder")

// goldenOrigin says in the golden file who wrote it.
const goldenOrigin = "written by the current encoder (go test ./forward -run RecordGolden -update)"

// recordCase is one record of the golden files: its inputs, which are also
// what decoding it must give back.
type recordCase struct {
	name     string
	frame    string
	style    parser.Style
	pri      int16
	ts       string // the spanned parts, found in frame; "" = absent
	host     string
	app      string
	payload  string
	kind     parser.Kind
	priority parser.Priority
	notJSON  bool
	input    uint16
	mask     uint64
	received time.Time
}

// recordCases cover every header field with a value that tells it apart.
// The spans are given by hand (not by parser.Scan), so that a change in
// the parser does not show up as a change of format.
var recordCases = []recordCase{{
	name:  "RFC 5424 model breach, high, input 2, outputs 0 and 2",
	frame: `<165>1 2024-03-10T10:11:10.123+00:00 dt-master darktrace - - - {"pbid":7,"score":0.91}`,
	style: parser.Style5424, pri: 165,
	ts: "2024-03-10T10:11:10.123+00:00", host: "dt-master", app: "darktrace", payload: `{"pbid":7,"score":0.91}`,
	kind: parser.KindModelBreach, priority: parser.PriorityHigh, input: 2, mask: 0b101,
	received: time.Date(2024, 3, 10, 10, 11, 10, 456789000, time.UTC),
}, {
	name:  "RFC 3164 AI Analyst event, medium, input 0, output 0 (the timestamp is kept but not decoded)",
	frame: `<165>Aug  5 03:34:46 dt-master darktrace {"aiaScore":55,"id":"a-1"}`,
	style: parser.Style3164, pri: 165,
	ts: "Aug  5 03:34:46", host: "dt-master", app: "darktrace", payload: `{"aiaScore":55,"id":"a-1"}`,
	kind: parser.KindAIAnalyst, priority: parser.PriorityMedium, input: 0, mask: 1,
	received: time.Date(2024, 8, 5, 3, 34, 46, 0, time.UTC),
}, {
	name:  "bare line, not JSON, no PRI, input 1, outputs 0 and 63",
	frame: `not an alert`,
	style: parser.StyleBare, pri: -1, payload: `not an alert`,
	kind: parser.KindUnknown, priority: parser.PriorityNone, notJSON: true, input: 1, mask: 1<<63 | 1,
	received: time.Date(2025, 1, 1, 0, 0, 0, 1, time.UTC),
}}

func spanOf(t testing.TB, frame, part string) parser.Span {
	t.Helper()
	if part == "" {
		return parser.Span{}
	}
	i := strings.Index(frame, part)
	if i < 0 {
		t.Fatalf("%q not in %q", part, frame)
	}
	return parser.Span{Start: int32(i), End: int32(i + len(part))}
}

// encodeCases encodes the cases with appendRecord and returns each record.
func encodeCases(t testing.TB) [][]byte {
	t.Helper()
	b := &Block{buf: make([]byte, 0, 4096)}
	var recs [][]byte
	for _, c := range recordCases {
		h := parser.Header{Style: c.style, Pri: c.pri, Timestamp: spanOf(t, c.frame, c.ts),
			Host: spanOf(t, c.frame, c.host), App: spanOf(t, c.frame, c.app), Payload: spanOf(t, c.frame, c.payload)}
		a := parser.Alert{Kind: c.kind, Priority: c.priority}
		off := len(b.buf)
		b.appendRecord([]byte(c.frame), &h, &a, c.notJSON, c.input, c.mask, c.received.UnixNano())
		recs = append(recs, b.buf[off:])
	}
	return recs
}

// wantRecord is what decoding case c must give (memOnly is never on disk).
func (c recordCase) wantRecord() Record {
	raw := []byte(c.frame)
	part := func(s string) []byte {
		if s == "" {
			return nil
		}
		i := strings.Index(c.frame, s)
		return raw[i : i+len(s)]
	}
	r := Record{Raw: raw, Payload: part(c.payload), Host: part(c.host), App: part(c.app), Pri: c.pri,
		Received: c.received.UnixNano(), Kind: c.kind, Priority: c.priority, Input: c.input, NotJSON: c.notJSON}
	if c.style == parser.Style5424 {
		r.Timestamp = part(c.ts)
	}
	return r
}

// describeRecord prints every field of r, for comparisons.
func describeRecord(r *Record) string {
	return fmt.Sprintf("raw=%q payload=%q ts=%q host=%q app=%q pri=%d received=%d kind=%v priority=%v input=%d notJSON=%v memOnly=%v",
		r.Raw, r.Payload, r.Timestamp, r.Host, r.App, r.Pri, r.Received, r.Kind, r.Priority, r.Input, r.NotJSON, r.memOnly)
}

// headerFields names the header's fields for the golden files, in order.
var headerFields = []struct {
	name  string
	size  int
	value func(b []byte) string
}{
	{"raw_length", 4, func(b []byte) string { return strconv.Itoa(int(binary.LittleEndian.Uint32(b))) }},
	{"kind", 1, func(b []byte) string { return parser.Kind(b[0]).String() }},
	{"priority", 1, func(b []byte) string { return parser.Priority(b[0]).String() }},
	{"flags", 1, func(b []byte) string {
		return fmt.Sprintf("not_json=%v unspooled=%v", b[0]&flagNotJSON != 0, b[0]&flagUnspooled != 0)
	}},
	{"style", 1, func(b []byte) string { return parser.Style(b[0]).String() }},
	{"pri", 2, func(b []byte) string { return strconv.Itoa(int(int16(binary.LittleEndian.Uint16(b)))) }},
	{"input", 2, func(b []byte) string { return strconv.Itoa(int(binary.LittleEndian.Uint16(b))) }},
	{"payload_span", 8, spanText}, {"timestamp_span", 8, spanText}, {"host_span", 8, spanText}, {"app_span", 8, spanText},
	{"version", 1, func(b []byte) string { return strconv.Itoa(int(b[0])) }},
	{"reserved", 3, func([]byte) string { return "written 0, ignored" }},
	{"output_mask", 8, func(b []byte) string { return fmt.Sprintf("%#x", binary.LittleEndian.Uint64(b)) }},
	{"received", 8, func(b []byte) string {
		return time.Unix(0, int64(binary.LittleEndian.Uint64(b))).UTC().Format(time.RFC3339Nano)
	}},
}

func spanText(b []byte) string {
	return fmt.Sprintf("[%d, %d)", binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:]))
}

// renderRecords writes records as the golden files hold them: per record a
// "== name" line, then one line per header field and per 24 frame bytes:
// "OFFSET NAME HEX # MEANING". parseRecords reads the HEX column back.
func renderRecords(origin string, names []string, recs [][]byte) []byte {
	var w bytes.Buffer
	fmt.Fprintf(&w, "# Spooled record encodings (forward/record.go), %s. Generated: do not edit.\n", origin)
	w.WriteString("# Columns: offset, field, bytes as stored (hex, little endian), meaning.\n")
	for i, rec := range recs {
		fmt.Fprintf(&w, "\n== %s\n", names[i])
		off := 0
		for _, f := range headerFields {
			fmt.Fprintf(&w, "%3d %-14s %-16s # %s\n", off, f.name, hex.EncodeToString(rec[off:off+f.size]), f.value(rec[off:off+f.size]))
			off += f.size
		}
		for ; off < len(rec); off += 24 {
			chunk := rec[off:min(off+24, len(rec))]
			fmt.Fprintf(&w, "%3d %-14s %-48s # %q\n", off, "frame", hex.EncodeToString(chunk), chunk)
		}
	}
	return w.Bytes()
}

// parseRecords reads the records of a golden file, checking that every
// line's offset follows from the bytes before it.
func parseRecords(t testing.TB, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("cannot read %s: %v", path, err)
	}
	var recs [][]byte
	for n, line := range strings.Split(string(data), "\n") {
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "== "):
			recs = append(recs, nil)
		default:
			f := strings.Fields(line)
			if len(recs) == 0 || len(f) < 3 {
				t.Fatalf("%s:%d: cannot parse %q", path, n+1, line)
			}
			off, err1 := strconv.Atoi(f[0])
			b, err2 := hex.DecodeString(f[2])
			last := &recs[len(recs)-1]
			if err1 != nil || err2 != nil || off != len(*last) {
				t.Fatalf("%s:%d: bad offset or bytes in %q", path, n+1, line)
			}
			*last = append(*last, b...)
		}
	}
	return recs
}

func caseNames() []string {
	var names []string
	for _, c := range recordCases {
		names = append(names, c.name)
	}
	return names
}

// TestRecordGolden pins the bytes the encoder writes, which are what the
// spool keeps on disk, and reads the golden file back to the same records.
func TestRecordGolden(t *testing.T) {
	path := filepath.Join("testdata", fmt.Sprintf("record_v%d.golden", recordVersion))
	got := renderRecords(goldenOrigin, caseNames(), encodeCases(t))
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if want, err := os.ReadFile(path); err != nil || !bytes.Equal(want, got) {
		t.Fatalf("%s is out of date (%v): the record format changed. If that is intended, give it a new version "+
			"(record.go), rerun with -update and review the diff.\n--- got\n%s", path, err, got)
	}
	checkDecodes(t, parseRecords(t, path))
}

// checkDecodes decodes each of recs, as read back from a spool, and
// compares it field by field with its case.
func checkDecodes(t *testing.T, recs [][]byte) {
	t.Helper()
	if len(recs) != len(recordCases) {
		t.Fatalf("%d records, want %d", len(recs), len(recordCases))
	}
	for i, c := range recordCases {
		if why := recordProblem(recs[i]); why != "" {
			t.Errorf("%s: refused as %s", c.name, why)
			continue
		}
		b := &Block{buf: recs[i]}
		var r Record
		mask, next := b.readRecord(0, &r)
		want := c.wantRecord()
		if got, w := describeRecord(&r), describeRecord(&want); got != w || mask != c.mask || next != len(recs[i]) {
			t.Errorf("%s: decoded\n %s mask=%#x next=%d\nwant\n %s mask=%#x next=%d", c.name, got, mask, next, w, c.mask, len(recs[i]))
		}
	}
}
