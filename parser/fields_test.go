package parser_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dtrelay/dtrelay/internal/alloctest"
	"github.com/dtrelay/dtrelay/parser"
)

// TestClassifyFieldsFamilies: the model name, category and identity that
// routes and de-duplication read, for each family of the project's samples.
func TestClassifyFieldsFamilies(t *testing.T) {
	for _, tc := range []struct {
		file, app                 string
		model, category, identity string
	}{
		{"model_breach_thennow.json", "darktrace", "Anomalous Connection::Multiple Connections to New External TCP Port", "Suspicious",
			"mb:41873:1716803100000:Anomalous Connection::Multiple Connections to New External TCP Port"},
		{"model_breach_flat.json", "darktrace", "Compromise::Watched Domain", "Critical", "mb:17:1687774142000:Compromise::Watched Domain"},
		{"model_breach_antigena.json", "darktrace", "Antigena::Network::Insider Threat::Antigena Large Data Volume Outbound Block", "Suspicious",
			"mb:52290:1733813389000:Antigena::Network::Insider Threat::Antigena Large Data Volume Outbound Block"},
		{"model_breach_informational.json", "darktrace", "System::Probe Traffic Loss", "Informational", "mb:36586:1700634482000:System::Probe Traffic Loss"},
		{"model_breach_no_score.json", "darktrace", "Device::Suspicious SMB Activity", "Suspicious", "mb:902211:1704067200000:Device::Suspicious SMB Activity"},
		{"test_alert.json", "darktrace", "Unrestricted Test Model", "", "mb:123:1722828886317:Unrestricted Test Model"},
		{"ai_analyst.json", "darktrace", "", "critical", "aia:7d3f0c52-8a41-4a7e-9b57-0f3a2c1d9e01:g7d3f0c52-8a41-4a7e-9b57-0f3a2c1d9e01"},
		{"ai_analyst_compliance.json", "darktrace", "", "compliance", "aia:0b5c2d1e-2222-4f00-8000-00000000c0de:"},
		{"system_status.json", "darktrace", "", "", ""},
		{"email.json", "darktrace", "", "", ""},
		{"antigena_action.json", "darktrace", "", "", ""},
		{"audit_login.json", "darktrace_audit", "", "", ""},
	} {
		payload, err := os.ReadFile(filepath.Join("..", "testdata", "payloads", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		var (
			c parser.Classifier
			a parser.Alert
			f parser.Fields
		)
		if err := c.ClassifyFields(payload, []byte(tc.app), &a, &f); err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if string(f.Model) != tc.model || string(f.Category) != tc.category || string(f.Identity) != tc.identity {
			t.Errorf("%s: model %q category %q identity %q\nwant %q %q %q", tc.file, f.Model, f.Category, f.Identity, tc.model, tc.category, tc.identity)
		}
	}
}

// Escaped strings are read unescaped, each into its own bytes.
func TestClassifyFieldsUnescapes(t *testing.T) {
	payload := []byte(`{"pbid":5,"time":1700000000000,"model":{"name":"Compliance::SMB\/Drive \u0057rite","category":"Compl\u0069ance"}}`)
	var (
		c parser.Classifier
		a parser.Alert
		f parser.Fields
	)
	if err := c.ClassifyFields(payload, nil, &a, &f); err != nil {
		t.Fatal(err)
	}
	if string(f.Model) != "Compliance::SMB/Drive Write" || string(f.Category) != "Compliance" {
		t.Fatalf("model %q category %q", f.Model, f.Category)
	}
}

func TestClassifyFieldsAllocatesNothing(t *testing.T) {
	payload, err := os.ReadFile(filepath.Join("..", "testdata", "payloads", "model_breach_thennow.json"))
	if err != nil {
		t.Fatal(err)
	}
	var (
		c parser.Classifier
		a parser.Alert
		f parser.Fields
	)
	_ = c.ClassifyFields(payload, nil, &a, &f)
	if n := alloctest.PerRun(200, func() { _ = c.ClassifyFields(payload, nil, &a, &f) }); n != 0 {
		t.Fatalf("%v allocations per ClassifyFields", n)
	}
}
