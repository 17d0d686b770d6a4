package parsertest_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/dtrelay/dtrelay/parser"
	"github.com/dtrelay/dtrelay/parser/parsertest"
)

// TestAlert: every kind at many sizes is valid JSON of exactly the asked
// size (once above its minimal form), unique per seq, and classifies as
// its kind.
func TestAlert(t *testing.T) {
	var c parser.Classifier
	for _, kind := range parser.Kinds() {
		if kind == parser.KindHeartbeat {
			continue // dtrelay's own event: never a Darktrace payload's kind
		}
		app := []byte("darktrace")
		if kind == parser.KindAudit {
			app = []byte("darktrace_audit")
		}
		min := len(parsertest.Alert(nil, kind, 1, 0))
		for size := 0; size <= 20000; size += 397 {
			b := parsertest.Alert([]byte("prefix"), kind, uint64(size), size)
			if !bytes.HasPrefix(b, []byte("prefix")) {
				t.Fatalf("%v %d: dst not appended to", kind, size)
			}
			b = b[len("prefix"):]
			if !json.Valid(b) || (size >= min+3 && len(b) != size) {
				t.Fatalf("%v %d: %d bytes, valid %v: %s", kind, size, len(b), json.Valid(b), b)
			}
			var a parser.Alert
			if err := c.Classify(b, app, &a); err != nil || a.Kind != kind {
				t.Fatalf("%v %d: classified %v, %v", kind, size, a.Kind, err)
			}
		}
		if bytes.Equal(parsertest.Alert(nil, kind, 1, 1500), parsertest.Alert(nil, kind, 2, 1500)) {
			t.Errorf("%v: seq does not change the alert", kind)
		}
	}
}

func TestFrame(t *testing.T) {
	p := []byte(`{"a":1}`)
	for s, want := range map[parsertest.Style]string{
		parsertest.RFC5424:        `<165>1 2022-03-10T10:11:10+00:00 dt-master.example.net darktrace - - - {"a":1}`,
		parsertest.RFC3164:        `<165>Aug  5 03:34:46 dt-master.example.net darktrace {"a":1}`,
		parsertest.RFC3164ZeroDay: `<165>Apr 01 14:39:18 dt-master.example.net darktrace {"a":1}`,
		parsertest.RFC3164NoPri:   `Apr 01 14:39:18 dt-master.example.net darktrace {"a":1}`,
		parsertest.Bare:           `{"a":1}`,
	} {
		if got := string(parsertest.Frame(nil, s, "darktrace", p)); got != want {
			t.Errorf("Frame(%v) = %q, want %q", s, got, want)
		}
	}
}
