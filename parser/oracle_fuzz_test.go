package parser_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dtrelay/dtrelay/parser"
)

// nastyPayloads are hand-written edge cases for the JSON scanner and the
// classifier: escaped and duplicate keys, odd numbers, surrogates,
// trailing bytes, BOM, NUL, nesting at and past the cap.
var nastyPayloads = []string{
	`{"\u0070bid":5,"model":{"name":"x"}}`,
	`{"p\u0062id":3,"mod\u0065l":{"n\u0061me":"Unrestricted Test Model"}}`,
	`{"pbid":7,"model":{"name":"Unrestricted\u0020Test Model"}}`,
	`{"model":{},"\u0074\u0072\u0069\u0067\u0067\u0065\u0072\u0065\u0064\u0043\u006f\u006d\u0070\u006f\u006e\u0065\u006e\u0074\u0073":[]}`,
	`{"pbid":1,"pbid":2,"model":{}}`,
	`{"pbid":1,"model":{"name":"Unrestricted Test Model"},"model":{"name":"m"}}`,
	`{"pbid":1,"model":{"name":"m"},"model":"flat"}`,
	`{"pbid":1,"model":{"name":"Unrestricted Test Model"},"model":{}}`,
	`{"pbid":1,"model":{"now":{"name":"Unrestricted Test Model"}},"model":{"name":"m"}}`,
	`{"pbid":1,"model":{"now":{"now":{"name":"Unrestricted Test Model"}}}}`,
	`{"pbid":1,"model":{"then":{"then":{"name":"Unrestricted Test Model"},"now":{}}}}`,
	`{"pbid":1,"model":{"name":"m","actions":{"antigena":{"actions":{"antigena":{"a":1}}}}}}`,
	`{"pbid":1,"model":{"x":{"name":"Unrestricted Test Model"},"actions":{"x":{"antigena":{"a":1}}}}}`,
	`{"pbid":1,"model":{"now":1,"now":{"name":"Unrestricted Test Model"}}}`,
	`{"pbid":1,"model":{"now":{"name":"Unrestricted Test Model"},"now":2,"then":{"category":"informational"}}}`,
	`{"pbid":1,"model":{"actions":{"antigena":{"a":1}},"actions":{}}}`,
	`{"pbid":1,"model":{"actions":{"antigena":{"a":1},"antigena":{}}}}`,
	`{"pbid":1,"model":{"then":{"actions":{"antigena":{ "x" : [] }}},"now":[]}}`,
	`{"pbid":1,"model":{"category":"INFORMATIONAL","priority":5},"score":0.9}`,
	`{"pbid":1,"model":{"category":"Inform\u0061tional"},"score":0.9}`,
	`{"pbid":1,"model":{"priority":"\u0068igh"}}`,
	`{"summariser":"S","id":"\ud800"}`,
	`{"summariser":"S","id":"\ud800\u0041"}`,
	`{"summariser":"S","id":"\ud83d\ude00x"}`,
	`{"summariser":"S","id":"\udc00\ud800"}`,
	`{"summariser":"S","id":"\ud800\\u0041"}`,
	`{"summariser":"S","id":"a\"b\\c\/d\b\f\n\r\t"}`,
	`{"summariser":"S","id":"\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"}`,
	`{"summariser":"S","aiaScore":"\u0035\u0035","createdAt":"\u0032024-02-29T23:59:58Z"}`,
	`{"pbid":1,"model":{},"score":-0}`,
	`{"pbid":1,"model":{},"score":1e400,"time":-1e400}`,
	`{"pbid":1,"model":{},"score":"1e400","time":"-0"}`,
	`{"pbid":1,"model":{},"score":0.5e-1,"time":1E+12}`,
	`{"pbid":18446744073709551616,"model":{}}`,
	`{"pbid":00,"model":{}}`, `{"a":-}`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":1e}`, `{"a":1e+}`,
	`{"a":+1}`, `{"a":0x10}`, `{"a":-01}`, `{"a":1.5e3.2}`, `{"a":NaN}`, `{"a":Infinity}`,
	`{"a":1}x`, `{"a":1} {}`, "{\"a\":1}\x00", "\xef\xbb\xbf{\"a\":1}", "{\"a\":\"\x00\"}",
	`{"a":"\u0000"}`, "{\"a\":\"x\ty\"}", "{\"a\":\"x\x7fy\"}", `{"a":"\x"}`, `{"a":"\u12"}`,
	`{"a":"\u12G4"}`, `{"a":"\`, `{"a":"abcdefghijk`, `{"a":tru}`, `{"a":nul}`, `{"a":true}`,
	`{"a":falsey}`, `{"a":false,"b":null}`, `{}`, "{ \t\r\n}", `{"":""}`, `{"a":[]}`, `{"a":[,]}`,
	`{"a":[1,]}`, `{"a":{"b":1,}}`, `{"a" : 1 ,}`, `{"a":1,,"b":2}`, `{"a"}`, `{"a":}`, `{:1}`,
	`{'a':1}`, `[]`, `"s"`, `1`, `null`, ``, ` `, `{`, `}`, `{"a":1}}`, `{"a":[}`, `{"a":{]}`,
	" \t\r\n{ \"pbid\" : 1 , \"model\" : { \"now\" : { \"name\" : \"Unrestricted Test Model\" } } } \n",
	"{\"a\":\"\xff\"}", "{\"summariser\":\"S\",\"id\":\"\xc3\"}", "{\"a\":\"\xc0\xaf\"}",
	"{\"a\":\"\xed\xa0\x80\"}", "{\"\xff\":1}", "{\"a\":1}\xff", "{\"a\":1\xff}",
	`{"alert_name":"A","priority_level":"Informational","priority":98,"last_updated":"2024-02-29 23:59:58"}`,
	`{"direction":"in","anomaly_score":"64","time":"1700000000.5","uuid":12}`,
	`{"iris-event-type":"x","pbid":"7","model":{"now":{"actions":{"antigena":{"a":1}}}}}`,
	nest(299), nest(300), nest(511), nest(512), nest(513),
}

// nest returns an object whose value "a" nests arrays so that the deepest
// container is at depth n (the object counting as 1).
func nest(n int) string {
	return `{"pbid":1,"model":{},"a":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + `}`
}

// seedPayloads adds to f every synthetic payload and header frame (raw and
// as Scan's payload), every real sample (whole file and line by line,
// headers removed), and nastyPayloads; each once as an alert and once as
// an audit record.
func seedPayloads(f *testing.F) {
	var seeds [][]byte
	for _, n := range testFiles(f, payloadsDir, ".json", ".txt") {
		seeds = append(seeds, readFile(f, filepath.Join(payloadsDir, n)))
	}
	for _, n := range testFiles(f, headersDir, ".txt") {
		seeds = append(seeds, framePayloads(readFile(f, filepath.Join(headersDir, n)))...)
	}
	if _, err := os.Stat(samplesDir); err == nil {
		err := filepath.WalkDir(samplesDir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasSuffix(path, ".md") {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			seeds = append(seeds, b)
			for _, line := range bytes.Split(b, []byte("\n")) {
				seeds = append(seeds, framePayloads(line)...)
			}
			return nil
		})
		if err != nil {
			f.Fatalf("cannot read the real samples: %v", err)
		}
	}
	for _, s := range nastyPayloads {
		seeds = append(seeds, []byte(s))
	}
	for _, s := range seeds {
		f.Add(s, false)
		f.Add(s, true)
	}
}

// framePayloads returns frame and, when it differs, the payload Scan finds
// in it.
func framePayloads(frame []byte) [][]byte {
	var h parser.Header
	parser.Scan(frame, &h)
	if p := h.Payload.Bytes(frame); !bytes.Equal(p, frame) {
		return [][]byte{frame, p}
	}
	return [][]byte{frame}
}

// isJSONObject is the reference verdict: encoding/json accepts b and its
// value is an object. (encoding/json accepts invalid UTF-8 in strings and
// nesting up to 10,000 deep.)
func isJSONObject(b []byte) bool {
	t := bytes.TrimLeft(b, " \t\r\n")
	return json.Valid(b) && len(t) > 0 && t[0] == '{'
}

// FuzzClassifyOracle is the differential test of the purpose-made
// scanner. For any bytes:
//   - the default Classifier accepts exactly what encoding/json accepts as
//     an object (isJSONObject), except for the deliberate nesting cap: an
//     object nesting more than 512 deep is rejected;
//   - Strict accepts exactly what the default accepts and is valid UTF-8,
//     with the same Alert and Details;
//   - Classify (the hot path) and ClassifyDetails give the same verdict
//     and the same Alert;
//   - for an accepted payload, the Alert and Details ClassifyDetails gives
//     equal the fastjson oracle's (parser.FastjsonOracle, the old
//     implementation), unless fastjson cannot parse it (its MaxDepth of
//     300), which must then be deep.
func FuzzClassifyOracle(f *testing.F) {
	seedPayloads(f)
	const limit = 64 << 10
	c := parser.NewClassifier(limit)
	strict := &parser.Classifier{MaxPayload: limit, Strict: true}
	var oracle parser.FastjsonOracle
	f.Fuzz(func(t *testing.T, payload []byte, audit bool) {
		app := []byte("darktrace")
		if audit {
			app = []byte("darktrace_audit")
		}
		var a, ah, as, ao parser.Alert
		var d, ds, do parser.Details
		errHot := c.Classify(payload, app, &ah)
		err := c.ClassifyDetails(payload, app, &a, &d)
		errStrict := strict.ClassifyDetails(payload, app, &as, &ds)
		if errHot != err || ah != a {
			t.Fatalf("Classify(%q) = %v %+v, ClassifyDetails %v %+v", payload, errHot, ah, err, a)
		}
		if len(payload) > limit {
			if !errors.Is(err, parser.ErrTooLarge) || !errors.Is(errStrict, parser.ErrTooLarge) {
				t.Fatalf("%d bytes: %v, strict %v; want ErrTooLarge", len(payload), err, errStrict)
			}
			return
		}
		if err != nil && !errors.Is(err, parser.ErrNotJSON) {
			t.Fatalf("unexpected error %v", err)
		}
		depth := maxDepth(payload)
		want := isJSONObject(payload) && depth <= 512
		if (err == nil) != want {
			t.Fatalf("Classify(%q) = %v; encoding/json says object %v, depth %d", payload, err, isJSONObject(payload), depth)
		}
		if (errStrict == nil) != (want && utf8.Valid(payload)) {
			t.Fatalf("strict Classify(%q) = %v; default %v, valid UTF-8 %v", payload, errStrict, err, utf8.Valid(payload))
		}
		if err != nil {
			if a != (parser.Alert{Score: -1}) || as != (parser.Alert{Score: -1}) || d != (parser.Details{}) || ds != (parser.Details{}) {
				t.Fatalf("rejected %q but filled the Alert: %+v %+v, strict %+v %+v", payload, a, d, as, ds)
			}
			return
		}
		if errStrict == nil && (as != a || ds != d) {
			t.Fatalf("strict and default disagree on %q:\n%s\n%s", payload, describe(&as, &ds), describe(&a, &d))
		}
		if errOracle := oracle.Classify(payload, app, &ao, &do); errOracle != nil {
			if depth < 298 {
				t.Fatalf("the fastjson oracle rejects %q (depth %d), which encoding/json accepts", payload, depth)
			}
			return
		}
		if ao != a || do != d {
			t.Fatalf("Classify(%q, %q):\n got %s\nwant %s (fastjson oracle)", payload, app, describe(&a, &d), describe(&ao, &do))
		}
	})
}

func describe(a *parser.Alert, d *parser.Details) string {
	b, _ := json.Marshal(toResult(a, d, nil))
	return string(b)
}
