package parser_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/dtrelay/dtrelay/parser"
	"github.com/dtrelay/dtrelay/parser/parsertest"
)

// seedFrames adds every header test frame, and every payload file wrapped
// in every header style, to the fuzz corpus.
func seedFrames(f *testing.F) {
	for _, n := range testFiles(f, headersDir, ".txt") {
		f.Add(readFile(f, filepath.Join(headersDir, n)))
	}
	for _, n := range testFiles(f, payloadsDir, ".json", ".txt") {
		p := readFile(f, filepath.Join(payloadsDir, n))
		for _, s := range parsertest.Styles {
			f.Add(parsertest.Frame(nil, s, string(appFor(n)), p))
		}
	}
}

// FuzzScan: no panic on any bytes, spans inside the frame and ordered,
// payload trimmed, and the same answer twice.
func FuzzScan(f *testing.F) {
	seedFrames(f)
	f.Fuzz(func(t *testing.T, frame []byte) {
		var h, h2 parser.Header
		parser.Scan(frame, &h)
		checkHeaderInvariants(t, frame, &h)
		parser.Scan(frame, &h2)
		if h != h2 {
			t.Fatalf("Scan(%q) not deterministic: %+v then %+v", frame, h, h2)
		}
		// A bare frame's payload is the whole frame, trimmed.
		if h.Style == parser.StyleBare {
			want := trimForTest(frame)
			if !bytes.Equal(h.Payload.Bytes(frame), want) {
				t.Fatalf("Scan(%q): bare payload %q, want %q", frame, h.Payload.Bytes(frame), want)
			}
		}
	})
}

// trimForTest is an independent statement of the payload trimming rule:
// blanks (space, tab, CR, LF, NUL) at both ends, BOMs at the start.
func trimForTest(b []byte) []byte {
	for {
		n := len(b)
		b = bytes.TrimLeft(b, " \t\r\n\x00")
		b = bytes.TrimPrefix(b, []byte("\ufeff"))
		if len(b) == n {
			break
		}
	}
	return bytes.TrimRight(b, " \t\r\n\x00")
}

// FuzzClassify: no panic on any bytes; results within their documented
// ranges; any JSON object encoding/json accepts (nesting aside) is
// classified, never rejected, and nothing else is; Strict accepts exactly
// the valid UTF-8 ones and, where it accepts, agrees with the default
// mode. (FuzzClassifyOracle states the verdicts exactly and compares the
// results with the old fastjson-based classifier.)
func FuzzClassify(f *testing.F) {
	for _, n := range testFiles(f, payloadsDir, ".json", ".txt") {
		f.Add(readFile(f, filepath.Join(payloadsDir, n)), strings.HasPrefix(n, "audit_"))
	}
	const limit = 64 << 10
	c := parser.NewClassifier(limit)
	strict := &parser.Classifier{MaxPayload: limit, Strict: true}
	f.Fuzz(func(t *testing.T, payload []byte, audit bool) {
		app := []byte("darktrace")
		if audit {
			app = []byte("darktrace_audit")
		}
		var a, as parser.Alert
		var d, ds parser.Details
		err := c.ClassifyDetails(payload, app, &a, &d)
		errStrict := strict.ClassifyDetails(payload, app, &as, &ds)
		switch {
		case errors.Is(err, parser.ErrTooLarge):
			if len(payload) <= limit || !errors.Is(errStrict, parser.ErrTooLarge) {
				t.Fatalf("ErrTooLarge for %d bytes (strict: %v)", len(payload), errStrict)
			}
			return
		case errors.Is(err, parser.ErrNotJSON):
			if a.Kind != parser.KindUnknown || a.Score != -1 || d != (parser.Details{}) {
				t.Fatalf("ErrNotJSON with a filled Alert %+v %+v", a, d)
			}
			if isObject(payload) && maxDepth(payload) < 250 {
				t.Fatalf("valid JSON object rejected: %q", payload)
			}
			if errStrict == nil {
				t.Fatalf("Strict accepts what the default rejects: %q", payload)
			}
			return
		case err != nil:
			t.Fatalf("unexpected error %v", err)
		}
		if audit && a.Kind != parser.KindAudit {
			t.Fatalf("audit tag gave kind %v", a.Kind)
		}
		if a.Priority > parser.PriorityHigh || int(d.IDLen) > parser.MaxIDLen || d.Time < 0 ||
			!(a.Score == -1 || (a.Score >= 0 && a.Score <= 1)) || math.IsNaN(a.Score) {
			t.Fatalf("out-of-range Alert %+v %+v for %q", a, d, payload)
		}
		switch {
		case !json.Valid(payload):
			t.Fatalf("invalid JSON accepted: %q", payload)
		case errStrict == nil:
			if !utf8.Valid(payload) {
				t.Fatalf("Strict accepts invalid UTF-8: %q", payload)
			}
			if as != a || ds != d {
				t.Fatalf("Strict and default disagree on %q: %+v %+v vs %+v %+v", payload, as, ds, a, d)
			}
		case !errors.Is(errStrict, parser.ErrNotJSON):
			t.Fatalf("Strict: unexpected error %v", errStrict)
		case utf8.Valid(payload):
			t.Fatalf("Strict rejects a valid JSON object: %q", payload)
		}
	})
}

func isObject(b []byte) bool {
	var m map[string]json.RawMessage
	return json.Valid(b) && json.Unmarshal(b, &m) == nil
}

// maxDepth is the deepest [ / { nesting in b, strings skipped.
func maxDepth(b []byte) int {
	depth, max, inStr := 0, 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case inStr && c == '\\':
			i++
		case c == '"':
			inStr = !inStr
		case !inStr && (c == '{' || c == '['):
			if depth++; depth > max {
				max = depth
			}
		case !inStr && (c == '}' || c == ']'):
			depth--
		}
	}
	return max
}

// FuzzScanOracle5424 compares Scan with go-syslog's strict RFC 5424 parser
// (best effort off) on every input the oracle accepts: Scan must say
// Style5424 with the same PRI, HOSTNAME, APP-NAME, PROCID, MSGID, the same
// presence of SD, a TIMESTAMP whose text parses (RFC 3339) to the
// oracle's time (the oracle keeps only the parsed time), and as payload
// the oracle's MSG without its BOM and surrounding blanks.
//
// Documented deviation, skipped: a HOSTNAME/APP-NAME/PROCID/MSGID that
// starts with '{' is valid RFC 5424, but Scan takes it as the start of a
// JSON payload from a sender that dropped header fields.
func FuzzScanOracle5424(f *testing.F) {
	for _, n := range testFiles(f, headersDir, ".txt") {
		if strings.HasPrefix(n, "rfc5424") {
			f.Add(readFile(f, filepath.Join(headersDir, n)))
		}
	}
	for _, s := range []string{
		`<165>1 2022-03-10T10:11:10+00:00 h darktrace - - - {"a":1}`,
		`<0>1 - - - - - -`,
		`<191>999 2003-10-11T22:14:15.003Z mymachine.example.com su ID47 - 'su root' failed`,
		`<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time`,
		`<165>1 2003-10-11T22:14:15.003Z mymachine evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="App"][examplePriority@32473 class="high"]`,
		"<13>1 - h a p m [id k=\"\\]\\\"\\\\\"] \xef\xbb\xbfBOM msg\r",
		`<7>1 2016-02-28T09:57:10.804642398-05:00 host app 1 m [a@1 x="["][b] ]`,
	} {
		f.Add([]byte(s))
	}
	oracle := rfc5424.NewParser()
	f.Fuzz(func(t *testing.T, frame []byte) {
		msg, err := oracle.Parse(frame)
		if err != nil || msg == nil {
			return
		}
		m := msg.(*rfc5424.SyslogMessage)
		for _, p := range []*string{m.Hostname, m.Appname, m.ProcID, m.MsgID} {
			if p != nil && strings.HasPrefix(*p, "{") {
				return
			}
		}
		var h parser.Header
		parser.Scan(frame, &h)
		field := func(s parser.Span) *string {
			if s.Len() == 0 {
				return nil
			}
			v := string(s.Bytes(frame))
			return &v
		}
		eq := func(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
		if h.Style != parser.Style5424 || m.Priority == nil || int(h.Pri) != int(*m.Priority) {
			t.Fatalf("%q: style %v pri %d, oracle pri %v", frame, h.Style, h.Pri, m.Priority)
		}
		if !eq(field(h.Host), m.Hostname) || !eq(field(h.App), m.Appname) ||
			!eq(field(h.ProcID), m.ProcID) || !eq(field(h.MsgID), m.MsgID) {
			t.Fatalf("%q: host %q app %q procid %q msgid %q differ from the oracle's %v %v %v %v", frame,
				h.Host.Bytes(frame), h.App.Bytes(frame), h.ProcID.Bytes(frame), h.MsgID.Bytes(frame),
				deref(m.Hostname), deref(m.Appname), deref(m.ProcID), deref(m.MsgID))
		}
		if (m.StructuredData != nil) != (h.SD.Len() > 0) {
			t.Fatalf("%q: SD %q, oracle has SD: %v", frame, h.SD.Bytes(frame), m.StructuredData != nil)
		}
		if m.Timestamp == nil {
			if h.Timestamp.Len() != 0 {
				t.Fatalf("%q: timestamp %q, oracle has none", frame, h.Timestamp.Bytes(frame))
			}
		} else {
			ts, err := time.Parse(time.RFC3339Nano, string(h.Timestamp.Bytes(frame)))
			if err != nil || !ts.Equal(*m.Timestamp) {
				t.Fatalf("%q: timestamp %q (%v), oracle %v", frame, h.Timestamp.Bytes(frame), err, *m.Timestamp)
			}
		}
		var want []byte
		if m.Message != nil {
			want = trimForTest([]byte(*m.Message))
		}
		if got := h.Payload.Bytes(frame); !bytes.Equal(got, want) {
			t.Fatalf("%q: payload %q, oracle message trimmed %q", frame, got, want)
		}
	})
}

func deref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}
