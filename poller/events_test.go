package poller

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSplitArray(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // nil with wantErr
		err  bool
	}{
		{"empty array", `[]`, []string{}, false},
		{"white space and BOM", "\xef\xbb\xbf \r\n[ \n ]\n", []string{}, false},
		{"compact objects", `[{"a":1},{"b":[1,2]}]`, []string{`{"a":1}`, `{"b":[1,2]}`}, false},
		{"pretty", "[\n  {\n    \"a\": 1\n  },\n  {\"b\": 2}\n]\n", []string{"{\n    \"a\": 1\n  }", `{"b": 2}`}, false},
		{"brackets and quotes inside strings", `[{"s":"]},{\"x\\"},{"t":"[{"}]`, []string{`{"s":"]},{\"x\\"}`, `{"t":"[{"}`}, false},
		{"scalars and nested arrays", `[1, "two", null, [3,[4]], -5.5e3, true]`, []string{`1`, `"two"`, `null`, `[3,[4]]`, `-5.5e3`, `true`}, false},
		{"not an array", `{"a":1}`, nil, true},
		{"html login page", `<html><body>login</body></html>`, nil, true},
		{"empty body", ``, nil, true},
		{"truncated in an object", `[{"a":1},{"b":`, nil, true},
		{"truncated in a string", `[{"a":"abc`, nil, true},
		{"truncated after an element", `[{"a":1}`, nil, true},
		{"missing comma", `[{"a":1} {"b":2}]`, nil, true},
		{"trailing comma", `[{"a":1},]`, nil, true},
		{"mismatched brackets", `[{"a":[1}]`, nil, true},
		{"data after the array", `[{"a":1}] x`, nil, true},
		{"a second array", `[{"a":1}][]`, nil, true},
		{"an invalid literal in an element", `[{"a":1},{"pbid":1,"bad":tru}]`, nil, true},
		{"an invalid number in an element", `[{"a":01}]`, nil, true},
		{"a trailing comma in an element", "[{\"pbid\":\n1,}]", nil, true},
		{"nested as deep as encoding/json allows", "[" + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + "]",
			[]string{strings.Repeat("[", 9999) + strings.Repeat("]", 9999)}, false},
		{"too deep", "[" + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + "]", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := []string{}
			err := splitArray([]byte(tt.in), nil, func(off, end int) { got = append(got, tt.in[off:end]) })
			if tt.err {
				if err == nil || !errors.Is(err, ErrBadResponse) {
					t.Fatalf("err = %v, want ErrBadResponse", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "\x00") != strings.Join(tt.want, "\x00") || len(got) != len(tt.want) {
				t.Errorf("elements = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestExtract(t *testing.T) {
	deep := strings.Repeat("[", 300) + strings.Repeat("]", 300)
	eps := endpoints()
	breaches, incidents := eps[0], eps[1]
	type want struct {
		ev, key, drop string
	}
	tests := []struct {
		name    string
		ep      *endpoint
		body    string
		maxSize int
		want    []want
	}{
		{
			name: "compact events are forwarded as they are", ep: breaches,
			body: `[{"pbid":7,"time":1, "x" : "a\nb"} , {"pbid":8}]`,
			want: []want{{ev: `{"pbid":7,"time":1, "x" : "a\nb"}`, key: "pbid:7"}, {ev: `{"pbid":8}`, key: "pbid:8"}},
		},
		{
			name: "an event holding raw LFs is compacted, strings untouched", ep: breaches,
			body: "[{\n  \"pbid\": 9,\n  \"s\": \"x  y\\n\\u00e9\\/\",\n  \"n\": 1.50E+3\n}]",
			want: []want{{ev: `{"pbid":9,"s":"x  y\n\u00e9\/","n":1.50E+3}`, key: "pbid:9"}},
		},
		{
			name: "CRLF too", ep: breaches, body: "[{\"pbid\": 10,\r\n\"a\": [1, 2]}]",
			want: []want{{ev: `{"pbid":10,"a":[1,2]}`, key: "pbid:10"}},
		},
		{
			name: "AI Analyst events are keyed by id and currentGroup", ep: incidents,
			body: `[{"id":"u1","currentGroup":"g1"},{"id":"u1","currentGroup":"g2"},{"id":"u2"}]`,
			want: []want{
				{ev: `{"id":"u1","currentGroup":"g1"}`, key: "id:u1|g1"},
				{ev: `{"id":"u1","currentGroup":"g2"}`, key: "id:u1|g2"},
				{ev: `{"id":"u2"}`, key: "id:u2|"},
			},
		},
		{
			name: "without the key fields, a hash of the bytes", ep: breaches,
			body: `[{"time":1},{"pbid":{"x":1}}]`,
			want: []want{{ev: `{"time":1}`, key: hashKey([]byte(`{"time":1}`))}, {ev: `{"pbid":{"x":1}}`, key: hashKey([]byte(`{"pbid":{"x":1}}`))}},
		},
		{
			name: "non-objects and oversize events are dropped", ep: breaches, maxSize: 20,
			body: `[1,"s",{"pbid":2,"big":"0123456789"},{"pbid":3}]`,
			want: []want{
				{key: hashKey([]byte(`1`)), drop: dropNotObject},
				{key: hashKey([]byte(`"s"`)), drop: dropNotObject},
				{key: "pbid:2", drop: dropOversize},
				{ev: `{"pbid":3}`, key: "pbid:3"},
			},
		},
		{
			// Valid JSON, but deeper than fastjson's MaxDepth (300): an
			// invalid event. (Invalid JSON makes the whole response bad:
			// TestSplitArray.)
			name: "an event fastjson cannot parse is dropped", ep: breaches,
			body: `[{"pbid":1,"a":` + deep + `},{"pbid":2}]`,
			want: []want{
				{key: hashKey([]byte(`{"pbid":1,"a":` + deep + `}`)), drop: dropInvalid},
				{ev: `{"pbid":2}`, key: "pbid:2"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := extractor{maxSize: tt.maxSize}
			if x.maxSize == 0 {
				x.maxSize = DefaultMaxEventSize
			}
			items, err := x.extract([]byte(tt.body), tt.ep)
			if err != nil {
				t.Fatal(err)
			}
			if len(items) != len(tt.want) {
				t.Fatalf("got %d items, want %d", len(items), len(tt.want))
			}
			for i, it := range items {
				w := tt.want[i]
				if string(it.ev) != w.ev || it.key != w.key || it.drop != w.drop {
					t.Errorf("item %d = (%q, %q, %q), want (%q, %q, %q)", i, it.ev, it.key, it.drop, w.ev, w.key, w.drop)
				}
			}
		})
	}
}

// TestExtractCorpus checks every element of the synthetic and the real API
// responses: one event each, no raw LF, byte for byte the element when it
// had none, else its json.Compact form; keyed by pbid or id|currentGroup.
func TestExtractCorpus(t *testing.T) {
	type file struct{ path, endpoint string }
	files := []file{
		{"testdata/modelbreaches_pretty.json", breachesEP},
		{"testdata/aianalyst_incidentevents.json", incidentsEP},
	}
	if _, err := os.Stat(samplesDir); err == nil {
		files = append(files,
			file{filepath.Join(samplesDir, "sekoia-automation-library/modelbreaches_response.txt"), breachesEP},
			file{filepath.Join(samplesDir, "sekoia-automation-library/aianalyst_response.txt"), incidentsEP},
			file{filepath.Join(samplesDir, "elastic/api-mock/modelbreaches.json"), breachesEP},
			file{filepath.Join(samplesDir, "elastic/api-mock/aianalyst_incidentevents.json"), incidentsEP})
	} else {
		t.Logf("real samples not available (%s absent): synthetic data only", samplesDir)
	}
	for _, f := range files {
		t.Run(filepath.Base(f.path), func(t *testing.T) {
			body, err := os.ReadFile(f.path)
			if err != nil {
				t.Fatal(err)
			}
			checkExtract(t, body, f.endpoint)
		})
	}
}

func checkExtract(t *testing.T, body []byte, path string) {
	t.Helper()
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		t.Fatal(err)
	}
	ep := endpoints()[0]
	if path == incidentsEP {
		ep = endpoints()[1]
	}
	x := extractor{maxSize: DefaultMaxEventSize}
	items, err := x.extract(body, ep)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != len(raws) {
		t.Fatalf("%d events, want %d", len(items), len(raws))
	}
	for i, it := range items {
		raw := bytes.TrimSpace(raws[i])
		want := raw
		if bytes.ContainsAny(raw, "\r\n") {
			var c bytes.Buffer
			if err := json.Compact(&c, raw); err != nil {
				t.Fatal(err)
			}
			want = c.Bytes()
		}
		if it.drop != "" || !bytes.Equal(it.ev, want) {
			t.Errorf("event %d: drop %q, bytes differ from the element (%d vs %d bytes)", i, it.drop, len(it.ev), len(want))
		}
		if bytes.ContainsAny(it.ev, "\r\n") {
			t.Errorf("event %d holds a raw CR or LF", i)
		}
		var obj struct {
			Pbid         *json.Number `json:"pbid"`
			ID           string       `json:"id"`
			CurrentGroup string       `json:"currentGroup"`
		}
		if err := json.Unmarshal(it.ev, &obj); err != nil {
			t.Fatal(err)
		}
		wantKey := "id:" + obj.ID + "|" + obj.CurrentGroup
		if ep.path == breachesEP {
			wantKey = "pbid:" + obj.Pbid.String()
		}
		if it.key != wantKey {
			t.Errorf("event %d: key %q, want %q", i, it.key, wantKey)
		}
	}
}

// FuzzSplitArray checks splitArray against encoding/json's Unmarshal: it
// accepts exactly the JSON arrays Unmarshal accepts (after an optional
// BOM), and finds the same elements; on anything it never panics and every
// element it reports lies inside the input, in order.
func FuzzSplitArray(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.json")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	for _, s := range []string{`[]`, `[1,[2],{"a":"]"}]`, `["\\",{"\"":[]}]`, `[{]`, "\ufeff[]"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var got [][]byte
		last := 0
		err := splitArray(b, nil, func(off, end int) {
			if off < last || end <= off || end > len(b) {
				t.Fatalf("element [%d:%d] out of order or bounds (last %d, len %d)", off, end, last, len(b))
			}
			last = end
			got = append(got, b[off:end])
		})
		var raws []json.RawMessage
		trimmed := bytes.TrimLeft(b, " \t\r\n")
		trimmed = bytes.TrimPrefix(trimmed, []byte("\xef\xbb\xbf"))
		valid := len(trimmed) > 0 && trimmed[0] == '[' && json.Unmarshal(trimmed, &raws) == nil
		if bytes.Count(b, []byte("[")) >= 9999 {
			return // at the nesting limit, Unmarshal counts the array itself, the Decoder does not
		}
		if (err == nil) != valid {
			t.Fatalf("splitArray(%.80q): %v; encoding/json says a valid array: %v", b, err, valid)
		}
		if !valid {
			return
		}
		if len(got) != len(raws) {
			t.Fatalf("%d elements, encoding/json finds %d", len(got), len(raws))
		}
		for i := range got {
			if !bytes.Equal(got[i], bytes.TrimSpace(raws[i])) {
				t.Fatalf("element %d = %q, encoding/json: %q", i, got[i], raws[i])
			}
		}
	})
}
