package config

import (
	"strings"
	"testing"
)

// TestMetricsListener: pprof is off unless asked for, and check warns about
// a metrics address that is not loopback only.
func TestMetricsListener(t *testing.T) {
	f := func(metrics string, wantPprof bool, wantWarn string) {
		t.Helper()
		doc := "inputs: [{name: in, protocol: tcp, address: \"127.0.0.1:1514\"}]\noutputs: [{name: out, type: file, path: \"-\"}]\n" + metrics
		c, warnings, err := Parse([]byte(doc), "")
		if err != nil {
			t.Fatalf("%s: %v", metrics, err)
		}
		if c.Metrics.Pprof != wantPprof {
			t.Errorf("%s: Pprof = %v", metrics, c.Metrics.Pprof)
		}
		var got []string
		for _, w := range warnings {
			got = append(got, w.Key+": "+w.Msg)
		}
		if all := strings.Join(got, "\n"); wantWarn == "" && all != "" || !strings.Contains(all, wantWarn) {
			t.Errorf("%s: warnings %q, want %q", metrics, all, wantWarn)
		}
	}
	const open = "metrics.address: is not a loopback address: /metrics, /healthz and /readyz are served without authentication"
	f("", false, "")
	f("metrics: {address: \"127.0.0.1:9514\"}", false, "")
	f("metrics: {address: \"127.0.0.2:0\", pprof: true}", true, "")
	f("metrics: {address: \"[::1]:9514\", pprof: false}", false, "")
	f("metrics: {address: \"localhost:9514\"}", false, "")
	f("metrics: {address: \":9514\"}", false, open)
	f("metrics: {address: \"0.0.0.0:9514\"}", false, open)
	f("metrics: {address: \"[::]:9514\"}", false, open)
	f("metrics: {address: \"10.1.2.3:9514\"}", false, open)
	f("metrics: {address: \"[::ffff:10.1.2.3]:9514\"}", false, open)
	f("metrics: {address: \"relay.example:9514\"}", false, open)
	f("metrics: {address: \"10.1.2.3:9514\", pprof: true}", true, "/debug/pprof (pprof: true) are served")
	f("metrics: {pprof: true}", true, "metrics.pprof: has no effect without metrics.address")
	if Default().Metrics.Pprof {
		t.Error("the embedded default serves pprof")
	}
}
