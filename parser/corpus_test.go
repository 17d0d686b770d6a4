package parser_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/dtrelay/dtrelay/internal/alloctest"
	"github.com/dtrelay/dtrelay/parser"
	"github.com/dtrelay/dtrelay/parser/parsertest"
)

// sample is one real payload from the shared corpus, with what it must
// classify as.
type sample struct {
	name    string
	payload []byte // trimmed, header removed
	app     string
	want    expect
}

// expect is what a real sample must give. Priority and ID are checked only
// when set (priority "" = any).
type expect struct {
	kind       parser.Kind
	priority   string
	suppressed bool
	id         string
}

// Expected results for the top-level Sekoia files (see the corpus README).
var corpusFiles = map[string]expect{
	"test_aianalyst.json":                     {parser.KindAIAnalyst, "medium", false, "a400af0f-a297-478c-8fc6-c778a9558183"},
	"test_aianalyst_2.json":                   {parser.KindAIAnalyst, "high", false, "204a3642-a6f1-4ac3-85d0-add7dd0c9f9b"},
	"test_aianalyst_beacon.json":              {parser.KindAIAnalyst, "medium", false, "de80f521-f2dd-4669-a98a-e8af28049dd3"},
	"test_aianalyst_without_log_type.json":    {parser.KindAIAnalyst, "high", false, "dc5f69a5-ee78-4702-a999-ed64a9e873dc"},
	"test_anomalous_file.json":                {parser.KindModelBreach, "none", false, "26316"},
	"test_antigena_connection.json":           {parser.KindModelBreach, "high", true, "26368"},
	"test_device_attack_and_recon_tools.json": {parser.KindModelBreach, "high", false, "27103"},
	"test_device_request_watched_domain.json": {parser.KindModelBreach, "medium", false, "25808"},
	"test_device_threat_indicator.json":       {parser.KindModelBreach, "medium", false, "25860"},
	"test_email.json":                         {parser.KindEmail, "low", false, "11111111-1111-1111-1111-111111111111"},
	"test_pentest.json":                       {parser.KindModelBreach, "high", false, "25908"},
	"test_simplemodel.json":                   {parser.KindModelBreach, "none", false, "36586"},
	"test_summurizer.json":                    {parser.KindAntigena, "low", true, ""},
}

// corpusLines lists, per line-oriented file, the header style of each raw
// line and the kind of its payload.
var corpusLines = map[string][]struct {
	style parser.Style
	want  expect
}{
	"elastic/deploy-sample_logs/ai_analyst_alert.log": {
		{parser.Style5424, expect{kind: parser.KindAIAnalyst, priority: "high"}},
		{parser.Style5424, expect{kind: parser.KindAIAnalyst, priority: "medium"}},
	},
	"elastic/deploy-sample_logs/model_breach_alert.log": {
		{parser.Style5424, expect{kind: parser.KindModelBreach, priority: "high", id: "6"}},
		{parser.Style5424, expect{kind: parser.KindModelBreach, priority: "none", id: "1"}},
		{parser.Style5424, expect{kind: parser.KindModelBreach, priority: "none", id: "5"}},
		{parser.Style3164, expect{kind: parser.KindTest, priority: "high", id: "123"}},
	},
	"elastic/deploy-sample_logs/system_status_alert.log": {
		{parser.Style5424, expect{kind: parser.KindSystemStatus, priority: "medium"}},
		{parser.Style5424, expect{kind: parser.KindSystemStatus, priority: "high"}},
	},
	"elastic/pipeline/test-ai-analyst-alert.log": {
		{parser.StyleBare, expect{kind: parser.KindAIAnalyst}},
		{parser.StyleBare, expect{kind: parser.KindAIAnalyst}},
	},
	"elastic/pipeline/test-model-breach-alert.log": {
		{parser.StyleBare, expect{kind: parser.KindModelBreach}},
		{parser.StyleBare, expect{kind: parser.KindModelBreach}},
		{parser.StyleBare, expect{kind: parser.KindModelBreach}},
		{parser.StyleBare, expect{kind: parser.KindTest}},
		{parser.Style3164, expect{kind: parser.KindTest}}, // "darktrace {json}": tag kept by the collector
		{parser.StyleBare, expect{kind: parser.KindModelBreach}},
		{parser.StyleBare, expect{kind: parser.KindModelBreach}},
		{parser.StyleBare, expect{kind: parser.KindModelBreach}},
		{parser.StyleBare, expect{kind: parser.KindModelBreach}},
		{parser.StyleBare, expect{kind: parser.KindModelBreach, priority: "none", id: "25196"}},
		{parser.StyleBare, expect{kind: parser.KindModelBreach, priority: "none", suppressed: true, id: "36725"}},
	},
	"elastic/pipeline/test-system-status-alert.log": {
		{parser.StyleBare, expect{kind: parser.KindSystemStatus, priority: "medium"}},
		{parser.StyleBare, expect{kind: parser.KindSystemStatus, priority: "high"}},
	},
	"sc4s/test_darktrace_default_comment.log": {
		{parser.Style3164, expect{kind: parser.KindSystemStatus, priority: "medium"}},
	},
	"sc4s/test_darktrace_audit_comment.log": {
		{parser.Style3164, expect{kind: parser.KindAudit, priority: "low"}},
	},
}

// corpusArrays lists the API fixtures (JSON arrays of events): element
// count and kind.
var corpusArrays = map[string]struct {
	n    int
	kind parser.Kind
}{
	"elastic/api-mock/modelbreaches.json":                  {1, parser.KindModelBreach},
	"elastic/api-mock/aianalyst_incidentevents.json":       {1, parser.KindAIAnalyst},
	"sekoia-automation-library/modelbreaches_response.txt": {1, parser.KindModelBreach},
	"sekoia-automation-library/aianalyst_response.txt":     {16, parser.KindAIAnalyst},
}

// loadCorpus reads every real payload, or skips when the shared corpus is
// absent. Lines are split on LF and their headers removed with Scan, the
// style of which is checked against corpusLines.
func loadCorpus(t *testing.T) []sample {
	t.Helper()
	if _, err := os.Stat(samplesDir); err != nil {
		t.Skipf("real Darktrace samples not found at %s (%v); corpus test skipped", samplesDir, err)
	}
	var out []sample
	for name, want := range corpusFiles {
		b := readFile(t, filepath.Join(samplesDir, name))
		out = append(out, sample{name, bytes.Trim(b, " \t\r\n"), "darktrace", want})
	}
	for name, lines := range corpusLines {
		raw := bytes.Split(bytes.TrimRight(readFile(t, filepath.Join(samplesDir, name)), "\n"), []byte("\n"))
		if len(raw) != len(lines) {
			t.Fatalf("%s: %d lines, the test expects %d", name, len(raw), len(lines))
		}
		for i, line := range raw {
			var h parser.Header
			parser.Scan(line, &h)
			if h.Style != lines[i].style {
				t.Errorf("%s:%d: style %v, want %v", name, i+1, h.Style, lines[i].style)
			}
			app := string(h.App.Bytes(line))
			if app == "" {
				app = "darktrace"
			}
			p := h.Payload.Bytes(line)
			if !json.Valid(p) {
				t.Errorf("%s:%d: payload after Scan is not JSON: %.60q", name, i+1, p)
			}
			out = append(out, sample{fmt.Sprintf("%s:%d", name, i+1), p, app, lines[i].want})
		}
	}
	for name, arr := range corpusArrays {
		var elems []json.RawMessage
		if err := json.Unmarshal(readFile(t, filepath.Join(samplesDir, name)), &elems); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(elems) != arr.n {
			t.Fatalf("%s: %d elements, the test expects %d", name, len(elems), arr.n)
		}
		for i, e := range elems {
			var c bytes.Buffer
			if err := json.Compact(&c, e); err != nil { // one event per line, as the poller sends it
				t.Fatalf("%s[%d]: %v", name, i, err)
			}
			out = append(out, sample{fmt.Sprintf("%s[%d]", name, i), c.Bytes(), "darktrace", expect{kind: arr.kind}})
		}
	}
	return out
}

// TestCorpus wraps every real payload in every header style: Scan must
// give the payload back byte for byte, and Classify the expected kind
// (priority, suppression and ID where stated), without allocating once
// warmed up.
func TestCorpus(t *testing.T) {
	samples := loadCorpus(t)
	if len(samples) < 40 {
		t.Fatalf("only %d real samples loaded", len(samples))
	}
	c := parser.NewClassifier(0)
	for _, s := range samples {
		for _, style := range parsertest.Styles {
			frame := parsertest.Frame(nil, style, s.app, s.payload)
			var h parser.Header
			parser.Scan(frame, &h)
			if got := h.Payload.Bytes(frame); !bytes.Equal(got, s.payload) {
				t.Errorf("%s in %v: payload differs: got %d bytes %.40q…, want %d bytes %.40q…",
					s.name, style, len(got), got, len(s.payload), s.payload)
				continue
			}
			app := h.App.Bytes(frame)
			if style == parsertest.Bare {
				app = []byte(s.app)
			}
			var a, ah parser.Alert
			var d parser.Details
			if err := c.ClassifyDetails(h.Payload.Bytes(frame), app, &a, &d); err != nil {
				t.Errorf("%s in %v: %v", s.name, style, err)
				continue
			}
			if err := c.Classify(h.Payload.Bytes(frame), app, &ah); err != nil || ah != a {
				t.Errorf("%s in %v: Classify %v %+v, ClassifyDetails %+v", s.name, style, err, ah, a)
			}
			w := s.want
			if a.Kind != w.kind || d.Suppressed != w.suppressed ||
				(w.priority != "" && a.Priority.String() != w.priority) || (w.id != "" && string(d.IDBytes()) != w.id) {
				t.Errorf("%s in %v: kind %v priority %v suppressed %v id %q, want %+v",
					s.name, style, a.Kind, a.Priority, d.Suppressed, d.IDBytes(), w)
			}
			if d.Time == 0 && a.Kind != parser.KindAudit {
				t.Errorf("%s in %v: no time found", s.name, style)
			}
		}
		var a parser.Alert
		if n := alloctest.PerRun(5, func() { _ = c.Classify(s.payload, []byte(s.app), &a) }); n != 0 {
			t.Errorf("%s: Classify allocates %.1f times per call in steady state", s.name, n)
		}
	}
}
