package parser_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dtrelay/dtrelay/internal/alloctest"
	"github.com/dtrelay/dtrelay/parser"
	"github.com/dtrelay/dtrelay/parser/parsertest"
)

// headerLine renders a scanned header as one golden line: the file name,
// style, PRI, then every field Go-quoted (so any byte survives), tab
// separated.
func headerLine(name string, frame []byte, h *parser.Header) string {
	fields := []parser.Span{h.Timestamp, h.Host, h.App, h.ProcID, h.MsgID, h.SD, h.Payload}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\t%s\t%d", name, h.Style, h.Pri)
	for _, s := range fields {
		b.WriteByte('\t')
		b.WriteString(strconv.Quote(string(s.Bytes(frame))))
	}
	return b.String()
}

// TestScanGolden scans every frame in testdata/headers and compares the
// result with testdata/headers/golden.tsv (columns: file, style, pri,
// timestamp, host, app, procid, msgid, sd, payload).
func TestScanGolden(t *testing.T) {
	var out bytes.Buffer
	out.WriteString("# file\tstyle\tpri\ttimestamp\thost\tapp\tprocid\tmsgid\tsd\tpayload (Go-quoted)\n")
	for _, name := range testFiles(t, headersDir, ".txt") {
		frame := readFile(t, filepath.Join(headersDir, name))
		var h parser.Header
		parser.Scan(frame, &h)
		checkHeaderInvariants(t, frame, &h)
		out.WriteString(headerLine(name, frame, &h))
		out.WriteByte('\n')
	}
	writeOrCompare(t, filepath.Join(headersDir, "golden.tsv"), out.Bytes())
}

// TestScan states the header rules directly; the golden file covers more
// cases but could be refreshed without reading.
func TestScan(t *testing.T) {
	const js = `{"pbid":1}`
	type want struct {
		style                                     parser.Style
		pri                                       int16
		ts, host, app, procid, msgid, sd, payload string
	}
	f := func(name, frame string, w want) {
		t.Helper()
		var h parser.Header
		parser.Scan([]byte(frame), &h)
		fr := []byte(frame)
		got := want{h.Style, h.Pri, string(h.Timestamp.Bytes(fr)), string(h.Host.Bytes(fr)),
			string(h.App.Bytes(fr)), string(h.ProcID.Bytes(fr)), string(h.MsgID.Bytes(fr)),
			string(h.SD.Bytes(fr)), string(h.Payload.Bytes(fr))}
		if got != w {
			t.Errorf("%s: Scan(%q)\n got %+v\nwant %+v", name, frame, got, w)
		}
		checkHeaderInvariants(t, fr, &h)
	}
	f("5424 darktrace", `<165>1 2022-03-10T10:11:10+00:00 dt.example.net darktrace - - - `+js,
		want{parser.Style5424, 165, "2022-03-10T10:11:10+00:00", "dt.example.net", "darktrace", "", "", "", js})
	f("5424 all fields, SD with escapes, BOM", "<14>1 2024-01-01T00:00:00.5Z h app 12 ID [a x=\"q\\]\\\"\\\\\"][b] \ufeff"+js,
		want{parser.Style5424, 14, "2024-01-01T00:00:00.5Z", "h", "app", "12", "ID", "[a x=\"q\\]\\\"\\\\\"][b]", js})
	f("5424 nil, no msg", `<0>1 - - - - - -`, want{style: parser.Style5424})
	f("5424 ']' inside quotes ends nothing", `<1>1 - - - - - [a x="]"] m`, want{parser.Style5424, 1, "", "", "", "", "", `[a x="]"]`, "m"})
	f("5424 json at SD", `<165>1 t h darktrace - - `+js, want{parser.Style5424, 165, "t", "h", "darktrace", "", "", "", js})
	f("5424 json at PROCID", `<165>1 t h darktrace `+js, want{parser.Style5424, 165, "t", "h", "darktrace", "", "", "", js})
	f("5424 unterminated SD", `<165>1 t h a - - [x k="v `+js, want{parser.Style5424, 165, "t", "h", "a", "", "", "", `[x k="v ` + js})
	f("3164 space-padded", `<165>Aug  5 03:34:46 dt.example.net darktrace `+js,
		want{parser.Style3164, 165, "Aug  5 03:34:46", "dt.example.net", "darktrace", "", "", "", js})
	f("3164 zero-padded, no PRI, audit", `Apr 01 14:30:23 10.0.0.1 darktrace_audit `+js,
		want{parser.Style3164, -1, "Apr 01 14:30:23", "10.0.0.1", "darktrace_audit", "", "", "", js})
	f("3164 IPv6 host", `<165>Aug 15 03:34:46 2001:db8::1 darktrace `+js,
		want{parser.Style3164, 165, "Aug 15 03:34:46", "2001:db8::1", "darktrace", "", "", "", js})
	f("3164 tag[pid]:", `<134>Aug 15 03:34:46 relay darktrace[22]: `+js,
		want{parser.Style3164, 134, "Aug 15 03:34:46", "relay", "darktrace", "22", "", "", js})
	f("3164 no host", `<165>Aug  5 03:34:46 darktrace `+js,
		want{parser.Style3164, 165, "Aug  5 03:34:46", "", "darktrace", "", "", "", js})
	f("3164 host named darktrace, no tag", `<165>Aug  5 03:34:46 darktrace x `+js,
		want{parser.Style3164, 165, "Aug  5 03:34:46", "darktrace", "x", "", "", "", js})
	f("3164 CRLF", "<165>Aug  5 03:34:46 h darktrace "+js+"\r\n",
		want{parser.Style3164, 165, "Aug  5 03:34:46", "h", "darktrace", "", "", "", js})
	f("PRI only", `<165>`+js, want{parser.Style3164, 165, "", "", "", "", "", "", js})
	f("tag only", `darktrace `+js, want{parser.Style3164, -1, "", "", "darktrace", "", "", "", js})
	f("bare json", " \t"+js+" \r", want{parser.StyleBare, -1, "", "", "", "", "", "", js})
	f("PRI 192", `<192>Aug  5 03:34:46 h darktrace `+js,
		want{parser.StyleBare, -1, "", "", "", "", "", "", `<192>Aug  5 03:34:46 h darktrace ` + js})
	f("PRI malformed", `<1a>`+js, want{parser.StyleBare, -1, "", "", "", "", "", "", `<1a>` + js})
	f("empty", ``, want{style: parser.StyleBare, pri: -1})
}

// checkHeaderInvariants asserts what every Scan result must satisfy, for
// any input: spans inside the frame and in header order, PRI in range,
// payload trimmed.
func checkHeaderInvariants(t testing.TB, frame []byte, h *parser.Header) {
	t.Helper()
	fields := []struct {
		name string
		s    parser.Span
	}{{"timestamp", h.Timestamp}, {"host", h.Host}, {"app", h.App}, {"procid", h.ProcID},
		{"msgid", h.MsgID}, {"sd", h.SD}, {"payload", h.Payload}}
	prevEnd := int32(0)
	for _, f := range fields {
		if f.s.Start < 0 || f.s.End < f.s.Start || int(f.s.End) > len(frame) {
			t.Fatalf("Scan(%q): %s span %+v out of range", frame, f.name, f.s)
		}
		if f.s.Len() == 0 {
			continue
		}
		if f.s.Start < prevEnd {
			t.Fatalf("Scan(%q): %s span %+v overlaps or precedes the previous field (end %d)", frame, f.name, f.s, prevEnd)
		}
		prevEnd = f.s.End
	}
	if h.Pri < -1 || h.Pri > 191 {
		t.Fatalf("Scan(%q): Pri %d out of range", frame, h.Pri)
	}
	if h.Style == parser.StyleBare && (h.Pri != -1 || h.Timestamp.Len()+h.Host.Len()+h.App.Len() != 0) {
		t.Fatalf("Scan(%q): bare frame with header fields %+v", frame, h)
	}
	if h.Style == parser.Style5424 && h.Pri < 0 {
		t.Fatalf("Scan(%q): RFC 5424 without PRI", frame)
	}
	p := h.Payload.Bytes(frame)
	if len(p) > 0 {
		blank := func(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == 0 }
		if blank(p[0]) || blank(p[len(p)-1]) || bytes.HasPrefix(p, []byte("\ufeff")) {
			t.Fatalf("Scan(%q): payload %q not trimmed", frame, p)
		}
	}
}

// TestScanStyles wraps synthetic alerts in every parsertest style and
// checks the payload comes back byte for byte with the expected header.
func TestScanStyles(t *testing.T) {
	payload := parsertest.Alert(nil, parser.KindModelBreach, 7, 1500)
	wantStyle := map[parsertest.Style]parser.Style{
		parsertest.RFC5424: parser.Style5424, parsertest.RFC3164: parser.Style3164,
		parsertest.RFC3164ZeroDay: parser.Style3164, parsertest.RFC3164NoPri: parser.Style3164,
		parsertest.Bare: parser.StyleBare,
	}
	for _, s := range parsertest.Styles {
		for _, app := range []string{"darktrace", "darktrace_audit"} {
			frame := parsertest.Frame(nil, s, app, payload)
			var h parser.Header
			parser.Scan(frame, &h)
			if h.Style != wantStyle[s] {
				t.Errorf("%v/%s: style %v, want %v", s, app, h.Style, wantStyle[s])
			}
			if !bytes.Equal(h.Payload.Bytes(frame), payload) {
				t.Errorf("%v/%s: payload differs", s, app)
			}
			if s != parsertest.Bare && (string(h.App.Bytes(frame)) != app || string(h.Host.Bytes(frame)) != parsertest.Host) {
				t.Errorf("%v/%s: host %q app %q", s, app, h.Host.Bytes(frame), h.App.Bytes(frame))
			}
		}
	}
}

func TestScanAllocs(t *testing.T) {
	for _, s := range parsertest.Styles {
		frame := parsertest.Frame(nil, s, "darktrace", parsertest.Alert(nil, parser.KindModelBreach, 1, 1500))
		var h parser.Header
		if n := alloctest.PerRun(100, func() { parser.Scan(frame, &h) }); n != 0 {
			t.Errorf("Scan(%v) allocates %.1f times per call", s, n)
		}
	}
}

func TestSpan(t *testing.T) {
	frame := []byte("abcdef")
	if got := (parser.Span{Start: 1, End: 4}).Bytes(frame); string(got) != "bcd" {
		t.Errorf("Bytes = %q", got)
	}
	if got := (parser.Span{}).Bytes(frame); got != nil {
		t.Errorf("zero Span Bytes = %q, want nil", got)
	}
	if n := (parser.Span{Start: 2, End: 5}).Len(); n != 3 {
		t.Errorf("Len = %d", n)
	}
}
