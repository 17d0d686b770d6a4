package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemRoots checks that system_roots: false reaches the Input and
// Output and the summary, and that the default keeps the system roots.
func TestSystemRoots(t *testing.T) {
	dir := testEnv(t)
	c, warnings, err := Load(filepath.Join(testdataDir, "system_roots.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Fatalf("warnings: %v", warnings)
	}
	if !c.Inputs[0].NoSystemRoots || !c.Outputs[0].NoSystemRoots || c.Outputs[1].NoSystemRoots {
		t.Fatalf("NoSystemRoots: input %v, outputs %v %v; want true, true false",
			c.Inputs[0].NoSystemRoots, c.Outputs[0].NoSystemRoots, c.Outputs[1].NoSystemRoots)
	}
	got := c.Summary()
	for _, want := range []string{
		"  cloud: darktrace-api polling https://example.cloud.darktrace.com every 1m; tokens set; ca_file " + dir + "/server.pem only (system roots excluded);",
		"  private: sekoia-http to https://intake.example.net (endpoint plain, compression gzip); intake_key set; ca_file " + dir + "/server.pem only (system roots excluded);",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "public: syslog to intake.sekoia.io:10514 over TLS (server name intake.sekoia.io), format original, framing octet-counting; ca_file") {
		t.Errorf("summary shows a ca_file for an output without one:\n%s", got)
	}
}
