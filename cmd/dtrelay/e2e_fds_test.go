package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// TestCheckWarnsWhenDescriptorsCannotHoldTheConnections: under ulimit -n
// 256, an input allowed 1000 connections would run out of descriptors
// before its cap (accept fails, real senders are refused), so check warns
// and names LimitNOFILE; an input capped at 100 fits and gets no warning.
func TestCheckWarnsWhenDescriptorsCannotHoldTheConnections(t *testing.T) {
	dir := t.TempDir()
	check := func(maxConns string) string {
		cfg := writeFile(t, dir, "fds"+maxConns+".yaml", `
inputs: [{name: in, protocol: tcp, address: "127.0.0.1:1514", max_connections: `+maxConns+`}]
outputs: [{name: out, type: file, path: "-"}]
`)
		var o, e bytes.Buffer
		cmd := exec.Command("sh", "-c", `ulimit -n 256 && exec "$0" "$@"`, binPath, "check", "-c", cfg)
		cmd.Stdout, cmd.Stderr = &o, &e
		if err := cmd.Run(); err != nil {
			t.Fatalf("check with max_connections %s: %v\n%s", maxConns, err, e.String())
		}
		return e.String()
	}
	if out := check("1000"); !strings.Contains(out, "RLIMIT_NOFILE is 256") || !strings.Contains(out, "LimitNOFILE=1114") {
		t.Errorf("max_connections 1000 under ulimit -n 256: no descriptor warning in\n%s", out)
	}
	if out := check("100"); strings.Contains(out, "RLIMIT_NOFILE") {
		t.Errorf("max_connections 100 under ulimit -n 256: unexpected warning\n%s", out)
	}
}
