package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSourcesAndHeartbeatKeys: silent_after (every protocol),
// metrics.max_sources and heartbeat decode, default and are checked.
func TestSourcesAndHeartbeatKeys(t *testing.T) {
	c, _, err := Parse([]byte(`
inputs:
  - {name: a, protocol: tcp, address: "127.0.0.1:0", silent_after: 1h}
  - {name: b, protocol: darktrace-api, url: "https://dt.example", public_token: p, private_token: q, silent_after: 30m, state_dir: /tmp}
outputs: [{name: out, type: file, path: "-"}]
metrics: {max_sources: 50}
heartbeat: {outputs: [out]}
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Inputs[0].SilentAfter != time.Hour || c.Inputs[1].SilentAfter != 30*time.Minute || c.Metrics.MaxSources != 50 {
		t.Errorf("silent_after %v %v, max_sources %d", c.Inputs[0].SilentAfter, c.Inputs[1].SilentAfter, c.Metrics.MaxSources)
	}
	if h := c.Heartbeat; h == nil || h.Interval != DefaultHeartbeatInterval || !slices.Equal(h.Outputs, []string{"out"}) {
		t.Errorf("heartbeat = %+v, want the default interval and [out]", h)
	}

	c, _, err = Parse([]byte(`
inputs: [{name: a, protocol: udp, address: "127.0.0.1:0"}]
outputs: [{name: out, type: file, path: "-"}]
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Inputs[0].SilentAfter != 0 || c.Metrics.MaxSources != DefaultMaxSources || c.Heartbeat != nil {
		t.Errorf("defaults: silent_after %v, max_sources %d, heartbeat %+v", c.Inputs[0].SilentAfter, c.Metrics.MaxSources, c.Heartbeat)
	}

	_, _, err = Parse([]byte(`
inputs: [{name: a, protocol: tcp, address: "127.0.0.1:0", silent_after: -1s}]
outputs: [{name: out, type: file, path: "-"}]
metrics: {max_sources: 0}
heartbeat: {interval: 100ms, outputs: [out, nope]}
`), "t.yaml")
	for _, want := range []string{"inputs[0].silent_after: must not be negative", "metrics.max_sources: must be at least 1",
		"heartbeat.interval: must be at least 1s", `heartbeat.outputs[1]: no output is named "nope"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
}
