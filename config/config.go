package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is a complete, checked dtrelay configuration (DESIGN.md §4).
type Config struct {
	Inputs  []Input
	Outputs []Output
	// Routes send events to outputs by kind, priority and input; without
	// routes every event goes to every output.
	Routes []Route
	// RouteMode is RouteModeAll (also when empty) or RouteModeFirst.
	RouteMode string
	// Spool is nil when the configuration has no spool.
	Spool *Spool
	// DeadLetter is where each output keeps the events it gives up on;
	// always set (see DeadLetter).
	DeadLetter DeadLetter
	// Metrics.Address "" means no metrics listener.
	Metrics Metrics
	// ShutdownTimeout bounds the drain on SIGTERM; 0 stops at once.
	// Default 10s.
	ShutdownTimeout time.Duration
	// ShutdownDelay is how long, on SIGTERM, /readyz answers 503 while the
	// inputs keep accepting, before the drain begins: time for a load
	// balancer to take the relay out of rotation. Default 0.
	ShutdownDelay time.Duration
	// MaxPartialBytes caps the bytes held in partial frames (frames split
	// across reads) across every tcp and tls connection of the process;
	// above it the connection holding the largest is closed. Default
	// 256MiB; at least twice the largest tcp/tls max_message_size.
	MaxPartialBytes Size
	// Heartbeat, when set, makes dtrelay send a heartbeat event of its
	// own every Interval.
	Heartbeat *Heartbeat
}

// Heartbeat is the heartbeat key: every Interval (default 5m, at least
// 1s) a JSON event {"dtrelay_heartbeat": {...}} of kind heartbeat goes to
// Outputs; without Outputs the routes decide, as for an alert of kind
// heartbeat (no routes: every output).
type Heartbeat struct {
	Interval time.Duration
	Outputs  []string
}

// Input protocols.
const (
	ProtocolTCP          = "tcp"
	ProtocolUDP          = "udp"
	ProtocolTLS          = "tls"
	ProtocolDarktraceAPI = "darktrace-api"
)

// Input is one source of alerts: a syslog listener (tcp, udp, tls) or a
// Darktrace API poller (darktrace-api). Fields that the protocol does not use
// are zero.
type Input struct {
	Name     string
	Protocol string // tcp | udp | tls | darktrace-api
	// Address is the listen address, host:port (tcp, udp, tls); port 0
	// picks a free port.
	Address string
	// MaxMessageSize is the largest frame (or polled event) accepted, 1KiB
	// to 16MiB; default 256KiB.
	MaxMessageSize Size
	// TLS is set for protocol tls (and only then).
	TLS *InputTLS
	// Allow lists the source networks accepted; empty accepts all. With
	// ProxyProtocol it applies to the source the PROXY header carries; a
	// LOCAL header (the trusted proxy's own connection) is accepted
	// whatever Allow says.
	Allow []netip.Prefix
	// ProxyProtocol accepts PROXY v1/v2 headers (tcp, tls); it requires
	// TrustedProxies.
	ProxyProtocol bool
	// TrustedProxies lists the peers allowed to send PROXY headers (tcp,
	// tls, with ProxyProtocol); others are refused before anything is read.
	TrustedProxies []netip.Prefix
	// MaxConnections caps concurrent connections (tcp, tls); default 1000.
	MaxConnections int
	// MaxConnectionsPerSource caps concurrent connections from one source
	// address (tcp, tls); default 0, no cap.
	MaxConnectionsPerSource int
	// HandshakeTimeout bounds a connection's handshake phase from its
	// accept: the PROXY header (with ProxyProtocol) and the TLS handshake
	// (tls); a plain tcp connection has none. Past it a connection is
	// closed by time only by IdleTimeout, frame or not; until its first
	// frame it may be evicted at MaxConnections. Default 5s, must be
	// positive.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a silent connection or one stuck in a partial frame
	// (tcp, tls); default 0, never: TCP keep-alive reaps dead peers
	// (receiver.DefaultKeepAlive), and a sender that sends one alert an
	// hour keeps its connection.
	IdleTimeout time.Duration
	// SilentAfter flags a source of this input that sent before and has
	// sent nothing for that long: logged (warn, once; info when it comes
	// back) and dtrelay_source_silent 1. Default 0: never.
	SilentAfter time.Duration
	// Strict additionally rejects payloads that are not valid UTF-8 (the
	// JSON grammar is always checked in full); a payload that fails is
	// counted not_json (tcp, udp, tls).
	Strict bool

	// URL is the Darktrace API base URL (darktrace-api).
	URL string
	// PublicToken and PrivateToken sign API requests (darktrace-api). Secret:
	// never log them.
	PublicToken, PrivateToken string
	// Interval is the polling period (darktrace-api); default 60s, at least 1s.
	Interval time.Duration
	// CAFile is a CA bundle (PEM) trusted besides the system roots
	// (darktrace-api).
	CAFile string
	// NoSystemRoots is system_roots: false: trust CAFile's CAs alone
	// (darktrace-api; requires ca_file).
	NoSystemRoots bool
	// StateDir is where the poller keeps its checkpoint (darktrace-api);
	// empty: the spool directory, else DefaultStateDir (see PollerStateDir).
	StateDir string
	// Overlap is how far back before the end of the last window each poll
	// starts (darktrace-api); default 5m: AI Analyst events written later
	// than that after their time are missed (model breaches are polled by
	// creation time).
	Overlap time.Duration
	// Timeout bounds one API request, body included (darktrace-api);
	// default 60s.
	Timeout time.Duration
}

// PollerStateDir returns where the darktrace-api input in keeps its
// checkpoint: its state_dir, else the spool directory, else
// DefaultStateDir.
func (c *Config) PollerStateDir(in *Input) string {
	switch {
	case in.StateDir != "":
		return in.StateDir
	case c.Spool != nil && c.Spool.Dir != "":
		return c.Spool.Dir
	}
	return DefaultStateDir
}

// InputTLS is the server side of a tls input. ClientCAFile, when set,
// requires client certificates signed by it (mTLS).
type InputTLS struct {
	CertFile, KeyFile, ClientCAFile string
}

// Output types.
const (
	TypeSekoiaHTTP = "sekoia-http"
	TypeSyslog     = "syslog"
	TypeRELP       = "relp"
	TypeHTTP       = "http"
	TypeFile       = "file"
)

// Output is one destination. Fields that the type does not use are zero.
type Output struct {
	Name string
	Type string // sekoia-http | syslog | relp | http | file

	// URL: sekoia-http, the intake base URL (default
	// https://intake.sekoia.io; the sender appends /plain/batch or /batch);
	// http, the URL batches are POSTed to.
	URL string
	// IntakeKey is the Sekoia intake key (sekoia-http; syslog and relp with
	// format sekoia). Secret: never log it.
	IntakeKey string
	// CAFile is a CA bundle (PEM) trusted besides the system roots
	// (https, TLS syslog), as an input's is; empty: the system roots.
	CAFile string
	// NoSystemRoots is system_roots: false: trust CAFile's CAs alone
	// (requires ca_file).
	NoSystemRoots bool
	// Endpoint (sekoia-http): "plain" (POST /plain/batch, default) or
	// "batch" (POST /batch).
	Endpoint string
	// Compression (sekoia-http, http): "gzip" (default) or "none".
	Compression string
	// Headers (http) are added to every request. Values may be secrets:
	// never log them.
	Headers map[string]string
	Batch   Batch

	// Address is host:port to dial (syslog, relp).
	Address string
	// TLS (syslog, relp) dials with TLS; default true.
	TLS bool
	// ServerName is the name checked in the server's certificate (syslog
	// and relp with TLS, http); for syslog and relp it defaults to the host
	// of Address.
	ServerName string
	// ClientCertFile and ClientKeyFile present a client certificate (syslog
	// and relp with TLS, http); both or neither.
	ClientCertFile, ClientKeyFile string
	// Format (syslog, relp): "sekoia" (default; RFC 5424 with the intake
	// key as structured data), "rfc5424" or "original" (the line as
	// received).
	Format string
	// Framing (syslog): "octet-counting" (default) or "newline".
	Framing string
	// Window (relp) is the number of messages sent and not yet
	// acknowledged, at most; default 1024 (rsyslog omrelp's 128 is slow,
	// see output.DefaultRelpWindow). A relp output's batch.max_events
	// defaults to four windows.
	Window int
	// MaxMessageSize (relp) is the largest message sent; larger events go
	// to the dead-letter file. Default 256KiB; the intake's own limit
	// (imrelp's maxDataSize) must not be smaller, or it ends the session.
	MaxMessageSize Size

	// QueueSize is the output's in-memory queue in bytes; default 64MiB, at
	// least the largest input max_message_size.
	QueueSize Size
	// Path (file) is the file appended to; "-" is standard output.
	Path string
	// Timeout bounds one request or dial (network outputs); default 30s.
	Timeout time.Duration
	// Dedup, when set, de-duplicates what goes to this output.
	Dedup *Dedup
}

// Batch is when an output sends what it has queued: at MaxEvents events,
// at MaxBytes bytes, or MaxWait after the first queued event, whichever
// comes first. Defaults: 1000 events, 4MiB, and 1s for HTTP outputs. For
// syslog and file outputs MaxWait defaults to 0, which means "send as soon
// as the queue is drained": no waiting for more events.
type Batch struct {
	MaxEvents int
	MaxBytes  Size
	MaxWait   time.Duration
}

// Route sends the events its Match selects, and Not does not, to the named
// outputs; a Drop route sends them nowhere, counted under its Name.
type Route struct {
	Name    string // default "route<N>", N from 1; used in metrics
	Match   Match
	Not     *Match // nil: nothing excluded
	Outputs []string
	Drop    bool
	Dedup   *Dedup
}

// Match selects events; an empty field matches everything, and every field
// set must match.
type Match struct {
	Kinds       []string // parser kind names (parser.ParseKind)
	MinPriority string   // parser priority name (parser.ParsePriority)
	Inputs      []string // input names
	Models      []string // globs on the model name ("System::*")
	Categories  []string // critical | suspicious | compliance | informational
	MinScore    *float64 // 0..1; an alert without a score does not match
	MaxScore    *float64
	Sources     []string // globs on the syslog HOSTNAME
	Tags        []string // the syslog APP-NAME/TAG: darktrace, darktrace_audit
}

// Dedup sends an alert whose identity went the same way within Window no
// further; at most MaxKeys identities are remembered (default 1,000,000).
type Dedup struct {
	Window  time.Duration
	MaxKeys int
}

// Route modes.
const (
	RouteModeAll   = "all"   // every matching route (default)
	RouteModeFirst = "first" // the first matching route only
)

// Spool is the on-disk buffer used when outputs are slow or down.
type Spool struct {
	Dir           string
	MaxSize       Size          // default 10GiB
	FsyncInterval time.Duration // default 1s, must be positive
	WhenFull      string        // "block" (default) or "drop_oldest"
	// Rename hands the spooled backlog of an output that was renamed (old
	// name → new name, which must be an output) to its new name.
	Rename map[string]string
}

// DeadLetter is the directory of the outputs' dead-letter files (one per
// output, DIR/OUTPUT.ndjson): the events an intake refused for their content
// or that are too large for the output. It is a top-level key, not an
// output's: one place to look and to replay from, like the spool; the
// files are per output already. Dir defaults to SPOOL_DIR/dead-letter with
// a spool, else to DefaultDeadLetterDir; it is created at the first event
// given up on. MaxSize bounds each file; default 1GiB.
type DeadLetter struct {
	Dir     string
	MaxSize Size
}

// Metrics is the HTTP listener for /metrics, /healthz and /readyz. It has
// no authentication: keep it on loopback (check warns otherwise).
type Metrics struct {
	Address string // host:port; "" = no listener
	// Pprof also serves the Go profiler under /debug/pprof/ (default
	// false): profiles show the program's memory, which holds the secrets.
	Pprof bool
	// UnreadyAfter is how long an output must have failed continuously
	// (every delivery attempt since, none accepted) before /readyz answers
	// 503. Default 60s; 0: from the first failed attempt.
	UnreadyAfter time.Duration
	// MaxSources bounds the sources tracked (dtrelay_source_* metrics,
	// Relay.Sources): beyond it, new senders are counted as source
	// "other" of their input. Default 1000.
	MaxSources int
}

// defaultYAML is the configuration used without a file: TCP and UDP on
// 127.0.0.1:1514, every alert's JSON as one line on stdout, metrics on
// 127.0.0.1:9514.
const defaultYAML = `inputs:
  - {name: tcp, protocol: tcp, address: "127.0.0.1:1514"}
  - {name: udp, protocol: udp, address: "127.0.0.1:1514"}
outputs:
  - {name: stdout, type: file, path: "-"}
metrics:
  address: "127.0.0.1:9514"
`

// maxFileSize bounds what Load reads.
const maxFileSize = 4 << 20

// Default returns the embedded default configuration, with defaults filled
// in. Each call returns a new Config.
func Default() *Config {
	c, _, err := parse([]byte(defaultYAML), "", func(string) (string, bool) { return "", false })
	if err != nil {
		panic("config: the embedded default does not parse: " + err.Error())
	}
	return c
}

// Load reads and parses the configuration file at path (see Parse). An error
// reading the file is returned as is; an invalid configuration as *Errors.
func Load(path string) (*Config, []Warning, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read config: %w", err)
	}
	if len(data) > maxFileSize {
		return nil, nil, &Errors{Problems: []Problem{{File: path, Msg: fmt.Sprintf("file larger than %d bytes", maxFileSize)}}}
	}
	return Parse(data, path)
}

// Parse decodes, completes and checks the YAML configuration data.
// filename appears in problems and warnings; when not empty, relative file
// paths in data are taken relative to its directory. Environment variables
// come from the process environment. Parse reads (but never writes) the
// files the configuration names, to check them.
//
// On success it returns the Config and any warnings. When the configuration
// is invalid it returns a nil Config, the warnings found so far, and an
// *Errors listing every problem.
func Parse(data []byte, filename string) (*Config, []Warning, error) {
	return parse(data, filename, os.LookupEnv)
}

func parse(data []byte, filename string, lookup func(string) (string, bool)) (*Config, []Warning, error) {
	d := newDecoder(filename, lookup)
	root, err := readDocument(data)
	if err != nil {
		line, msg := yamlErrorLine(err)
		d.problemAt("", line, "invalid YAML: "+msg)
		return nil, nil, &Errors{Problems: d.problems}
	}
	c := d.decodeConfig(root)
	d.complete(c)
	d.validating = true
	d.validate(c)
	sort.SliceStable(d.problems, func(i, j int) bool { return d.problems[i].Line < d.problems[j].Line })
	sort.SliceStable(d.warnings, func(i, j int) bool { return d.warnings[i].Line < d.warnings[j].Line })
	if len(d.problems) > 0 {
		return nil, d.warnings, &Errors{Problems: d.problems}
	}
	return c, d.warnings, nil
}

// readDocument parses data as exactly one YAML document and returns its
// root node (an empty Node for an empty document).
func readDocument(data []byte) (root *yaml.Node, err error) {
	defer func() {
		// yaml.v3 reports its errors by panicking internally; a panic
		// that escapes it is a bug there, and must not take down dtrelay
		// check: report it as an unparsable document.
		if r := recover(); r != nil {
			root, err = nil, fmt.Errorf("yaml: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &yaml.Node{}, nil
		}
		return nil, err
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("yaml: line %d: only one document is allowed (found a second one)", next.Line)
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0], nil
	}
	return &doc, nil
}

// yamlErrorLine splits a yaml.v3 error "yaml: line N: msg" into N and msg.
func yamlErrorLine(err error) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(n); err == nil {
				return line, after
			}
		}
	}
	return 0, msg
}
