package bench

import (
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/parser"
)

// TestGeneratedAlertsClassify feeds every family, in both header styles and
// at small and large sizes, through dtrelay's own header scanner and strict
// classifier: the payload must be the JSON alert, byte for byte, and be
// classified as its family.
func TestGeneratedAlertsClassify(t *testing.T) {
	c := parser.NewClassifier(0)
	c.Strict = true
	now := time.Now()
	for _, f := range Families() {
		want, ok := parser.ParseKind(f.String())
		if !ok {
			t.Fatalf("family %s has no parser kind", f)
		}
		for _, size := range []int{500, 1500, 14000} {
			g, err := NewGenerator(Mix{f: 1}, size, size)
			if err != nil {
				t.Fatal(err)
			}
			for _, style := range []HeaderStyle{Header3164, Header5424} {
				msg := NewMessageBuilder(g, style, FramingLF).AppendMessage(nil, 42, now)
				var h parser.Header
				parser.Scan(msg, &h)
				payload := h.Payload.Bytes(msg)
				if string(payload) != string(g.Append(nil, 42, now.UnixNano())) {
					t.Fatalf("%s %s %d: payload is not the alert: %.80q", f, style, size, payload)
				}
				var a parser.Alert
				if err := c.Classify(payload, h.App.Bytes(msg), &a); err != nil {
					t.Fatalf("%s %s %d: %v", f, style, size, err)
				}
				if a.Kind != want {
					t.Errorf("%s %s %d bytes classified as %s", f, style, size, a.Kind)
				}
			}
		}
	}
}
