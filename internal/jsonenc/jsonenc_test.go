package jsonenc

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestAppendString(t *testing.T) {
	for in, want := range map[string]string{
		"":           `""`,
		"plain":      `"plain"`,
		`q"b\`:       `"q\"b\\"`,
		"\n\r\t\x01": `"\n\r\t\u0001"`,
		"é\x7f":      "\"é\x7f\"",
	} {
		if got := string(AppendString([]byte("x"), []byte(in))); got != "x"+want {
			t.Errorf("AppendString(%q) = %s, want x%s", in, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add([]byte(`{"a":"b\"c\\d"}`))
	f.Add([]byte("\x00\n\r\t\x1f\"\\é\u2028"))
	f.Add([]byte(`{"model":{"name":"Anomalous Connection::Data Sent to Rare Domain","then":"a\\b"},"score":0.93}`))
	f.Fuzz(func(t *testing.T, s []byte) {
		out := AppendString(nil, s)
		if !utf8.Valid(s) {
			return // bytes are copied as they are; encoding/json would replace them
		}
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%q encodes to invalid JSON %q: %v", s, out, err)
		}
		if back != string(s) {
			t.Fatalf("%q round-trips to %q", s, back)
		}
	})
}
