package config

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// minimalDoc is a valid configuration the cases below add to.
const minimalDoc = `inputs:
  - {name: in, protocol: tcp, address: "127.0.0.1:1514"}
outputs:
  - {name: out, type: file, path: "-"}
`

// lines returns the problems of parsing doc as "LINE: KEY: msg", and the
// warnings the same way, both in order.
func lines(t *testing.T, doc string) (ps, ws []string) {
	t.Helper()
	c, warnings, err := parse([]byte(doc), "t.yaml", func(string) (string, bool) { return "", false })
	if (c == nil) == (err == nil) {
		t.Fatalf("config %v with error %v", c, err)
	}
	for _, p := range problems(t, err) {
		if p.File != "t.yaml" {
			t.Errorf("problem names file %q", p.File)
		}
		ps = append(ps, fmt.Sprintf("%d: %s: %s", p.Line, p.Key, p.Msg))
	}
	for _, w := range warnings {
		ws = append(ws, fmt.Sprintf("%d: %s: %s", w.Line, w.Key, w.Msg))
	}
	return ps, ws
}

// TestProblems: each case is a document and every problem it must give,
// exactly, in order.
func TestProblems(t *testing.T) {
	f := func(doc string, want ...string) {
		t.Helper()
		got, _ := lines(t, doc)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("document:\n%s\nproblems:\n  %s\nwant:\n  %s", doc, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	}
	f(minimalDoc)
	f(minimalDoc+"bogus: 1\n", "5: bogus: unknown key")
	f(minimalDoc+"output:\n  - {name: x}\n", "5: output: unknown key (did you mean outputs?)")
	f("inputs:\n  - name: in\n    protocol: tcp\n    address: 127.0.0.1:1514\n    max_mesage_size: 1MiB\n"+
		"outputs:\n  - name: out\n    type: file\n    path: \"-\"\n    batch:\n      max_evnts: 10\n",
		"5: inputs[0].max_mesage_size: unknown key (did you mean max_message_size?)",
		"11: outputs[0].batch.max_evnts: unknown key (did you mean max_events?)")
	f(minimalDoc+"metrics: {address: 9514}\n", `5: metrics.address: must be host:port, e.g. 0.0.0.0:1514 or [::1]:1514, got "9514"`)
	f(minimalDoc + "metrics: {address: \"[::1]:9514\"}\nshutdown_timeout: 0s\n")
	f(minimalDoc+"shutdown_timeout: -5s\n", `5: shutdown_timeout: must not be negative, got "-5s"`)
	f(minimalDoc+"shutdown_timeout: 10\n", `5: shutdown_timeout: want a duration such as 500ms, 5s or 1m30s, got "10"`)
	f(minimalDoc+"inputs: []\n", "5: inputs: duplicate key (first at line 1)")
	f("[1, 2]\n", "1: : must be a mapping (key: value), not a list")
	f("just text\n", "1: : must be a mapping (key: value), not a single value")
	f("inputs: [\n", "1: : invalid YAML: did not find expected node content")
	f("a:\n\tb: 1\n", "2: : invalid YAML: found character that cannot start any token")
	f(minimalDoc+"---\ninputs: []\n", "5: : invalid YAML: only one document is allowed (found a second one)")
	f("inputs:\n", "1: inputs: at least one input is required", "1: outputs: at least one output is required")
	f("inputs:\n  - {name: a, protocol: udp, address: \":1514\"}\n  - {name: b, protocol: udp, address: \"127.0.0.1:1514\"}\n"+
		"  - {name: c, protocol: tcp, address: \"127.0.0.1:1514\"}\n  - {name: d, protocol: tls, address: \"[::1]:1514\", tls: {cert_file: x, key_file: y}}\n"+
		"  - {name: e, protocol: tcp, address: \"[::]:1514\"}\n  - {name: f, protocol: tcp, address: \"127.0.0.1:0\"}\n  - {name: g, protocol: tcp, address: \"127.0.0.1:0\"}\n"+
		"outputs: [{name: out, type: file, path: \"-\"}]\n",
		`3: inputs[1].address: "127.0.0.1:1514" conflicts with inputs[0].address (udp on the same port)`,
		`5: inputs[3].tls.cert_file: cannot load certificate and key: stat x: no such file or directory`,
		`6: inputs[4].address: "[::]:1514" conflicts with inputs[2].address (tcp on the same port)`)
	f(minimalDoc + "routes:\n  - match: {kinds: [test, audit], min_priority: none, inputs: [in]}\n    outputs: [out]\n")
	f(minimalDoc+"routes:\n  - match: {kinds: [breach], min_priority: critical, inputs: [nope, \"\", ~]}\n    outputs: [out, out, gone]\n",
		`6: routes[0].match.inputs[1]: must not be empty`, // found while decoding, before the checks
		`6: routes[0].match.inputs[2]: must not be empty`,
		`6: routes[0].match.kinds[0]: unknown kind "breach" (want unknown, model_breach, ai_analyst, antigena, system_status, email, audit, test or heartbeat)`,
		`6: routes[0].match.min_priority: unknown priority "critical" (want none, low, medium or high)`,
		`6: routes[0].match.inputs[0]: no input is named "nope"`,
		`7: routes[0].outputs[1]: output "out" is listed twice`,
		`7: routes[0].outputs[2]: no output is named "gone"`)
	f(minimalDoc+"routes:\n  - match: {}\n", "6: routes[0].outputs: at least one output is required (or drop: true to drop what the route matches)")
	// A key the protocol or type does not use.
	f("inputs:\n  - name: in\n    protocol: udp\n    address: 127.0.0.1:1514\n    proxy_protocol: true\n    idle_timeout: 1m\n    url: https://x\n"+
		"outputs:\n  - name: out\n    type: file\n    path: \"-\"\n    timeout: 5s\n    tls: true\n",
		"5: inputs[0].proxy_protocol: not used with protocol udp; remove it",
		"6: inputs[0].idle_timeout: not used with protocol udp; remove it",
		"7: inputs[0].url: not used with protocol udp; remove it",
		"12: outputs[0].timeout: not used with type file; remove it",
		"13: outputs[0].tls: not used with type file; remove it")
	f("inputs:\n  - {name: in, protocol: tcp, address: \"127.0.0.1:1514\", tls: {cert_file: a, key_file: b}}\n"+
		"outputs:\n  - {name: out, type: sekoia-http, intake_key: 0123456789abcdef, format: sekoia}\n",
		"2: inputs[0].tls: not used with protocol tcp; remove it",
		"4: outputs[0].format: not used with type sekoia-http; remove it")
	// Names.
	f("inputs:\n  - {protocol: tcp, address: \"127.0.0.1:1514\"}\n  - {name: -x, protocol: tcp, address: \"127.0.0.1:1515\"}\n"+
		"outputs:\n  - {name: \"\", type: file, path: \"-\"}\n  - {name: "+strings.Repeat("n", 65)+", type: file, path: /dev/null}\n",
		"2: inputs[0].name: is required",
		`3: inputs[1].name: "-x": use letters, digits, '_', '.' and '-' (at most 64, starting with a letter or digit)`,
		"5: outputs[0].name: is required",
		`6: outputs[1].name: "`+strings.Repeat("n", 65)+`": use letters, digits, '_', '.' and '-' (at most 64, starting with a letter or digit)`)
	// Required keys, on the line of the item that lacks them.
	f("inputs:\n  - name: in\n  - {name: in2, protocol: tcp}\noutputs:\n  - name: out\n  - {name: s, type: syslog, format: original, tls: false}\n",
		"2: inputs[0].protocol: is required (tcp, udp, tls or darktrace-api)",
		"3: inputs[1].address: is required for protocol tcp",
		"5: outputs[0].type: is required (sekoia-http, syslog, relp, http or file)",
		"6: outputs[1].address: is required for type syslog (host:port, e.g. intake.sekoia.io:10514)")
	// URLs.
	f("inputs: [{name: in, protocol: tcp, address: \"127.0.0.1:1514\"}]\noutputs:\n"+
		"  - {name: a, type: http, url: \"https://user:pw@siem.example\"}\n"+
		"  - {name: b, type: http, url: \"https://siem.example:99999/x\"}\n"+
		"  - {name: c, type: http, url: \"https:///nohost\"}\n"+
		"  - {name: d, type: http, url: \"https://siem example/x\"}\n"+
		"  - {name: e, type: sekoia-http, url: \"intake.sekoia.io\", intake_key: 0123456789abcdef}\n",
		"3: outputs[0].url: must not hold credentials (user:password@); use intake_key, tokens or headers",
		`4: outputs[1].url: port must be a number from 1 to 65535, got "https://siem.example:99999/x"`,
		`5: outputs[2].url: has no valid host, got "https:///nohost"`,
		`6: outputs[3].url: is not a valid URL: invalid character " " in host name`,
		`7: outputs[4].url: must be an https:// URL, got "intake.sekoia.io"`)
	f(minimalDoc+"  - {name: o2, type: file, path: \"-\"}\n  - {name: o3, type: file, path: /tmp/../tmp/dtrelay-parse-test-unused}\n  - {name: o4, type: file, path: /tmp/dtrelay-parse-test-unused}\n",
		`5: outputs[1].path: "-" is written by outputs[0].path already; two outputs cannot share a file`,
		`7: outputs[3].path: "/tmp/dtrelay-parse-test-unused" is written by outputs[2].path already; two outputs cannot share a file`)
	// A problem on a key hides the checks of what it would have set.
	f("inputs:\n  - {name: [x], protocol: tcp, address: \"127.0.0.1:1514\"}\n  - {name: ok, protocol: [tcp], address: 99}\noutputs: [{name: out, type: file, path: \"-\"}]\n",
		"2: inputs[0].name: must be a single value, not a list",
		"3: inputs[1].protocol: must be a single value, not a list")
}

// TestEveryProblemReported: problems in every section come back together,
// in line order, and each names its file, line and key.
func TestEveryProblemReported(t *testing.T) {
	doc := `inputs:
  - name: in
    protocol: tcp
    address: 127.0.0.1:1514
    max_message_size: 512B
    idel_timeout: 1m
outputs:
  - name: out
    type: sekoia-http
    batch: {max_events: -1}
routes:
  - outputs: [nowhere]
spool:
  dir: /tmp/spool
  when_full: panic
metrics: {address: "localhost:http"}
shutdown_timeout: soon
`
	got, _ := lines(t, doc)
	want := []string{
		"5: inputs[0].max_message_size: must be from 1KiB to 16MiB, got 512",
		"6: inputs[0].idel_timeout: unknown key (did you mean idle_timeout?)",
		"8: outputs[0].intake_key: is required for type sekoia-http",
		`10: outputs[0].batch.max_events: must not be negative, got -1`,
		`12: routes[0].outputs[0]: no output is named "nowhere"`,
		`15: spool.when_full: unknown when_full "panic" (want block or drop_oldest)`,
		`16: metrics.address: port must be a number from 0 to 65535, got "localhost:http"`,
		`17: shutdown_timeout: want a duration such as 500ms, 5s or 1m30s, got "soon"`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestOutputDefaults: what each output type gets when only its required
// keys are given.
func TestOutputDefaults(t *testing.T) {
	f := func(output string, want Output) {
		t.Helper()
		doc := "inputs: [{name: in, protocol: tcp, address: \"127.0.0.1:1514\"}]\noutputs:\n  - " + output + "\n"
		c, _, err := Parse([]byte(doc), "")
		if err != nil {
			t.Fatalf("%s: %v", output, err)
		}
		if got := c.Outputs[0]; !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", output, got, want)
		}
	}
	net := Batch{MaxEvents: 1000, MaxBytes: 4 * MiB, MaxWait: time.Second}
	stream := Batch{MaxEvents: 1000, MaxBytes: 4 * MiB} // syslog: no max_wait by default
	key := "0123456789abcdef0123"
	f("{name: s, type: sekoia-http, intake_key: "+key+"}", Output{Name: "s", Type: "sekoia-http", URL: "https://intake.sekoia.io",
		IntakeKey: key, Endpoint: "plain", Compression: "gzip", Batch: net, QueueSize: 64 * MiB, Timeout: 30 * time.Second})
	f("{name: s, type: sekoia-http, intake_key: "+key+", url: \"\", endpoint: \"\"}", Output{Name: "s", Type: "sekoia-http", URL: "https://intake.sekoia.io",
		IntakeKey: key, Endpoint: "plain", Compression: "gzip", Batch: net, QueueSize: 64 * MiB, Timeout: 30 * time.Second})
	f("{name: h, type: http, url: \"https://siem.example/in\"}", Output{Name: "h", Type: "http", URL: "https://siem.example/in",
		Compression: "gzip", Batch: net, QueueSize: 64 * MiB, Timeout: 30 * time.Second})
	f("{name: y, type: syslog, address: \"intake.sekoia.io:10514\", intake_key: "+key+"}", Output{Name: "y", Type: "syslog",
		Address: "intake.sekoia.io:10514", TLS: true, ServerName: "intake.sekoia.io", Format: "sekoia", Framing: "octet-counting",
		IntakeKey: key, Batch: stream, QueueSize: 64 * MiB, Timeout: 30 * time.Second})
	f("{name: y, type: syslog, address: \"10.0.0.5:10514\", server_name: intake.sekoia.io, intake_key: "+key+"}", Output{Name: "y", Type: "syslog",
		Address: "10.0.0.5:10514", TLS: true, ServerName: "intake.sekoia.io", Format: "sekoia", Framing: "octet-counting",
		IntakeKey: key, Batch: stream, QueueSize: 64 * MiB, Timeout: 30 * time.Second})
	f("{name: r, type: syslog, address: \"collector:5514\", tls: false, format: original, framing: newline}", Output{Name: "r", Type: "syslog",
		Address: "collector:5514", Format: "original", Framing: "newline", Batch: stream, QueueSize: 64 * MiB, Timeout: 30 * time.Second})
	f("{name: s, type: relp, address: \"relp.intake.sekoia.io:11514\", intake_key: "+key+"}", Output{Name: "s", Type: "relp",
		Address: "relp.intake.sekoia.io:11514", TLS: true, ServerName: "relp.intake.sekoia.io", Format: "sekoia",
		Window: 1024, MaxMessageSize: 256 * KiB, IntakeKey: key, Batch: Batch{MaxEvents: 4096, MaxBytes: 4 * MiB}, QueueSize: 64 * MiB, Timeout: 30 * time.Second})
	f("{name: r, type: relp, address: \"10.0.0.5:2514\", tls: false, format: original, window: 16, max_message_size: 1MiB}", Output{Name: "r", Type: "relp",
		Address: "10.0.0.5:2514", Format: "original", Window: 16, MaxMessageSize: MiB, Batch: Batch{MaxEvents: 64, MaxBytes: 4 * MiB}, QueueSize: 64 * MiB, Timeout: 30 * time.Second})
	f("{name: f, type: file, path: \"-\"}", Output{Name: "f", Type: "file", Path: "-",
		Batch: Batch{MaxEvents: 1000, MaxBytes: 4 * MiB}, QueueSize: 64 * MiB})
	f("{name: f, type: file, path: \"-\", batch: {max_wait: 2s, max_events: 1, max_bytes: 2KB}, queue_size: 1GiB}", Output{Name: "f", Type: "file", Path: "-",
		Batch: Batch{MaxEvents: 1, MaxBytes: 2000, MaxWait: 2 * time.Second}, QueueSize: GiB})
	f("{name: h, type: http, url: \"https://siem.example/in\", batch: {max_wait: 0s}, timeout: 1m}", Output{Name: "h", Type: "http", URL: "https://siem.example/in",
		Compression: "gzip", Batch: Batch{MaxEvents: 1000, MaxBytes: 4 * MiB}, QueueSize: 64 * MiB, Timeout: time.Minute})
	// A null value keeps the default.
	f("{name: f, type: file, path: \"-\", batch: {max_events: ~, max_wait: null}, queue_size: }", Output{Name: "f", Type: "file", Path: "-",
		Batch: Batch{MaxEvents: 1000, MaxBytes: 4 * MiB}, QueueSize: 64 * MiB})
}

func TestInputAndSpoolDefaults(t *testing.T) {
	doc := `inputs:
  - {name: u, protocol: udp, address: ":1514"}
  - {name: t, protocol: tls, address: ":6514", tls: {cert_file: "${D}/server.pem", key_file: "${D}/server-key.pem"}, max_message_size: 1KiB}
  - {name: c, protocol: darktrace-api, url: "https://dt.example", public_token: p, private_token: q, interval: 1s}
outputs: [{name: out, type: file, path: "-"}]
spool: {dir: "${D}"}
`
	dir := t.TempDir()
	writeCert(t, dir)
	t.Setenv("D", dir)
	c, _, err := Parse([]byte(doc), "")
	if err != nil {
		t.Fatal(err)
	}
	want := []Input{
		{Name: "u", Protocol: "udp", Address: ":1514", MaxMessageSize: 256 * KiB},
		{Name: "t", Protocol: "tls", Address: ":6514", MaxMessageSize: KiB, MaxConnections: 1000, IdleTimeout: 0,
			HandshakeTimeout: 5 * time.Second,
			TLS:              &InputTLS{CertFile: dir + "/server.pem", KeyFile: dir + "/server-key.pem"}},
		{Name: "c", Protocol: "darktrace-api", URL: "https://dt.example", PublicToken: "p", PrivateToken: "q", Interval: time.Second, MaxMessageSize: 256 * KiB,
			Overlap: 5 * time.Minute, Timeout: time.Minute},
	}
	if !reflect.DeepEqual(c.Inputs, want) {
		t.Errorf("inputs:\n got %+v\nwant %+v", c.Inputs, want)
	}
	if s := *c.Spool; !reflect.DeepEqual(s, Spool{Dir: dir, MaxSize: 10 * GiB, FsyncInterval: time.Second, WhenFull: "block"}) {
		t.Errorf("spool %+v", s)
	}
	if c.Metrics.Address != "" || c.ShutdownTimeout != 10*time.Second {
		t.Errorf("metrics %q, shutdown %v", c.Metrics.Address, c.ShutdownTimeout)
	}
}

func TestWarnings(t *testing.T) {
	f := func(outputs string, want ...string) {
		t.Helper()
		doc := "inputs: [{name: in, protocol: tcp, address: \"127.0.0.1:1514\"}]\noutputs:\n" + outputs
		ps, ws := lines(t, doc+"  - {name: ok, type: file, path: \"-\"}\n")
		if len(ps) > 0 {
			t.Fatalf("problems %v", ps)
		}
		if !reflect.DeepEqual(ws, want) {
			t.Errorf("%s\nwarnings:\n  %s\nwant:\n  %s", outputs, strings.Join(ws, "\n  "), strings.Join(want, "\n  "))
		}
	}
	key := "0123456789abcdef0123"
	f("  - {name: s, type: sekoia-http, intake_key: " + key + "}\n") // no warning
	f("  - {name: s, type: sekoia-http, intake_key: 0123456789abcde}\n",
		"3: outputs[0].intake_key: is shorter than 16 characters; Sekoia intake keys are longer, check it")
	f("  - {name: s, type: sekoia-http, url: \"https://[2001:db8::1]:443\", intake_key: "+key+"}\n",
		"3: outputs[0].url: host is an IP address; the intake's certificate names intake.sekoia.io, so TLS verification fails unless this is a proxy with its own certificate")
	f("  - {name: s, type: syslog, address: \"intake.sekoia.io:10514\", tls: false, intake_key: "+key+"}\n",
		"3: outputs[0].tls: is false with format sekoia: the intake key and the events travel in clear")
	f("  - {name: s, type: syslog, address: \"203.0.113.9:10514\", intake_key: "+key+"}\n",
		"3: outputs[0].address: host is an IP address; the intake's certificate names intake.sekoia.io: set server_name")
	f("  - {name: s, type: syslog, address: \"203.0.113.9:10514\", server_name: intake.sekoia.io, intake_key: " + key + "}\n")
	f("  - {name: s, type: syslog, address: \"203.0.113.9:5514\", tls: false, format: original}\n") // Rapid7: nothing unusual
	f("  - {name: h, type: http, url: \"http://siem.example/in\"}\n",
		"3: outputs[0].url: plain http: events (and headers) travel in clear")
	f("  - {name: r, type: relp, address: \"relp.intake.sekoia.io:11514\", intake_key: " + key + "}\n")
	f("  - {name: r, type: relp, address: \"relp.intake.sekoia.io:11514\", tls: false, intake_key: "+key+", max_message_size: 8KiB}\n",
		"3: outputs[0].tls: is false with format sekoia: the intake key and the events travel in clear",
		"3: outputs[0].max_message_size: is 8KiB, less than an input's max_message_size (256KiB): larger events go to the dead-letter file, not to this output")
}

func TestRELPProblems(t *testing.T) {
	f := func(output string, want ...string) {
		t.Helper()
		doc := "inputs: [{name: in, protocol: tcp, address: \"127.0.0.1:1514\"}]\noutputs:\n  - " + output + "\n"
		got, _ := lines(t, doc)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s\nproblems:\n  %s\nwant:\n  %s", output, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	}
	f("{name: r, type: relp, format: rfc5424}", "3: outputs[0].address: is required for type relp (host:port, e.g. relp.intake.sekoia.io:11514)")
	f("{name: r, type: relp, address: \"h:1\", format: rfc5424, window: 0}", "3: outputs[0].window: must be 1 to 65536, got 0")
	f("{name: r, type: relp, address: \"h:1\", format: rfc5424, window: 70000}", "3: outputs[0].window: must be 1 to 65536, got 70000")
	f("{name: r, type: relp, address: \"h:1\", format: rfc5424, max_message_size: 100}", "3: outputs[0].max_message_size: must be from 1KiB to 16MiB, got 100")
	f("{name: r, type: relp, address: \"h:1\", format: sekoia}", "3: outputs[0].intake_key: is required with format sekoia")
	f("{name: r, type: relp, address: \"h:1\", format: rfc5424, framing: newline}", "3: outputs[0].framing: not used with type relp; remove it")
	f("{name: r, type: syslog, address: \"h:1\", format: rfc5424, window: 8}", "3: outputs[0].window: not used with type syslog; remove it")
	f("{name: r, type: relp, address: \"h:1\", tls: false, format: rfc5424, ca_file: x}", "3: outputs[0].ca_file: is used only with tls: true; remove it")
}

func TestEnvExpansion(t *testing.T) {
	t.Setenv("DT_ADDR", "127.0.0.1")
	t.Setenv("DT_KIND", "model_breach")
	t.Setenv("DT_SIZE", "1MiB")
	t.Setenv("DT_KEY", "env-intake-key-0123456789")
	doc := `inputs:
  - name: ${DT_NAME:-darktrace}
    protocol: tcp
    address: ${DT_ADDR}:1514
    max_message_size: ${DT_SIZE}
    allow: ["${DT_ADDR}"]
outputs:
  - {name: s, type: sekoia-http, intake_key: "${DT_KEY}", url: 'https://intake.sekoia.io/$$x'}
routes:
  - {match: {kinds: [$DT_KIND, "${DT_KIND}"]}, outputs: [s]}
`
	c, _, err := Parse([]byte(doc), "")
	if err == nil || c != nil {
		t.Fatalf("want only an error for the unexpanded $DT_KIND, got config %v, error %v", c != nil, err)
	}
	// "$NAME" without braces is not a variable.
	if got := err.Error(); got != `line 10: routes[0].match.kinds[0]: unknown kind "$DT_KIND" (want unknown, model_breach, ai_analyst, antigena, system_status, email, audit, test or heartbeat)` {
		t.Fatalf("error %q", got)
	}
	c, _, err = Parse([]byte(strings.Replace(doc, "$DT_KIND, ", "", 1)), "")
	if err != nil {
		t.Fatal(err)
	}
	in, out := c.Inputs[0], c.Outputs[0]
	if in.Name != "darktrace" || in.Address != "127.0.0.1:1514" || in.MaxMessageSize != MiB || in.Allow[0].String() != "127.0.0.1/32" {
		t.Errorf("input %+v", in)
	}
	if out.IntakeKey != "env-intake-key-0123456789" || out.URL != "https://intake.sekoia.io/$x" {
		t.Errorf("output %+v", out)
	}
	if k := c.Routes[0].Match.Kinds; len(k) != 1 || k[0] != "model_breach" {
		t.Errorf("kinds %v", k)
	}

	// Keys are not expanded.
	t.Setenv("DT_K", "name")
	ps, _ := lines(t, "${DT_K}: x\n"+minimalDoc)
	if len(ps) != 1 || ps[0] != "1: ${DT_K}: unknown key" {
		t.Errorf("problems %v", ps)
	}
}

// TestRelativePaths: paths are taken from the configuration file's
// directory; without a file name they are kept as given.
func TestRelativePaths(t *testing.T) {
	doc := minimalDoc + "  - {name: f, type: file, path: out.ndjson}\nspool: {dir: spool}\n"
	dir := t.TempDir()
	c, _, err := Parse([]byte(doc), filepath.Join(dir, "dtrelay.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Outputs[0].Path != "-" || c.Outputs[1].Path != filepath.Join(dir, "out.ndjson") || c.Spool.Dir != filepath.Join(dir, "spool") {
		t.Errorf("paths %q %q %q", c.Outputs[0].Path, c.Outputs[1].Path, c.Spool.Dir)
	}
	c, _, err = Parse([]byte(doc), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Outputs[1].Path != "out.ndjson" || c.Spool.Dir != "spool" {
		t.Errorf("paths %q %q", c.Outputs[1].Path, c.Spool.Dir)
	}
}

func TestAliasesAndMerges(t *testing.T) {
	doc := `x-batch: &batch {max_events: 10, max_wait: 50ms}
x-out: &out {type: file, batch: *batch}
inputs:
  - &in {name: a, protocol: tcp, address: "127.0.0.1:1514", allow: &nets [10.0.0.0/8]}
  - <<: *in
    name: b
    address: "127.0.0.1:1515"
outputs:
  - {<<: *out, name: one, path: "-"}
  - <<: [*out, {path: "-", name: ignored}]
    name: two
    path: /dev/null
routes:
  - {match: {inputs: [a, b]}, outputs: [one, two]}
`
	// There is no place for free-standing anchors ("x-" keys as in
	// docker-compose): they are unknown keys like any other.
	ps, _ := lines(t, doc)
	want := []string{"1: x-batch: unknown key", "2: x-out: unknown key"}
	if !reflect.DeepEqual(ps, want) {
		t.Fatalf("problems %v, want %v", ps, want)
	}
	doc = `inputs:
  - &in {name: a, protocol: tcp, address: "127.0.0.1:1514", allow: &nets [10.0.0.0/8]}
  - <<: *in
    name: b
    address: "127.0.0.1:1515"
outputs:
  - &out {name: one, type: file, path: "-", batch: {max_events: 10, max_wait: 50ms}}
  - <<: [*out, {queue_size: 1GiB, name: ignored}]
    name: two
    path: /dev/null
routes:
  - {match: {inputs: [a, b]}, outputs: [one, two]}
`
	c, _, err := Parse([]byte(doc), "")
	if err != nil {
		t.Fatal(err)
	}
	if b := c.Inputs[1]; b.Name != "b" || b.Address != "127.0.0.1:1515" || b.Protocol != "tcp" || len(b.Allow) != 1 {
		t.Errorf("merged input %+v", b)
	}
	if o := c.Outputs[1]; o.Name != "two" || o.Path != "/dev/null" || o.Type != "file" || o.Batch.MaxEvents != 10 || o.Batch.MaxWait != 50*time.Millisecond || o.QueueSize != GiB {
		t.Errorf("merged output %+v", o)
	}
	ps, _ = lines(t, minimalDoc+"spool: {<<: 5, dir: /tmp}\n")
	if len(ps) != 1 || ps[0] != `5: spool: "<<" must merge a mapping or a list of mappings` {
		t.Errorf("problems %v", ps)
	}
}

// TestAliasBomb: a document whose aliases make the walk quadratic (every
// input refers to one long list) is refused quickly with one problem.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("inputs:\n  - &in {name: a, protocol: tcp, address: \"127.0.0.1:1514\", allow: [")
	for i := range 2000 {
		fmt.Fprintf(&b, "10.%d.%d.0/24, ", i/256, i%256)
	}
	b.WriteString("]}\n")
	for range 2000 {
		b.WriteString("  - *in\n")
	}
	b.WriteString("outputs: [{name: out, type: file, path: \"-\"}]\n")
	start := time.Now()
	ps, _ := lines(t, b.String())
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	n := 0
	for _, p := range ps {
		if p == "0: : document too large: more than 100000 keys and values (after expanding aliases)" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d problems, %d about the size; first: %v", len(ps), n, ps[:min(len(ps), 3)])
	}
}

func TestRoutingProblems(t *testing.T) {
	f := func(routes string, want ...string) {
		t.Helper()
		doc := "inputs: [{name: in, protocol: tcp, address: \"127.0.0.1:1514\"}]\noutputs: [{name: out, type: file, path: \"-\"}]\nroutes:\n" + routes
		got, _ := lines(t, doc)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s\nproblems:\n  %s\nwant:\n  %s", routes, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	}
	f("  - {name: noise, match: {models: [\"System::*\"], categories: [Informational]}, drop: true}\n  - {outputs: [out]}\n")
	f("  - {match: {categories: [bogus]}, outputs: [out]}\n",
		`4: routes[0].match.categories[0]: unknown category "bogus" (want critical, suspicious, compliance or informational)`)
	f("  - {match: {min_score: 1.5}, outputs: [out]}\n",
		`4: routes[0].match.min_score: must be a score from 0 to 1 (AI Analyst's 0-100 scaled to it), got "1.5"`)
	f("  - {match: {min_score: 0.8, max_score: 0.5}, outputs: [out]}\n",
		"4: routes[0].match.max_score: is below min_score (0.8): nothing can match")
	f("  - {match: {models: [\"\"]}, outputs: [out]}\n", "4: routes[0].match.models[0]: must not be empty")
	f("  - {drop: true, outputs: [out]}\n", "4: routes[0].outputs: a drop route sends events nowhere: remove its outputs (or drop: true)")
	f("  - {not: {}, outputs: [out]}\n", "4: routes[0].not: is empty: it would exclude every event; list what to exclude, or remove it")
	f("  - {outputs: [out], dedup: {window: 0s}}\n",
		"4: routes[0].dedup.window: must be positive, e.g. 10m, got 0s")
	f("  - {name: a, outputs: [out]}\n  - {name: a, outputs: [out]}\n", `5: routes[1].name: duplicate name "a" (also routes[0].name)`)
	f("  - {outputs: [out]}\nroute_mode: any\n", `5: route_mode: unknown route_mode "any" (want all or first)`)
}
