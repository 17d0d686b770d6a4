package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestSummaryDefault(t *testing.T) {
	want := `inputs (2):
  tcp: tcp on 127.0.0.1:1514; max_message_size 256KiB; max_connections 1000; idle_timeout 5m; handshake_timeout 5s
  udp: udp on 127.0.0.1:1514; max_message_size 256KiB
max_partial_bytes: 256MiB held in partial frames across all tcp/tls connections
outputs (1):
  stdout: file standard output; batch 1000 events / 4MiB / no wait; queue 64MiB
routes: none, every event goes to every output
spool: none
metrics: http://127.0.0.1:9514/metrics
shutdown_timeout: 10s
`
	if got := Default().Summary(); got != want {
		t.Fatalf("Summary() =\n%s\nwant\n%s", got, want)
	}
}

func TestSummaryFull(t *testing.T) {
	dir := testEnv(t)
	c, _, err := Load(filepath.Join(testdataDir, "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Summary()
	for _, want := range []string{
		"inputs (4):\n",
		"  darktrace: tcp on 0.0.0.0:1514; max_message_size 256KiB; max_connections 1000; idle_timeout 5m; handshake_timeout 5s; allow 10.0.0.0/8, 192.168.1.20/32, 2001:db8::/32\n",
		"  darktrace-udp: udp on 0.0.0.0:1514; max_message_size 64KiB; strict RFC 5424\n",
		"  darktrace-tls: tls on [::]:6514; max_message_size 1MiB; max_connections 50; max_connections_per_source 10; idle_timeout none; handshake_timeout 2s; cert " + dir + "/server.pem, client certificates required (CA " + dir + "/server.pem); PROXY protocol from 10.0.0.5/32, 10.0.1.0/28\n",
		"max_partial_bytes: 512MiB held in partial frames across all tcp/tls connections\n",
		"  cloud: darktrace-api polling https://example.cloud.darktrace.com every 1m; tokens set; overlap 5m; timeout 1m; checkpoint in " + dir + "/spool; max_message_size 256KiB\n",
		"outputs (6):\n",
		"  sekoia: sekoia-http to https://intake.sekoia.io (endpoint batch, compression gzip); intake_key set; batch 1000 events / 4MiB / 1s; queue 64MiB; timeout 20s\n",
		"  sekoia-syslog: syslog to intake.sekoia.io:10514 over TLS (server name intake.sekoia.io), format sekoia, framing octet-counting; intake_key set; ca_file " + dir + "/server.pem;",
		"  sekoia-relp: relp to relp.intake.sekoia.io:11514 over TLS (server name relp.intake.sekoia.io), format sekoia, window 128, messages up to 1MiB; intake_key set;",
		"  insightidr: syslog to collector.example.net:5514 over plain TCP, format original, framing newline; batch",
		"  archive-http: http to https://archive.example.net/ingest?... (compression none); headers Authorization, X-Source (values hidden); client certificate " + dir + "/server.pem; batch 1000 events / 4MiB / 250ms;",
		"  archive: file ../testdata/config/out.ndjson; batch 1000 events / 4MiB / no wait; queue 64MiB\n",
		"routes (3, mode all):\n",
		"  route1: kinds model_breach, ai_analyst; priority >= medium; from darktrace, cloud -> sekoia, sekoia-syslog, sekoia-relp\n",
		"  route2: from darktrace-udp, darktrace-tls -> insightidr\n",
		"  route3: every event -> archive, archive-http\n",
		"spool: " + dir + "/spool, max 10GiB, fsync every 1s, when full: drop_oldest\n",
		"metrics: http://127.0.0.1:9514/metrics\n",
		"shutdown_timeout: 15s\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	for _, secret := range []string{"sekoia-intake-key", "dt-public-token", "dt-private-token", "archive-token", "stream=darktrace"} {
		if strings.Contains(got, secret) {
			t.Errorf("summary shows %q", secret)
		}
	}
}
