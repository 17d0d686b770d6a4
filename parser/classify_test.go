package parser_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dtrelay/dtrelay/internal/alloctest"
	"github.com/dtrelay/dtrelay/parser"
	"github.com/dtrelay/dtrelay/parser/parsertest"
)

// result is the golden form of one classification.
type result struct {
	Kind       string  `json:"kind"`
	Priority   string  `json:"priority"`
	Score      float64 `json:"score"`
	Time       int64   `json:"time"`
	ID         string  `json:"id"`
	Suppressed bool    `json:"suppressed"`
	Err        string  `json:"error,omitempty"`
}

func toResult(a *parser.Alert, d *parser.Details, err error) result {
	r := result{Kind: a.Kind.String(), Priority: a.Priority.String(), Score: a.Score, Time: d.Time,
		ID: string(d.IDBytes()), Suppressed: d.Suppressed}
	if err != nil {
		r.Err = err.Error()
	}
	return r
}

// classifyBoth runs Classify (the hot path) and ClassifyDetails on payload
// and returns the latter's result, with d as the Details to fill; it fails
// t when the two disagree on the verdict or the Alert.
func classifyBoth(t testing.TB, c *parser.Classifier, payload, app []byte, d *parser.Details) result {
	t.Helper()
	var a, ad parser.Alert
	err := c.Classify(payload, app, &a)
	errD := c.ClassifyDetails(payload, app, &ad, d)
	if err != errD || a != ad {
		t.Errorf("Classify(%.60q) = %v %+v, ClassifyDetails %v %+v", payload, err, a, errD, ad)
	}
	return toResult(&ad, d, errD)
}

// appFor is the tag a payload file is sent with: audit_* files come with
// "darktrace_audit", everything else with "darktrace".
func appFor(name string) []byte {
	if strings.HasPrefix(name, "audit_") {
		return []byte("darktrace_audit")
	}
	return []byte("darktrace")
}

// generated lists the payload files written by parsertest.Alert (sizes in
// bytes), refreshed with -update and checked against the generator.
var generated = []struct {
	kind parser.Kind
	size int
}{
	{parser.KindModelBreach, 500}, {parser.KindModelBreach, 1500}, {parser.KindModelBreach, 4000},
	{parser.KindModelBreach, 14000}, {parser.KindAIAnalyst, 1500}, {parser.KindAIAnalyst, 4000},
	{parser.KindAIAnalyst, 14000}, {parser.KindTest, 500},
}

func generatedName(kind parser.Kind, size int) string {
	return fmt.Sprintf("gen_%s_%05d.json", kind, size)
}

// TestGeneratedPayloads keeps the generated files in step with the
// generator (and rewrites them under -update).
func TestGeneratedPayloads(t *testing.T) {
	for _, g := range generated {
		b := parsertest.Alert(nil, g.kind, uint64(g.size), g.size)
		if len(b) != g.size || !json.Valid(b) {
			t.Errorf("Alert(%v, %d): %d bytes, valid JSON %v", g.kind, g.size, len(b), json.Valid(b))
		}
		writeOrCompare(t, filepath.Join(payloadsDir, generatedName(g.kind, g.size)), b)
	}
}

// TestClassifyGolden classifies every payload in testdata/payloads and
// compares with testdata/payloads/golden.json (file → result).
func TestClassifyGolden(t *testing.T) {
	c := parser.NewClassifier(0)
	got := map[string]result{}
	for _, name := range testFiles(t, payloadsDir, ".json", ".txt") {
		var d parser.Details
		got[name] = classifyBoth(t, c, readFile(t, filepath.Join(payloadsDir, name)), appFor(name), &d)
	}
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeOrCompare(t, filepath.Join(payloadsDir, "golden.json"), append(b, '\n'))
}

// TestClassifyFamilies states the expected kind per synthetic file by its
// name, independent of the golden file.
func TestClassifyFamilies(t *testing.T) {
	prefixes := []struct {
		prefix string
		kind   parser.Kind
		err    error
	}{
		{"model_breach_", parser.KindModelBreach, nil}, {"gen_model_breach_", parser.KindModelBreach, nil},
		{"test_alert", parser.KindTest, nil}, {"gen_test_", parser.KindTest, nil},
		{"ai_analyst", parser.KindAIAnalyst, nil}, {"gen_ai_analyst_", parser.KindAIAnalyst, nil},
		{"antigena_", parser.KindAntigena, nil}, {"system_status", parser.KindSystemStatus, nil},
		{"email", parser.KindEmail, nil}, {"audit_", parser.KindAudit, nil},
		{"unknown_", parser.KindUnknown, nil}, {"not_json_", parser.KindUnknown, parser.ErrNotJSON},
		{"sloppy_json_", parser.KindUnknown, parser.ErrNotJSON}, // invalid JSON: the scanner checks the full grammar
	}
	c := parser.NewClassifier(0)
	for _, name := range testFiles(t, payloadsDir, ".json", ".txt") {
		found := false
		for _, p := range prefixes {
			if !strings.HasPrefix(name, p.prefix) {
				continue
			}
			found = true
			var a parser.Alert
			err := c.Classify(readFile(t, filepath.Join(payloadsDir, name)), appFor(name), &a)
			if !errors.Is(err, p.err) || a.Kind != p.kind {
				t.Errorf("%s: kind %v err %v, want %v err %v", name, a.Kind, err, p.kind, p.err)
			}
			break
		}
		if !found {
			t.Errorf("%s: no expected family for this file name", name)
		}
	}
}

// TestClassifyRules checks each documented rule on minimal payloads.
func TestClassifyRules(t *testing.T) {
	f := func(payload, app string, want result) {
		t.Helper()
		var c parser.Classifier
		var d parser.Details
		if got := classifyBoth(t, &c, []byte(payload), []byte(app), &d); got != want {
			t.Errorf("Classify(%s, %q)\n got %+v\nwant %+v", payload, app, got, want)
		}
	}
	const mb = `"triggeredComponents":[],`
	// Kinds.
	f(`{"pbid":1,"model":{"name":"m"},`+mb+`"score":0.9,"time":1700000000000}`, "darktrace",
		result{"model_breach", "high", 0.9, 1700000000000, "1", false, ""})
	f(`{"pbid":2,"model":{"then":{"name":"Unrestricted Test Model"}},"score":1}`, "",
		result{"test", "high", 1, 0, "2", false, ""})
	f(`{"iris-event-type":"x","pbid":0,"model":"m","start":1702896511}`, "darktrace",
		result{"antigena", "low", -1, 1702896511000, "", true, ""})
	f(`{"summariser":"S","aiaScore":55,"id":"abc","createdAt":1697334832520}`, "",
		result{"ai_analyst", "medium", 0.55, 1697334832520, "abc", false, ""})
	f(`{"alert_name":"A","priority_level":"high","last_updated":1618760651.25,"uuid":"u"}`, "",
		result{"system_status", "high", -1, 1618760651250, "u", false, ""})
	f(`{"direction":"inbound","anomaly_score":50,"uuid":"e","timestamp":"2026-06-18 15:04:54.188000"}`, "",
		result{"email", "medium", 0.5, 1781795094188, "e", false, ""})
	f(`{"username":"u","status":302}`, "darktrace_audit", result{"audit", "low", -1, 0, "", false, ""})
	f(`{"pbid":9,"model":{"name":"m"},"score":0.9}`, "darktrace_audit", result{"audit", "low", -1, 0, "9", false, ""})
	f(`{"a":1}`, "darktrace", result{"unknown", "low", -1, 0, "", false, ""})
	f(`{"model":{"name":"m"}}`, "", result{"unknown", "low", -1, 0, "", false, ""})
	// Priority: informational first, then score, then priority fields.
	f(`{"pbid":3,"model":{"now":{"category":"Informational","priority":5},"then":{"category":"Critical"}},"score":0.99}`, "",
		result{"model_breach", "none", 0.99, 0, "3", false, ""})
	f(`{"pbid":4,"model":{"category":"Suspicious","priority":5},"score":0.5}`, "", result{"model_breach", "medium", 0.5, 0, "4", false, ""})
	f(`{"pbid":5,"model":{"priority":5},"score":0.4999}`, "", result{"model_breach", "low", 0.4999, 0, "5", false, ""})
	f(`{"pbid":6,"model":{"priority":3}}`, "", result{"model_breach", "high", -1, 0, "6", false, ""})
	f(`{"pbid":7,"model":{"priority":"2"}}`, "", result{"model_breach", "medium", -1, 0, "7", false, ""})
	f(`{"pbid":8,"model":{"priority":0}}`, "", result{"model_breach", "low", -1, 0, "8", false, ""})
	f(`{"alert_name":"A","priority":98,"last_updated":1}`, "", result{"system_status", "high", -1, 1000, "", false, ""})
	f(`{"alert_name":"A","priority":43,"last_updated":1}`, "", result{"system_status", "medium", -1, 1000, "", false, ""})
	f(`{"alert_name":"A","priority":19,"last_updated":1}`, "", result{"system_status", "low", -1, 1000, "", false, ""})
	f(`{"alert_name":"A","priority_level":"Informational","priority":98,"last_updated":1}`, "",
		result{"system_status", "none", -1, 1000, "", false, ""})
	f(`{"summariser":"S","aiaScore":130,"category":"informational"}`, "", result{"ai_analyst", "none", 1, 0, "", false, ""})
	// Suppressed: a model with an Antigena action.
	f(`{"pbid":10,"model":{"now":{"actions":{"antigena":{"action":"quarantine"}}}},"score":0.2}`, "",
		result{"model_breach", "low", 0.2, 0, "10", true, ""})
	f(`{"pbid":11,"model":{"now":{"actions":{"antigena":{}}}},"score":0.2}`, "",
		result{"model_breach", "low", 0.2, 0, "11", false, ""})
	// Values: odd types and shapes.
	f(`{"pbid":"12","model":{},"score":"0.8","time":"1700000000"}`, "", result{"model_breach", "high", 0.8, 1700000000000, "12", false, ""})
	f(`{"pbid":-1,"model":{},"score":-0.5,"time":-5}`, "", result{"model_breach", "low", -1, 0, "", false, ""})
	f(`{"pbid":1.5,"model":{},"score":null,"time":"2024-02-29T23:59:58.25+01:00"}`, "",
		result{"model_breach", "low", -1, 1709247598250, "", false, ""})
	f(`{"summariser":"S","id":12345}`, "", result{"ai_analyst", "low", -1, 0, "12345", false, ""})
	f(`{"a":1,"time":"0001-01-01 00:00:00","timestamp":"1969-12-31T23:59:59.999Z","createdAt":"1970-01-01T00:00:00.001Z"}`, "",
		result{"unknown", "low", -1, 1, "", false, ""})
	long := strings.Repeat("x", 100)
	f(`{"summariser":"S","id":"`+long+`"}`, "", result{"ai_analyst", "low", -1, 0, long[:parser.MaxIDLen], false, ""})
	f(`{"summariser":"S","id":"a\u00e9\"b"}`, "", result{"ai_analyst", "low", -1, 0, "a\u00e9\"b", false, ""})
	f(` {"a":1} `, "", result{"unknown", "low", -1, 0, "", false, ""})
	// Keys: compared unescaped; of duplicates, the last wins at every level.
	f(`{"\u0070bid":13,"mod\u0065l":{"n\u0061me":"Unrestricted Test Model"}}`, "", result{"test", "low", -1, 0, "13", false, ""})
	f(`{"pbid":1,"pbid":14,"model":{"name":"Unrestricted Test Model"},"model":{"name":"m"}}`, "",
		result{"model_breach", "low", -1, 0, "14", false, ""})
	f(`{"pbid":15,"model":{"now":{"actions":{"antigena":{"a":1}}},"now":1,"then":{"priority":4}}}`, "",
		result{"model_breach", "high", -1, 0, "15", false, ""})
	f(`{"pbid":16,"model":{"actions":{"antigena":{"a":1},"antigena":{}}}}`, "", result{"model_breach", "low", -1, 0, "16", false, ""})
	// Not JSON objects.
	notJSON := result{"unknown", "none", -1, 0, "", false, parser.ErrNotJSON.Error()}
	for _, p := range []string{``, `[]`, `"s"`, `1`, `{`, `{"a":1}x`, `{"a":1}{"b":2}`, `{"a":1,}`, `{"a" 1}`, `{"a":tru}`,
		`{"a":"x}`, `{a:1}`, `darktrace {"a":1}`, `{"a":01}`, `{"a":"\x"}`, "{\"a\":\"\t\"}", "\xef\xbb\xbf{}",
		`{"a":` + strings.Repeat("[", 512) + strings.Repeat("]", 512) + `}`} {
		f(p, "", notJSON)
	}
}

func TestClassifyLimits(t *testing.T) {
	payload := parsertest.Alert(nil, parser.KindModelBreach, 1, 4000)
	var a parser.Alert
	if err := parser.NewClassifier(3999).Classify(payload, nil, &a); !errors.Is(err, parser.ErrTooLarge) || a.Kind != parser.KindUnknown {
		t.Errorf("4000 bytes at limit 3999: %v %v, want ErrTooLarge", err, a.Kind)
	}
	if err := parser.NewClassifier(4000).Classify(payload, nil, &a); err != nil || a.Kind != parser.KindModelBreach {
		t.Errorf("4000 bytes at limit 4000: %v %v", err, a.Kind)
	}
	big := parsertest.Alert(nil, parser.KindModelBreach, 1, parser.DefaultMaxPayload+1)
	var zero parser.Classifier
	if err := zero.Classify(big, nil, &a); !errors.Is(err, parser.ErrTooLarge) {
		t.Errorf("zero Classifier, %d bytes: %v, want ErrTooLarge", len(big), err)
	}
	// Invalid JSON that the old fastjson-based default mode let through:
	// rejected in both modes now.
	for _, p := range []string{`{"a":"\x","pbid":1,"model":{}}`, `{"a":01,"pbid":1,"model":{}}`, `{"a":NaN,"pbid":1,"model":{}}`, `{"a":1-2,"pbid":1,"model":{}}`, "{\"a\":\"\x01\",\"pbid\":1,\"model\":{}}"} {
		for _, strict := range []bool{false, true} {
			c := parser.Classifier{Strict: strict}
			if err := c.Classify([]byte(p), nil, &a); !errors.Is(err, parser.ErrNotJSON) {
				t.Errorf("Classify(%q), strict %v: %v, want ErrNotJSON", p, strict, err)
			}
		}
	}
	// What only Strict rejects: strings that are not valid UTF-8.
	for _, p := range []string{"{\"a\":\"\xff\",\"pbid\":1,\"model\":{}}", "{\"pbid\":1,\"model\":{\"name\":\"\xc3\"}}", "{\"\xed\xa0\x80\":1,\"pbid\":1,\"model\":{}}"} {
		var def parser.Classifier
		if err := def.Classify([]byte(p), nil, &a); err != nil || a.Kind != parser.KindModelBreach {
			t.Errorf("default Classify(%q): %v %v, want model_breach", p, err, a.Kind)
		}
		strict := parser.Classifier{Strict: true}
		if err := strict.Classify([]byte(p), nil, &a); !errors.Is(err, parser.ErrNotJSON) {
			t.Errorf("strict Classify(%q): %v, want ErrNotJSON", p, err)
		}
	}
}

// TestClassifyReuse checks that one Classifier gives the same answer for
// a payload whatever it parsed before (no state leaks between calls).
func TestClassifyReuse(t *testing.T) {
	names := testFiles(t, payloadsDir, ".json", ".txt")
	fresh := map[string]result{}
	for _, n := range names {
		var d parser.Details
		fresh[n] = classifyBoth(t, parser.NewClassifier(0), readFile(t, filepath.Join(payloadsDir, n)), appFor(n), &d)
	}
	c := parser.NewClassifier(0)
	for round := 0; round < 2; round++ {
		for i := range names {
			n := names[(i*7+round)%len(names)]
			d := parser.Details{Suppressed: true, IDLen: 9, Time: 99} // stale values must be reset
			if got := classifyBoth(t, c, readFile(t, filepath.Join(payloadsDir, n)), appFor(n), &d); got != fresh[n] {
				t.Errorf("%s after other payloads: %+v, want %+v", n, got, fresh[n])
			}
		}
	}
}

// TestHotPathAllocs is the allocation guard of the parser's hot path:
// Scan and Classify on 1.5 KB and 4 KB model breaches and AI Analyst
// events, after one warm-up call, make no heap allocations; nor does
// ClassifyDetails, for when de-duplication needs it there.
func TestHotPathAllocs(t *testing.T) {
	for _, kind := range []parser.Kind{parser.KindModelBreach, parser.KindAIAnalyst} {
		for _, size := range []int{1500, 4000} {
			for _, strict := range []bool{false, true} {
				frame := parsertest.Frame(nil, parsertest.RFC3164, "darktrace", parsertest.Alert(nil, kind, 1, size))
				c := parser.Classifier{Strict: strict}
				var h parser.Header
				var a parser.Alert
				var d parser.Details
				run := func() {
					parser.Scan(frame, &h)
					if err := c.Classify(h.Payload.Bytes(frame), h.App.Bytes(frame), &a); err != nil {
						t.Fatal(err)
					}
				}
				details := func() {
					if err := c.ClassifyDetails(h.Payload.Bytes(frame), h.App.Bytes(frame), &a, &d); err != nil {
						t.Fatal(err)
					}
				}
				run()
				if a.Kind != kind {
					t.Fatalf("%v %d: kind %v", kind, size, a.Kind)
				}
				if n := alloctest.PerRun(200, run); n != 0 {
					t.Errorf("%v %d B (strict %v): %.2f allocations per Scan+Classify", kind, size, strict, n)
				}
				details()
				if n := alloctest.PerRun(200, details); n != 0 {
					t.Errorf("%v %d B (strict %v): %.2f allocations per ClassifyDetails", kind, size, strict, n)
				}
			}
		}
	}
}
