package config

import (
	"strings"
	"testing"
	"time"
)

// TestPollerKeys: state_dir, overlap and timeout of darktrace-api inputs
// (issue 13 items 2, 4, 7): defaults, where the checkpoint lives, limits.
func TestPollerKeys(t *testing.T) {
	const base = `
outputs: [{name: out, type: file, path: "-"}]
inputs:
  - {name: cloud, protocol: darktrace-api, url: "https://dt.example", public_token: p, private_token: q%s}
`
	parse := func(extra, spool string) (*Config, error) {
		c, _, err := Parse([]byte(strings.Replace(base, "%s", extra, 1)+spool), "t.yaml")
		return c, err
	}
	c, err := parse("", "")
	if err != nil {
		t.Fatal(err)
	}
	in := &c.Inputs[0]
	if in.Overlap != 5*time.Minute || in.Timeout != time.Minute || c.PollerStateDir(in) != DefaultStateDir {
		t.Errorf("defaults: overlap %s timeout %s state %s", in.Overlap, in.Timeout, c.PollerStateDir(in))
	}
	dir := t.TempDir()
	if c, err = parse("", "spool: {dir: "+dir+"}\n"); err != nil {
		t.Fatal(err)
	}
	if got := c.PollerStateDir(&c.Inputs[0]); got != dir {
		t.Errorf("with a spool the checkpoint lives in %s, want the spool's %s", got, dir)
	}
	if !strings.Contains(c.Summary(), "checkpoint in "+dir) {
		t.Errorf("summary does not say where the checkpoint lives:\n%s", c.Summary())
	}
	if c, err = parse(", state_dir: /srv/state, overlap: 12m, timeout: 5s", "spool: {dir: "+dir+"}\n"); err != nil {
		t.Fatal(err)
	}
	if in := &c.Inputs[0]; c.PollerStateDir(in) != "/srv/state" || in.Overlap != 12*time.Minute || in.Timeout != 5*time.Second {
		t.Errorf("set: state %s overlap %s timeout %s", c.PollerStateDir(in), in.Overlap, in.Timeout)
	}
	for extra, key := range map[string]string{", overlap: 0s": "overlap", ", overlap: 2h": "overlap", ", timeout: 10ms": "timeout"} {
		_, err := parse(extra, "")
		ps := problems(t, err)
		if len(ps) != 1 || !strings.Contains(ps[0].String(), "inputs[0]."+key) {
			t.Errorf("%s: problems %v, want one about %s", extra, ps, key)
		}
	}
	_, _, err = Parse([]byte(`
inputs: [{name: tcp, protocol: tcp, address: ":1514", overlap: 5m}]
outputs: [{name: out, type: file, path: "-"}]
`), "t.yaml")
	if ps := problems(t, err); len(ps) != 1 || !strings.Contains(ps[0].String(), "overlap") {
		t.Errorf("overlap on a tcp input: %v", ps)
	}
}
