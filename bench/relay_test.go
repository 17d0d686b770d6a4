package bench

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v3"
)

func testSpec(t *testing.T, input, output string) *RelaySpec {
	url := "https://127.0.0.1:10443"
	if output == OutputHTTP {
		url = "http://127.0.0.1:10080"
	}
	return &RelaySpec{Dir: t.TempDir(), Input: input, InputAddr: "127.0.0.1:15140", Output: output,
		SinkAddr: "127.0.0.1:10514", SinkURL: url, Cert: testCert(t), IntakeKey: IntakeKey, Conns: 4}
}

func TestDTRelayConfig(t *testing.T) {
	for _, tc := range []struct {
		input, output string
		want          map[string]any
	}{
		{"tcp", OutputSyslog, map[string]any{"type": "syslog", "address": "127.0.0.1:10514", "tls": false, "format": "sekoia", "framing": "octet-counting", "intake_key": IntakeKey}},
		{"tls", OutputTLSSyslog, map[string]any{"type": "syslog", "tls": true, "server_name": "localhost"}},
		{"udp", OutputHTTPS, map[string]any{"type": "sekoia-http", "url": "https://127.0.0.1:10443", "intake_key": IntakeKey, "compression": "none"}},
		{"tcp", OutputHTTP, map[string]any{"type": "http", "url": "http://127.0.0.1:10080/plain/batch", "compression": "none"}},
		{"tcp", OutputRELP, map[string]any{"type": "relp", "address": "127.0.0.1:10514", "tls": true, "server_name": "localhost",
			"format": "sekoia", "intake_key": IntakeKey}},
	} {
		spec := testSpec(t, tc.input, tc.output)
		var doc struct {
			Inputs  []map[string]any `yaml:"inputs"`
			Outputs []map[string]any `yaml:"outputs"`
		}
		conf := (&DTRelay{}).Config(spec)
		dec := yaml.NewDecoder(strings.NewReader(conf))
		dec.KnownFields(true)
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("%s config does not decode: %v\n%s", tc.output, err, conf)
		}
		in, out := doc.Inputs[0], doc.Outputs[0]
		if in["name"] != "bench" || in["protocol"] != tc.input || in["address"] != spec.InputAddr {
			t.Errorf("input %v", in)
		}
		if tc.input == "tls" {
			tlsIn, _ := in["tls"].(map[string]any)
			if tlsIn["cert_file"] != spec.Cert.CertFile || tlsIn["key_file"] != spec.Cert.KeyFile {
				t.Errorf("tls input %v", in["tls"])
			}
		}
		for k, v := range tc.want {
			if out[k] != v {
				t.Errorf("%s output %s = %v, want %v", tc.output, k, out[k], v)
			}
		}
		if tc.output != OutputSyslog && tc.output != OutputHTTP && out["ca_file"] != spec.Cert.CAFile() {
			t.Errorf("%s output ca_file %v", tc.output, out["ca_file"])
		}
		if tc.output == OutputHTTP || tc.output == OutputHTTPS {
			if b, _ := out["batch"].(map[string]any); b["max_events"] != 1000 || b["max_wait"] != "100ms" {
				t.Errorf("%s output batch %v, want 1000 events or 100ms", tc.output, out["batch"])
			}
		}
		if tc.output == OutputHTTP {
			if h, _ := out["headers"].(map[string]any); h["X-SEKOIAIO-INTAKE-KEY"] != IntakeKey || out["ca_file"] != nil {
				t.Errorf("http output headers %v ca_file %v, want the intake key header and no TLS", out["headers"], out["ca_file"])
			}
		}
	}
}

func TestPeerConfigs(t *testing.T) {
	rs := (&Rsyslog{}).Config(testSpec(t, "tcp", OutputTLSSyslog))
	for _, want := range []string{`load="imptcp"`, `queue.type="LinkedList" queue.size="10000" queue.dequeueBatchSize="1024"`,
		`action.resumeRetryCount="-1"`, `TCP_Framing="octet-counted"`, `StreamDriver="ossl"`, `remove.msgFirstSpace="on"`, `maxMessageSize="256k"`} {
		if !strings.Contains(rs, want) {
			t.Errorf("rsyslog config lacks %s:\n%s", want, rs)
		}
	}
	rs = (&Rsyslog{}).Config(testSpec(t, "tcp", OutputRELP))
	for _, want := range []string{`module(load="omrelp" tls.tlslib="openssl")`, `type="omrelp" target="127.0.0.1" port="10514" template="sekoia"`,
		`queue.type="LinkedList" queue.size="10000" queue.dequeueBatchSize="1024"`, `action.resumeRetryCount="-1"`,
		`tls="on"`, `tls.authMode="name" tls.permittedPeer=["localhost"]`} {
		if !strings.Contains(rs, want) {
			t.Errorf("rsyslog RELP config lacks %s:\n%s", want, rs)
		}
	}
	if !strings.Contains(rs, `windowSize="1024"`) {
		t.Errorf("rsyslog RELP config not at its fastest window, 1024:\n%s", rs)
	}
	w := testSpec(t, "tcp", OutputRELP)
	w.RELPWindow = 300
	if rs := (&Rsyslog{}).Config(w); !strings.Contains(rs, `windowSize="300"`) {
		t.Errorf("rsyslog RELP config ignores the spec's window:\n%s", rs)
	}
	if dt := (&DTRelay{}).Config(w); !strings.Contains(dt, "window: 300\n") || strings.Contains(dt, "max_events") {
		t.Errorf("dtrelay RELP config ignores the spec's window:\n%s", dt)
	}
	if rs := (&Rsyslog{}).Config(testSpec(t, "tls", OutputSyslog)); !strings.Contains(rs, `load="imtcp" streamDriver.name="ossl"`) {
		t.Errorf("rsyslog TLS input not imtcp+ossl:\n%s", rs)
	}
	ng := (&SyslogNG{}).Config(testSpec(t, "tcp", OutputHTTPS), "3.35")
	for _, want := range []string{"flags(flow-control)", "log-iw-size(100000)", "max-connections(8)", "batch-lines(1000)", "workers(2)",
		`url("https://127.0.0.1:10443/plain/batch")`, "X-SEKOIAIO-INTAKE-KEY: " + IntakeKey} {
		if !strings.Contains(ng, want) {
			t.Errorf("syslog-ng config lacks %s:\n%s", want, ng)
		}
	}
	ng = (&SyslogNG{}).Config(testSpec(t, "tcp", OutputHTTP), "3.35")
	if !strings.Contains(ng, `url("http://127.0.0.1:10080/plain/batch")`) || !strings.Contains(ng, "workers(2)") || strings.Contains(ng, "tls(") {
		t.Errorf("syslog-ng plain http config not http() at http:// without tls():\n%s", ng)
	}
	octet := testSpec(t, "tls", OutputSyslog)
	octet.Framing = FramingOctet
	if ng := (&SyslogNG{}).Config(octet, "3.35"); !strings.Contains(ng, `source s_in { syslog(`) {
		t.Errorf("syslog-ng octet-counted input not read with syslog():\n%s", ng)
	}
	lf5424 := testSpec(t, "tcp", OutputSyslog)
	lf5424.Header = Header5424
	if ng := (&SyslogNG{}).Config(lf5424, "3.35"); !strings.Contains(ng, `source s_in { network(`) || !strings.Contains(ng, "flags(syslog-protocol)") {
		t.Errorf("syslog-ng LF RFC 5424 input not network() with syslog-protocol:\n%s", ng)
	}
	ng = (&SyslogNG{}).Config(testSpec(t, "tcp", OutputTLSSyslog), "3.35")
	for _, want := range []string{`syslog("localhost"`, `transport("tls")`, `.SDATA.SEKOIA@53288.intake_key`, `set("LOG" value("MSGID"))`} {
		if !strings.Contains(ng, want) {
			t.Errorf("syslog-ng config lacks %s:\n%s", want, ng)
		}
	}
}

// TestPeerConfigsValidate has the installed peers check the generated
// configurations themselves (rsyslogd -N1, syslog-ng --syntax-only).
func TestPeerConfigsValidate(t *testing.T) {
	specs := [][2]string{{"tcp", OutputSyslog}, {"tcp", OutputTLSSyslog}, {"tls", OutputSyslog}, {"udp", OutputSyslog}, {"tcp", OutputHTTPS}, {"tcp", OutputHTTP}, {"tcp", OutputRELP}}
	t.Run("rsyslog", func(t *testing.T) {
		r := &Rsyslog{}
		if err := r.Available(); err != nil {
			t.Skipf("rsyslog not installed (bench/install-peers.sh): %v", err)
		}
		bin, _ := r.bin()
		for _, s := range specs {
			spec := testSpec(t, s[0], s[1])
			if r.Supports(spec) != nil {
				continue
			}
			conf := filepath.Join(spec.Dir, "rsyslog.conf")
			os.WriteFile(conf, []byte(r.Config(spec)), 0o600)
			if out, err := exec.Command(bin, "-N1", "-f", conf, "-M", r.modules(bin)).CombinedOutput(); err != nil {
				t.Errorf("%v: rsyslogd -N1: %v\n%s", s, err, out)
			}
		}
	})
	t.Run("syslog-ng", func(t *testing.T) {
		r := &SyslogNG{}
		if err := r.Available(); err != nil {
			t.Skipf("syslog-ng not installed (bench/install-peers.sh): %v", err)
		}
		bin, _ := r.bin()
		for i, s := range specs {
			spec := testSpec(t, s[0], s[1])
			if r.Supports(spec) != nil {
				continue
			}
			spec.Framing = Framing(i % 2) // both source drivers
			conf := filepath.Join(spec.Dir, "syslog-ng.conf")
			os.WriteFile(conf, []byte(r.Config(spec, r.configVersion(bin))), 0o600)
			if out, err := exec.Command(bin, "--syntax-only", "-f", conf).CombinedOutput(); err != nil {
				t.Errorf("%v: syslog-ng --syntax-only: %v\n%s", s, err, out)
			}
		}
	})
}

// TestPeersShortRun sends 3000 alerts through each installed peer and checks
// that nothing is lost and the relay's CPU and RSS were measured.
func TestPeersShortRun(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	cert := testCert(t)
	for _, r := range []Relay{&Rsyslog{}, &SyslogNG{}} {
		t.Run(r.Name(), func(t *testing.T) {
			if err := r.Available(); err != nil {
				t.Skipf("%s not installed (bench/install-peers.sh): %v", r.Name(), err)
			}
			sc := Scenario{Input: "tcp", Output: OutputSyslog, Size: 2000, Conns: 2, Count: 3000}
			res, err := RunOnce(context.Background(), r, sc, t.TempDir(), cert, RunOptions{DrainIdle: 2 * time.Second, Log: zerolog.Nop()})
			if err != nil {
				t.Fatal(err)
			}
			if res.Error != "" || res.Lost != 0 || res.Received != 3000 || res.Duplicates != 0 {
				t.Errorf("error %q lost %d received %d dups %d; first event %q", res.Error, res.Lost, res.Received, res.Duplicates, res.FirstEvent)
			}
			if res.RSSMB <= 0 || res.CPUSec <= 0 || res.CPUPerAlert <= 0 {
				t.Errorf("resources not measured: rss %v cpu %v per alert %v", res.RSSMB, res.CPUSec, res.CPUPerAlert)
			}
			if !strings.Contains(res.FirstEvent, `[SEKOIA@53288 intake_key="`+IntakeKey+`"] {"dtbench_seq":`) {
				t.Errorf("not Sekoia format: %q", res.FirstEvent)
			}
		})
	}
}

// TestPeersTLSShortRun runs each installed peer over TLS with the
// harness's certificates: as a TLS server (the TLS input), as a TLS client
// checking the sink's certificate by name (TLS syslog out) and over HTTPS
// (syslog-ng's http(); plain http too, the standard's "http, TCP" cell), so that a certificate or key a peer's TLS library
// refuses fails here and not in the middle of a compare run.
func TestPeersTLSShortRun(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	cert := testCert(t)
	tlsIn := Scenario{Input: "tls", Output: OutputSyslog, Size: 1500, Conns: 2, Count: 2000}
	tlsOut := Scenario{Input: "tcp", Output: OutputTLSSyslog, Size: 1500, Conns: 2, Count: 2000}
	https := Scenario{Input: "tcp", Output: OutputHTTPS, Size: 1500, Conns: 2, Count: 2000}
	plainHTTP := Scenario{Input: "tcp", Output: OutputHTTP, Size: 1500, Conns: 2, Count: 2000}
	relp := Scenario{Input: "tcp", Output: OutputRELP, Size: 1500, Conns: 2, Count: 2000}
	for _, tc := range []struct {
		r   Relay
		scs []Scenario
	}{
		{&Rsyslog{}, []Scenario{tlsIn, tlsOut, relp}}, // Debian's rsyslog has no omhttp
		{&SyslogNG{}, []Scenario{tlsIn, tlsOut, https, plainHTTP}},
	} {
		for _, sc := range tc.scs {
			r := tc.r
			t.Run(r.Name()+"/"+sc.Input+"-"+sc.Output, func(t *testing.T) {
				if err := r.Available(); err != nil {
					t.Skipf("%s not installed (bench/install-peers.sh): %v", r.Name(), err)
				}
				if err := r.Supports(&RelaySpec{Input: sc.Input, Output: sc.Output, Cert: cert}); err != nil {
					t.Fatalf("%s installed without the module this needs: %v", r.Name(), err)
				}
				res, err := RunOnce(context.Background(), r, sc, t.TempDir(), cert, RunOptions{DrainIdle: 2 * time.Second, Log: zerolog.Nop()})
				if err != nil {
					t.Fatal(err)
				}
				if res.Error != "" || res.Lost != 0 || res.Received != sc.Count || res.Duplicates != 0 {
					t.Errorf("error %q lost %d received %d dups %d; first event %q", res.Error, res.Lost, res.Received, res.Duplicates, res.FirstEvent)
				}
			})
		}
	}
}

func TestRelayLookup(t *testing.T) {
	if err := (&DTRelay{Bin: "/nonexistent/dtrelay"}).Available(); !errors.Is(err, ErrRelayMissing) {
		t.Errorf("missing dtrelay: %v", err)
	}
	if err := (&SyslogNG{Bin: t.TempDir()}).Available(); !errors.Is(err, ErrRelayMissing) {
		t.Errorf("directory as syslog-ng: %v", err)
	}
	if _, err := NewRelays([]string{"dtrelay", "nope"}, RelayOptions{}); err == nil {
		t.Error("unknown relay accepted")
	}
	rs, err := NewRelays([]string{"dtrelay", "rsyslog", "syslog-ng", "copy"}, RelayOptions{})
	if err != nil || len(rs) != 4 {
		t.Fatalf("NewRelays: %v %v", rs, err)
	}
	if !hasModule("Available-Modules: afsocket,http,json-plugin\n", "http") || hasModule("Available-Modules: afsocket,httpx\n", "http") {
		t.Error("hasModule")
	}
}
