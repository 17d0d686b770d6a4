package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/config"
)

// TestOnlineChecksBounded: an intake that accepts the TCP connection and
// never answers the TLS handshake, and a RELP intake that never answers
// open, fail within the per-check timeout, concurrently.
func TestOnlineChecksBounded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, silent, until the test ends
		}
	}()
	cfg := &config.Config{Outputs: []config.Output{
		{Name: "tls-silent", Type: "syslog", Address: ln.Addr().String(), TLS: true, Format: "sekoia", IntakeKey: "k", Framing: "octet-counting"},
		{Name: "relp-silent", Type: "relp", Address: ln.Addr().String(), Format: "sekoia", IntakeKey: "k"},
	}}
	start := time.Now()
	lines, failed := onlineChecks(context.Background(), cfg, 300*time.Millisecond)
	took := time.Since(start)
	if failed != 2 {
		t.Fatalf("%d failed, want 2:\n%s", failed, strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		if !strings.Contains(l, "FAIL") {
			t.Errorf("line %q", l)
		}
	}
	// Not a speed assertion: 300ms checks must not take the default 30s.
	if took > 10*time.Second {
		t.Errorf("took %v with a 300ms bound per check", took)
	}
	t.Logf("%v:\n%s", took, strings.Join(lines, "\n"))
}
