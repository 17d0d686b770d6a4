package parser

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/dtrelay/dtrelay/internal/alloctest"
)

// TestScanValidity states what the scanner accepts as one JSON object, case
// by case, and checks each verdict against encoding/json too (but for the
// nesting cap, where encoding/json goes up to 10,000).
func TestScanValidity(t *testing.T) {
	deep := func(n int) string { // deepest container at depth n
		return `{"a":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + `}`
	}
	deepObj := func(n int) string {
		return strings.Repeat(`{"a":`, n-1) + `{}` + strings.Repeat(`}`, n-1)
	}
	f := func(in string, valid bool) {
		t.Helper()
		var fs fields
		if got := fs.scan([]byte(in)); got != valid {
			t.Errorf("scan(%.80q) = %v, want %v", in, got, valid)
		}
		trimmed := strings.TrimLeft(in, " \t\r\n")
		ref := json.Valid([]byte(in)) && strings.HasPrefix(trimmed, "{")
		if ref != valid && !strings.Contains(in, "[[[[") && !strings.Contains(in, `{"a":{"a":{"a":`) {
			t.Errorf("case %.80q: the table says %v, encoding/json %v", in, valid, ref)
		}
	}
	// Structure and white space.
	f(`{}`, true)
	f(" \t\r\n{ \t\r\n} \t\r\n", true)
	f(`{"a":1,"b":[1,2,{"c":[]}],"d":{"e":{}}}`, true)
	f(`{ "a" : [ 1 , { } , [ ] ] , "b" : { "c" : null } }`, true)
	f(``, false)
	f(` `, false)
	f(`{`, false)
	f(`}`, false)
	f(`{"a":1}}`, false)
	f(`{"a":1}x`, false)
	f(`{"a":1} {}`, false)
	f("{\"a\":1}\x00", false)
	f("\xef\xbb\xbf{}", false) // a BOM is not white space
	f("\f{}", false)           // nor is form feed
	f("{}\v", false)
	f(`[]`, false)
	f(`"s"`, false)
	f(`1`, false)
	f(`null`, false)
	f(`{"a"}`, false)
	f(`{"a":}`, false)
	f(`{:1}`, false)
	f(`{1:1}`, false)
	f(`{'a':1}`, false)
	f(`{a:1}`, false)
	f(`{"a" 1}`, false)
	f(`{"a"::1}`, false)
	f(`{"a":1,}`, false)
	f(`{,"a":1}`, false)
	f(`{"a":1,,"b":2}`, false)
	f(`{"a":1 "b":2}`, false)
	f(`{"a":[1,]}`, false)
	f(`{"a":[,1]}`, false)
	f(`{"a":[1 2]}`, false)
	f(`{"a":[}`, false)
	f(`{"a":{]}`, false)
	f(`{"a":[1}`, false)
	f(`{"a":{"b":1]}`, false)
	f(`{"a":[1]]}`, false)
	// Literals.
	f(`{"a":true,"b":false,"c":null}`, true)
	f(`{"a":tru}`, false)
	f(`{"a":truee}`, false)
	f(`{"a":True}`, false)
	f(`{"a":nul}`, false)
	f(`{"a":fals}`, false)
	f(`{"a":undefined}`, false)
	// Numbers.
	for _, n := range []string{"0", "-0", "1", "-1", "10", "0.5", "-0.5", "1e5", "1E5", "1e+5", "1e-5",
		"1.5e300", "1e400", "-1e400", "123456789012345678901234567890", "0e0", "0.0e-0"} {
		f(`{"a":`+n+`}`, true)
		f(`{"a":[`+n+`]}`, true)
	}
	for _, n := range []string{"01", "-01", "00", "+1", "-", ".5", "1.", "1.e5", "1e", "1e+", "1e-",
		"0x10", "1.5.2", "1e5e5", "--1", "NaN", "Infinity", "-Infinity", "1_000", "١"} {
		f(`{"a":`+n+`}`, false)
		f(`{"a":[`+n+`]}`, false)
	}
	// Strings.
	f(`{"a":"","":"b"}`, true)
	f(`{"a":"\"\\\/\b\f\n\r\t\u0000\u00e9\uD83D\uDE00\ud800\udc00x"}`, true)
	f(`{"a":"\ud800"}`, true) // lone surrogate escapes are valid JSON
	f(`{"\u0070bid":1}`, true)
	f("{\"a\":\"\xff\xfe\"}", true) // not UTF-8: only Strict rejects it
	f("{\"a\":\"\x7f\"}", true)     // DEL is not a control byte for JSON
	f("{\"a\":\"x\x00y\"}", false)
	f("{\"a\":\"x\ty\"}", false)
	f("{\"a\":\"x\ny\"}", false)
	f("{\"a\":\"x\x1fy\"}", false)
	f("{\"a\x01\":1}", false)
	f(`{"a":"\x"}`, false)
	f(`{"a":"\'"}`, false)
	f(`{"a":"\U0041"}`, false)
	f(`{"a":"\u12"}`, false)
	f(`{"a":"\u12G4"}`, false)
	f(`{"a":"\u"}`, false)
	f(`{"a":"\`, false)
	f(`{"a":"abc`, false)
	f(`{"a":"abcdefghijklmnop`, false)
	f(`{"a":"abcdefgh\"`, false)
	f(`{"a\":1}`, false)
	// Long strings and escapes across the 8-byte words.
	for n := 0; n < 20; n++ {
		s := strings.Repeat("x", n)
		f(`{"`+s+`":"`+s+`\"`+s+`"}`, true)
		f(`{"`+s+`\u0041`+s+`":"`+s+`\\"}`, true)
		f("{\"a\":\""+s+"\x01\"}", false)
		f(`{"a":"`+s+`\q"}`, false)
	}
	// Nesting: up to maxNesting deep (the object counts), not deeper.
	f(deep(maxNesting), true)
	f(deep(maxNesting+1), false)
	f(deepObj(maxNesting), true)
	f(deepObj(maxNesting+1), false)
	f(`{"model":{"now":{"actions":{"antigena":`+strings.Repeat("[", maxNesting-4)+strings.Repeat("]", maxNesting-4)+`}}}}`, true)
	f(`{"model":{"now":{"actions":{"antigena":`+strings.Repeat("[", maxNesting-3)+strings.Repeat("]", maxNesting-3)+`}}}}`, false)
	f(`{"model":{"now":{"actions":`+strings.Repeat(`{"a":`, maxNesting-4)+`{}`+strings.Repeat(`}`, maxNesting-4)+`}}}`, true)
	f(`{"model":{"now":{"actions":`+strings.Repeat(`{"a":`, maxNesting-3)+`{}`+strings.Repeat(`}`, maxNesting-3)+`}}}`, false)
}

// TestScanFields checks what the scanner records: types, spans, escaped
// keys, duplicates (the last wins), and the model contexts.
func TestScanFields(t *testing.T) {
	text := func(b []byte, v jsonValue) string { return string(b[v.start:v.end]) }
	in := []byte(`{"pbid":1,"pbid" : 42 ,"id":"a\"b","uuid":null,"score":[1,2],"time":true,` +
		`"p\u0072iority":"high","mod\u0065l":{"name":"x","now":{"name":"N","actions":{"antigena":{"a":1}}},` +
		`"then":{"category":"C","priority":{"p":1}},"actions":{"antigena":{}},"name":"y"},"x":{"pbid":9}}`)
	var f fields
	if !f.scan(in) {
		t.Fatalf("scan failed")
	}
	for _, c := range []struct {
		name string
		v    jsonValue
		typ  jsonType
		text string
		esc  bool
	}{
		{"pbid", f.pbid, typeNumber, "42", false},
		{"id", f.id, typeString, `a\"b`, true},
		{"uuid", f.uuid, typeNull, "null", false},
		{"score", f.score, typeArray, "[1,2]", false},
		{"time", f.time, typeTrue, "true", false},
		{"priority", f.priority, typeString, "high", false},
		{"model.name", f.lv[0].name, typeString, "y", false},
		{"model.actions.antigena", f.lv[0].antigena, typeObject, "{}", false},
		{"model.now", f.now, typeObject, `{"name":"N","actions":{"antigena":{"a":1}}}`, false},
		{"model.now.name", f.lv[1].name, typeString, "N", false},
		{"model.now.actions.antigena", f.lv[1].antigena, typeObject, `{"a":1}`, false},
		{"model.then.category", f.lv[2].category, typeString, "C", false},
		{"model.then.priority", f.lv[2].priority, typeObject, `{"p":1}`, false},
		{"model.then.name", f.lv[2].name, typeNone, "", false},
		{"creationTime", f.creationTime, typeNone, "", false},
	} {
		if c.v.typ != c.typ || text(in, c.v) != c.text || c.v.esc != c.esc {
			t.Errorf("%s: type %d %q esc %v, want type %d %q esc %v", c.name, c.v.typ, text(in, c.v), c.v.esc, c.typ, c.text, c.esc)
		}
	}
	if f.effectiveModel() != &f.lv[1] {
		t.Errorf("effective model is not model.now")
	}
	r := valueReader{b: in}
	if !r.nonEmptyObject(f.lv[1].antigena) || r.nonEmptyObject(f.lv[0].antigena) {
		t.Errorf("nonEmptyObject wrong for %q / %q", text(in, f.lv[1].antigena), text(in, f.lv[0].antigena))
	}
	// A later "model" that is not an object forgets the earlier one's fields.
	if !f.scan([]byte(`{"model":{"name":"x","now":{"name":"n"}},"model":1}`)) {
		t.Fatal("scan failed")
	}
	if f.model.typ != typeNumber || f.now.typ != typeNone || f.lv[0].name.typ != typeNone || f.lv[1].name.typ != typeNone {
		t.Errorf("duplicate model not reset: %+v", f)
	}
}

// TestUnescape compares unescape with fastjson's decoding of the same
// JSON strings, lone and mismatched surrogates included.
func TestUnescape(t *testing.T) {
	var p fastjson.Parser
	for _, s := range []string{``, `abc`, `a\"b\\c\/d\be\ff\ng\rh\ti`, `\u0041\u00e9\u20ac\uffff`,
		`\ud83d\ude00`, `\ud800`, `\ud800x`, `\ud800\u0041`, `\ud800\ud800`, `\udc00\ud800`, `\ud800\\u0041`,
		`x\ud800\n`, `\ud800\udc00\udc00`, `\u0000`, "caf\xc3\xa9 \xff", `\uDBFF\uDFFF`} {
		v, err := p.Parse(`"` + s + `"`)
		if err != nil {
			t.Fatalf("fastjson cannot parse %q: %v", s, err)
		}
		want, _ := v.StringBytes()
		got := unescape(nil, []byte(s))
		if string(got) != string(want) {
			t.Errorf("unescape(%q) = %q, fastjson %q", s, got, want)
		}
		if len(got) > len(s) {
			t.Errorf("unescape(%q) grew to %d bytes", s, len(got))
		}
	}
}

// TestClassifyEscapedFieldsAllocs: reading escaped fields allocates only
// until the unescape buffer has grown.
func TestClassifyEscapedFieldsAllocs(t *testing.T) {
	payload := []byte(`{"\u0070bid":"\u0031\u0032","model":{"name":"Unrestricted\u0020Test Model",` +
		`"category":"\u0053uspicious","priority":"\u0068igh"},"score":"0.\u0039","time":"\u0032024-01-01T00:00:00Z"}`)
	var c Classifier
	var a Alert
	var d Details
	run := func() {
		if err := c.ClassifyDetails(payload, nil, &a, &d); err != nil {
			t.Fatal(err)
		}
	}
	run()
	if a.Kind != KindTest || string(d.IDBytes()) != "12" || a.Score != 0.9 || a.Priority != PriorityHigh || d.Time != 1704067200000 {
		t.Fatalf("escaped fields misread: %+v %+v", a, d)
	}
	if n := alloctest.PerRun(100, run); n != 0 {
		t.Errorf("%.1f allocations per Classify of a payload with escaped fields", n)
	}
}
