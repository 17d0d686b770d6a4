package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"sort"
	"strings"
)

// Summary describes c for people (dtrelay check): one line per input,
// output and route, then spool, metrics and shutdown. Secrets are never
// shown, only whether they are set; URLs are shown without their query.
func (c *Config) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "inputs (%d):\n", len(c.Inputs))
	for _, in := range c.Inputs {
		fmt.Fprintf(&b, "  %s: %s\n", in.Name, c.inputSummary(&in))
	}
	for _, in := range c.Inputs {
		if in.Protocol == ProtocolTCP || in.Protocol == ProtocolTLS {
			fmt.Fprintf(&b, "max_partial_bytes: %s held in partial frames across all tcp/tls connections\n", c.MaxPartialBytes)
			break
		}
	}
	fmt.Fprintf(&b, "outputs (%d):\n", len(c.Outputs))
	for _, o := range c.Outputs {
		fmt.Fprintf(&b, "  %s: %s\n", o.Name, outputSummary(&o))
	}
	if len(c.Routes) == 0 {
		b.WriteString("routes: none, every event goes to every output\n")
	} else {
		mode := c.RouteMode
		if mode == "" {
			mode = RouteModeAll
		}
		fmt.Fprintf(&b, "routes (%d, mode %s):\n", len(c.Routes), mode)
		for _, r := range c.Routes {
			fmt.Fprintf(&b, "  %s\n", routeSummary(&r))
		}
	}
	if s := c.Spool; s != nil {
		fmt.Fprintf(&b, "spool: %s, max %s, fsync every %s, when full: %s%s\n", s.Dir, s.MaxSize, formatDuration(s.FsyncInterval), s.WhenFull, renameSummary(s.Rename))
	} else {
		b.WriteString("spool: none\n")
	}
	var dead []string
	for _, o := range c.Outputs {
		if o.Type != TypeFile { // a file output refuses nothing
			dead = append(dead, o.Name)
		}
	}
	if len(dead) > 0 {
		fmt.Fprintf(&b, "dead_letter: %s, max %s per output (%s)\n", c.DeadLetter.Dir, c.DeadLetter.MaxSize, strings.Join(dead, ", "))
	}
	if c.Metrics.Address != "" {
		fmt.Fprintf(&b, "metrics: http://%s/metrics", c.Metrics.Address)
		if c.Metrics.Pprof {
			b.WriteString(", profiler at /debug/pprof/")
		}
		b.WriteByte('\n')
	} else {
		b.WriteString("metrics: off\n")
	}
	fmt.Fprintf(&b, "shutdown_timeout: %s\n", formatDuration(c.ShutdownTimeout))
	return b.String()
}

func (c *Config) inputSummary(in *Input) string {
	var parts []string
	if in.Protocol == ProtocolDarktraceAPI {
		parts = append(parts, fmt.Sprintf("darktrace-api polling %s every %s", showURL(in.URL), formatDuration(in.Interval)),
			"tokens "+setOrNot(in.PublicToken != "" && in.PrivateToken != ""))
		parts = append(parts, trustSummary(in.CAFile, in.NoSystemRoots)...)
		parts = append(parts, "overlap "+formatDuration(in.Overlap), "timeout "+formatDuration(in.Timeout),
			"checkpoint in "+c.PollerStateDir(in))
		return strings.Join(append(parts, "max_message_size "+in.MaxMessageSize.String()), "; ")
	}
	parts = append(parts, fmt.Sprintf("%s on %s", in.Protocol, in.Address), "max_message_size "+in.MaxMessageSize.String())
	if in.Protocol != ProtocolUDP {
		idle := "none"
		if in.IdleTimeout > 0 {
			idle = formatDuration(in.IdleTimeout)
		}
		parts = append(parts, fmt.Sprintf("max_connections %d", in.MaxConnections))
		if in.MaxConnectionsPerSource > 0 {
			parts = append(parts, fmt.Sprintf("max_connections_per_source %d", in.MaxConnectionsPerSource))
		}
		parts = append(parts, "idle_timeout "+idle, "handshake_timeout "+formatDuration(in.HandshakeTimeout))
	}
	if t := in.TLS; t != nil {
		s := "cert " + t.CertFile
		if t.ClientCAFile != "" {
			s += ", client certificates required (CA " + t.ClientCAFile + ")"
		}
		parts = append(parts, s)
	}
	if len(in.Allow) > 0 {
		parts = append(parts, "allow "+prefixList(in.Allow))
	}
	if in.ProxyProtocol {
		parts = append(parts, "PROXY protocol from "+prefixList(in.TrustedProxies))
	}
	if in.Strict {
		parts = append(parts, "strict RFC 5424")
	}
	return strings.Join(parts, "; ")
}

func prefixList(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

func outputSummary(o *Output) string {
	var parts []string
	switch o.Type {
	case TypeSekoiaHTTP:
		parts = append(parts, fmt.Sprintf("sekoia-http to %s (endpoint %s, compression %s)", showURL(o.URL), o.Endpoint, o.Compression),
			"intake_key "+setOrNot(o.IntakeKey != ""))
	case TypeHTTP:
		parts = append(parts, fmt.Sprintf("http to %s (compression %s)", showURL(o.URL), o.Compression))
		if len(o.Headers) > 0 {
			names := make([]string, 0, len(o.Headers))
			for n := range o.Headers {
				names = append(names, n)
			}
			sort.Strings(names)
			parts = append(parts, "headers "+strings.Join(names, ", ")+" (values hidden)")
		}
	case TypeSyslog:
		transport := "plain TCP"
		if o.TLS {
			transport = "TLS (server name " + o.ServerName + ")"
		}
		parts = append(parts, fmt.Sprintf("syslog to %s over %s, format %s, framing %s", o.Address, transport, o.Format, o.Framing))
		if o.Format == "sekoia" {
			parts = append(parts, "intake_key "+setOrNot(o.IntakeKey != ""))
		}
	case TypeRELP:
		transport := "plain TCP"
		if o.TLS {
			transport = "TLS (server name " + o.ServerName + ")"
		}
		parts = append(parts, fmt.Sprintf("relp to %s over %s, format %s, window %d, messages up to %s", o.Address, transport, o.Format, o.Window, o.MaxMessageSize))
		if o.Format == "sekoia" {
			parts = append(parts, "intake_key "+setOrNot(o.IntakeKey != ""))
		}
	case TypeFile:
		dst := o.Path
		if dst == "-" {
			dst = "standard output"
		}
		parts = append(parts, "file "+dst)
	}
	parts = append(parts, trustSummary(o.CAFile, o.NoSystemRoots)...)
	if o.ClientCertFile != "" {
		parts = append(parts, "client certificate "+o.ClientCertFile)
	}
	wait := formatDuration(o.Batch.MaxWait)
	if o.Batch.MaxWait == 0 {
		wait = "no wait"
	}
	parts = append(parts, fmt.Sprintf("batch %d events / %s / %s", o.Batch.MaxEvents, o.Batch.MaxBytes, wait),
		"queue "+o.QueueSize.String())
	if o.Type != TypeFile {
		parts = append(parts, "timeout "+formatDuration(o.Timeout))
	}
	return strings.Join(parts, "; ")
}

func matchSummary(m *Match) string {
	var parts []string
	if len(m.Kinds) > 0 {
		parts = append(parts, "kinds "+strings.Join(m.Kinds, ", "))
	}
	if m.MinPriority != "" {
		parts = append(parts, "priority >= "+m.MinPriority)
	}
	if len(m.Inputs) > 0 {
		parts = append(parts, "from "+strings.Join(m.Inputs, ", "))
	}
	if len(m.Models) > 0 {
		parts = append(parts, "models "+strings.Join(m.Models, ", "))
	}
	if len(m.Categories) > 0 {
		parts = append(parts, "categories "+strings.Join(m.Categories, ", "))
	}
	switch {
	case m.MinScore != nil && m.MaxScore != nil:
		parts = append(parts, fmt.Sprintf("score %g to %g", *m.MinScore, *m.MaxScore))
	case m.MinScore != nil:
		parts = append(parts, fmt.Sprintf("score >= %g", *m.MinScore))
	case m.MaxScore != nil:
		parts = append(parts, fmt.Sprintf("score <= %g", *m.MaxScore))
	}
	if len(m.Sources) > 0 {
		parts = append(parts, "sources "+strings.Join(m.Sources, ", "))
	}
	if len(m.Tags) > 0 {
		parts = append(parts, "tags "+strings.Join(m.Tags, ", "))
	}
	if len(parts) == 0 {
		return "every event"
	}
	return strings.Join(parts, "; ")
}

// routeSummary is one route's line: what it takes, and where it sends it.
func routeSummary(r *Route) string {
	s := r.Name + ": " + matchSummary(&r.Match)
	if r.Not != nil {
		s += "; not (" + matchSummary(r.Not) + ")"
	}
	if r.Drop {
		s += " -> dropped (counted)"
	} else {
		s += " -> " + strings.Join(r.Outputs, ", ")
	}
	if r.Dedup != nil {
		s += fmt.Sprintf(", de-duplicated over %s (at most %d keys)", formatDuration(r.Dedup.Window), r.Dedup.MaxKeys)
	}
	return s
}

// showURL shows a URL without credentials or query.
func showURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	return redactURL(u)
}

func setOrNot(set bool) string {
	if set {
		return "set"
	}
	return "not set"
}

// trustSummary shows the CA file a TLS client trusts besides the system
// roots, and says so when it trusts that file alone (system_roots: false).
func trustSummary(caFile string, noSystemRoots bool) []string {
	switch {
	case caFile == "":
		return nil
	case noSystemRoots:
		return []string{"ca_file " + caFile + " only (system roots excluded)"}
	}
	return []string{"ca_file " + caFile}
}
