package relay

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/config"
)

// TestProxyTrustFromConfig runs issue 9's reproduction through the
// configuration: the same PROXY header from 127.0.0.1, claiming 10.1.2.3,
// is refused by an input whose trusted_proxies does not hold 127.0.0.1 and
// forwarded by one whose trusted_proxies does.
func TestProxyTrustFromConfig(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.ndjson")
	cfg, _, err := config.Parse([]byte(fmt.Sprintf(`
inputs:
  - {name: lb, protocol: tcp, address: "127.0.0.1:0", allow: [10.0.0.0/8], proxy_protocol: true, trusted_proxies: [192.0.2.0/24]}
  - {name: trusted, protocol: tcp, address: "127.0.0.1:0", allow: [10.0.0.0/8], proxy_protocol: true, trusted_proxies: [127.0.0.1], handshake_timeout: 1s}
outputs: [{name: out, type: file, path: %q}]
max_partial_bytes: 1MiB
`, out)), "trust.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Start(cfg, metrics.NewSet(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.Stop(ctx)
	}()
	send := func(addr net.Addr, pbid int) {
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		port := addr.(*net.TCPAddr).Port
		fmt.Fprintf(c, "PROXY TCP4 10.1.2.3 127.0.0.1 5555 %d\r\n<165>Aug  5 03:34:46 dt darktrace {\"pbid\":%d}\n", port, pbid)
	}
	send(r.Addrs()[0], 1)
	send(r.Addrs()[1], 2)
	waitText(t, r, `dtrelay_input_rejected_connections_total{input="lb",reason="untrusted_proxy"} 1`)
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(out)
		if strings.Contains(string(b), `{"pbid":2}`) {
			if strings.Contains(string(b), `"pbid":1`) {
				t.Fatalf("the untrusted proxy's alert was forwarded: %s", b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the trusted proxy's alert did not arrive: %q", b)
		}
		time.Sleep(5 * time.Millisecond)
	}
	waitText(t, r, "dtrelay_partial_frame_bytes 0")
}

func waitText(t *testing.T, r *Relay, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(promText(r), want) {
		if time.Now().After(deadline) {
			t.Fatalf("metrics lack %q", want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
