package config

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	c := Default()
	want := &Config{
		Inputs: []Input{
			{Name: "tcp", Protocol: "tcp", Address: "127.0.0.1:1514", MaxMessageSize: 256 * KiB, MaxConnections: 1000, IdleTimeout: 0,
				HandshakeTimeout: 5 * time.Second},
			{Name: "udp", Protocol: "udp", Address: "127.0.0.1:1514", MaxMessageSize: 256 * KiB},
		},
		Outputs: []Output{{
			Name: "stdout", Type: "file", Path: "-", QueueSize: 64 * MiB,
			Batch: Batch{MaxEvents: 1000, MaxBytes: 4 * MiB, MaxWait: 0},
		}},
		Metrics:         Metrics{Address: "127.0.0.1:9514", UnreadyAfter: time.Minute, MaxSources: DefaultMaxSources},
		ShutdownTimeout: 10 * time.Second,
		MaxPartialBytes: 256 * MiB,
		DeadLetter:      DeadLetter{Dir: DefaultDeadLetterDir, MaxSize: GiB},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("Default() =\n%+v\nwant\n%+v", c, want)
	}
	c.Inputs[0].Name = "changed"
	if Default().Inputs[0].Name != "tcp" {
		t.Fatal("Default() returns shared state")
	}
}

// TestDefaultIgnoresEnvironment: the embedded default has no variables, and
// its parse must not depend on the process environment.
func TestDefaultIgnoresEnvironment(t *testing.T) {
	t.Setenv("HOME", "/nonexistent")
	if c := Default(); c.Outputs[0].Path != "-" {
		t.Fatalf("path %q", c.Outputs[0].Path)
	}
}

func TestFull(t *testing.T) {
	dir := testEnv(t)
	file := filepath.Join(testdataDir, "full.yaml")
	c, warnings, err := Load(file)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("Load: %v, warnings %v", err, warnings)
	}
	cert, key := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	batch := Batch{MaxEvents: 1000, MaxBytes: 4 * MiB, MaxWait: time.Second}
	stream := Batch{MaxEvents: 1000, MaxBytes: 4 * MiB} // syslog: no max_wait by default
	want := &Config{
		Inputs: []Input{
			{Name: "darktrace", Protocol: "tcp", Address: "0.0.0.0:1514", MaxMessageSize: 256 * KiB,
				Allow:          []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.20/32"), netip.MustParsePrefix("2001:db8::/32")},
				MaxConnections: 1000, IdleTimeout: 5 * time.Minute, HandshakeTimeout: 5 * time.Second},
			{Name: "darktrace-udp", Protocol: "udp", Address: "0.0.0.0:1514", MaxMessageSize: 64 * KiB, Strict: true, SilentAfter: time.Hour},
			{Name: "darktrace-tls", Protocol: "tls", Address: "[::]:6514", MaxMessageSize: MiB,
				TLS:           &InputTLS{CertFile: cert, KeyFile: key, ClientCAFile: cert},
				ProxyProtocol: true, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.5/32"), netip.MustParsePrefix("10.0.1.0/28")},
				MaxConnections: 50, MaxConnectionsPerSource: 10, IdleTimeout: 0, HandshakeTimeout: 2 * time.Second},
			{Name: "cloud", Protocol: "darktrace-api", MaxMessageSize: 256 * KiB, URL: "https://example.cloud.darktrace.com",
				PublicToken: "dt-public-token-0123456789", PrivateToken: "dt-private-token-0123456789", Interval: time.Minute,
				Overlap: 5 * time.Minute, Timeout: time.Minute},
		},
		Outputs: []Output{
			{Name: "sekoia", Type: "sekoia-http", URL: "https://intake.sekoia.io", IntakeKey: "sekoia-intake-key-0123456789",
				Endpoint: "batch", Compression: "gzip", Batch: batch, QueueSize: 64 * MiB, Timeout: 20 * time.Second},
			{Name: "sekoia-syslog", Type: "syslog", Address: "intake.sekoia.io:10514", TLS: true, ServerName: "intake.sekoia.io",
				CAFile: cert, Format: "sekoia", Framing: "octet-counting", IntakeKey: "sekoia-intake-key-0123456789",
				Batch: stream, QueueSize: 64 * MiB, Timeout: 30 * time.Second},
			{Name: "sekoia-relp", Type: "relp", Address: "relp.intake.sekoia.io:11514", TLS: true, ServerName: "relp.intake.sekoia.io",
				CAFile: cert, Format: "sekoia", IntakeKey: "sekoia-intake-key-0123456789", Window: 128, MaxMessageSize: MiB,
				Batch: Batch{MaxEvents: 512, MaxBytes: 4 * MiB}, QueueSize: 64 * MiB, Timeout: 30 * time.Second},
			{Name: "insightidr", Type: "syslog", Address: "collector.example.net:5514", TLS: false, Format: "original", Framing: "newline",
				Batch: stream, QueueSize: 64 * MiB, Timeout: 30 * time.Second},
			{Name: "archive-http", Type: "http", URL: "https://archive.example.net/ingest?stream=darktrace", Compression: "none",
				Headers:        map[string]string{"Authorization": "Bearer archive-token-0123456789", "X-Source": "dtrelay"},
				ClientCertFile: cert, ClientKeyFile: key,
				Batch: Batch{MaxEvents: 1000, MaxBytes: 4 * MiB, MaxWait: 250 * time.Millisecond}, QueueSize: 64 * MiB, Timeout: 30 * time.Second},
			{Name: "archive", Type: "file", Path: filepath.Join(testdataDir, "out.ndjson"),
				Batch: Batch{MaxEvents: 1000, MaxBytes: 4 * MiB}, QueueSize: 64 * MiB},
		},
		Routes: []Route{
			{Name: "route1", Match: Match{Kinds: []string{"model_breach", "ai_analyst"}, MinPriority: "medium", Inputs: []string{"darktrace", "cloud"}},
				Outputs: []string{"sekoia", "sekoia-syslog", "sekoia-relp"}},
			{Name: "route2", Match: Match{Inputs: []string{"darktrace-udp", "darktrace-tls"}}, Outputs: []string{"insightidr"}},
			{Name: "route3", Outputs: []string{"archive", "archive-http"}},
		},
		Spool:           &Spool{Dir: filepath.Join(dir, "spool"), MaxSize: 10 * GiB, FsyncInterval: time.Second, WhenFull: "drop_oldest"},
		Metrics:         Metrics{Address: "127.0.0.1:9514", UnreadyAfter: 30 * time.Second, MaxSources: 500},
		Heartbeat:       &Heartbeat{Interval: 5 * time.Minute, Outputs: []string{"sekoia"}},
		DeadLetter:      DeadLetter{Dir: filepath.Join(dir, "spool", "dead-letter"), MaxSize: GiB},
		ShutdownTimeout: 15 * time.Second,
		ShutdownDelay:   5 * time.Second,
		MaxPartialBytes: 512 * MiB,
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("Load(full.yaml) =\n%+v\nwant\n%+v", c, want)
	}
}

func TestMinimal(t *testing.T) {
	t.Setenv("SEKOIA_INTAKE_KEY", "minimal-intake-key-0123456789")
	c, warnings, err := Load(filepath.Join(testdataDir, "minimal.yaml"))
	if err != nil || len(warnings) > 0 {
		t.Fatalf("Load: %v, warnings %v", err, warnings)
	}
	want := &Config{
		Inputs: []Input{{Name: "darktrace", Protocol: "tcp", Address: "0.0.0.0:1514", MaxMessageSize: DefaultMaxMessageSize,
			MaxConnections: DefaultMaxConnections, IdleTimeout: DefaultIdleTimeout, HandshakeTimeout: DefaultHandshakeTimeout}},
		Outputs: []Output{{Name: "sekoia", Type: "sekoia-http", URL: DefaultSekoiaURL, IntakeKey: "minimal-intake-key-0123456789",
			Endpoint: "plain", Compression: "gzip", Batch: Batch{MaxEvents: 1000, MaxBytes: 4 * MiB, MaxWait: time.Second},
			QueueSize: 64 * MiB, Timeout: 30 * time.Second}},
		Metrics:         Metrics{UnreadyAfter: DefaultUnreadyAfter, MaxSources: DefaultMaxSources},
		ShutdownTimeout: 10 * time.Second,
		MaxPartialBytes: 256 * MiB,
		DeadLetter:      DeadLetter{Dir: DefaultDeadLetterDir, MaxSize: GiB},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("Load(minimal.yaml) =\n%+v\nwant\n%+v", c, want)
	}
}

func TestLoadErrors(t *testing.T) {
	_, _, err := Load(filepath.Join(t.TempDir(), "absent.yaml"))
	var errs *Errors
	if !errors.Is(err, fs.ErrNotExist) || errors.As(err, &errs) {
		t.Fatalf("missing file: %v (%T), want a wrapped fs.ErrNotExist", err, err)
	}
	if !strings.HasPrefix(err.Error(), "cannot read config: ") {
		t.Fatalf("error %q", err)
	}

	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, []byte("# "+strings.Repeat("x", maxFileSize)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ps := problems(t, func() error { _, _, err := Load(big); return err }())
	if len(ps) != 1 || !strings.Contains(ps[0].String(), "big.yaml: file larger than") {
		t.Fatalf("problems %v", ps)
	}
}

func TestProblemString(t *testing.T) {
	f := func(p Problem, want string) {
		t.Helper()
		if got := p.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", p, got, want)
		}
		if got := (Warning{File: p.File, Line: p.Line, Key: p.Key, Msg: p.Msg}).String(); got != want {
			t.Errorf("Warning String() = %q, want %q", got, want)
		}
	}
	f(Problem{File: "d.yaml", Line: 12, Key: "outputs[1].url", Msg: "bad"}, "d.yaml:12: outputs[1].url: bad")
	f(Problem{File: "d.yaml", Key: "inputs", Msg: "bad"}, "d.yaml: inputs: bad")
	f(Problem{File: "d.yaml", Line: 3, Msg: "bad"}, "d.yaml:3: bad")
	f(Problem{Line: 3, Key: "k", Msg: "bad"}, "line 3: k: bad")
	f(Problem{Msg: "bad"}, "bad")

	e := &Errors{Problems: []Problem{{File: "a", Line: 1, Msg: "one"}, {File: "a", Line: 2, Msg: "two"}}}
	if got := e.Error(); got != "a:1: one\na:2: two" {
		t.Errorf("Errors.Error() = %q", got)
	}
}
