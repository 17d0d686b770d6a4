package config

import (
	"net/netip"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The keys each mapping knows. Whether a key applies to an input's protocol
// or an output's type is checked later (inputKeyUse, outputKeyUse).
func rootKeys() []string {
	return []string{"inputs", "outputs", "routes", "route_mode", "spool", "dead_letter", "metrics", "shutdown_timeout", "shutdown_delay", "max_partial_bytes", "heartbeat"}
}

func inputKeys() []string {
	return []string{"name", "protocol", "address", "max_message_size", "tls", "allow", "proxy_protocol",
		"trusted_proxies", "max_connections", "max_connections_per_source", "idle_timeout", "handshake_timeout",
		"strict", "url", "public_token", "private_token", "interval", "ca_file", "system_roots",
		"state_dir", "overlap", "timeout", "silent_after"}
}

func outputKeys() []string {
	return []string{"name", "type", "url", "intake_key", "ca_file", "system_roots", "endpoint", "compression", "headers", "batch",
		"address", "tls", "server_name", "client_cert_file", "client_key_file", "format", "framing", "queue_size",
		"path", "timeout", "window", "max_message_size", "dedup"}
}

func tlsKeys() []string   { return []string{"cert_file", "key_file", "client_ca_file"} }
func batchKeys() []string { return []string{"max_events", "max_bytes", "max_wait"} }
func routeKeys() []string { return []string{"name", "match", "not", "outputs", "drop", "dedup"} }
func matchKeys() []string {
	return []string{"kinds", "min_priority", "inputs", "models", "categories", "min_score", "max_score", "sources", "tags"}
}
func dedupKeys() []string { return []string{"window", "max_keys"} }
func spoolKeys() []string {
	return []string{"dir", "max_size", "fsync_interval", "when_full", "rename"}
}

func heartbeatKeys() []string { return []string{"interval", "outputs"} }

func deadLetterKeys() []string { return []string{"dir", "max_size"} }

func metricsKeys() []string {
	return []string{"address", "pprof", "unready_after", "max_sources"}
}

// decodeConfig decodes the document root into a Config, recording lines and
// problems; inputs and outputs that are not mappings are left out.
func (d *decoder) decodeConfig(root *yaml.Node) *Config {
	c := &Config{}
	d.lines[""] = max(root.Line, 1)
	if r := resolve(root); r != nil && r.Kind == 0 {
		return c // an empty document
	}
	d.fields(root, "", rootKeys(), func(key string, v *yaml.Node, p string) {
		switch key {
		case "inputs":
			d.sequence(v, p, func(item *yaml.Node, ip string) {
				in := Input{}
				if d.decodeInput(item, ip, &in) {
					c.Inputs = append(c.Inputs, in)
					d.inputPaths = append(d.inputPaths, ip)
				}
			})
		case "outputs":
			d.sequence(v, p, func(item *yaml.Node, op string) {
				out := Output{}
				if d.decodeOutput(item, op, &out) {
					c.Outputs = append(c.Outputs, out)
					d.outputPaths = append(d.outputPaths, op)
				}
			})
		case "routes":
			d.sequence(v, p, func(item *yaml.Node, rp string) {
				r := Route{}
				if d.decodeRoute(item, rp, &r) {
					c.Routes = append(c.Routes, r)
					d.routePaths = append(d.routePaths, rp)
				}
			})
		case "spool":
			s := &Spool{}
			if d.fields(v, p, spoolKeys(), func(key string, v *yaml.Node, p string) {
				switch key {
				case "dir":
					d.filePath(v, p, &s.Dir)
				case "max_size":
					d.size(v, p, &s.MaxSize)
				case "fsync_interval":
					d.duration(v, p, &s.FsyncInterval)
				case "when_full":
					d.str(v, p, &s.WhenFull)
				case "rename":
					s.Rename = d.stringMap(v, p, "a mapping of old output names to new ones, such as {sekoia: sekoia-eu}", false)
				}
			}) {
				c.Spool = s
			}
		case "heartbeat":
			h := &Heartbeat{}
			if d.fields(v, p, heartbeatKeys(), func(key string, v *yaml.Node, p string) {
				switch key {
				case "interval":
					d.duration(v, p, &h.Interval)
				case "outputs":
					d.strList(v, p, &h.Outputs)
				}
			}) {
				c.Heartbeat = h
			}
		case "dead_letter":
			d.fields(v, p, deadLetterKeys(), func(key string, v *yaml.Node, p string) {
				switch key {
				case "dir":
					d.filePath(v, p, &c.DeadLetter.Dir)
				case "max_size":
					d.size(v, p, &c.DeadLetter.MaxSize)
				}
			})
		case "metrics":
			d.fields(v, p, metricsKeys(), func(key string, v *yaml.Node, p string) {
				switch key {
				case "address":
					d.str(v, p, &c.Metrics.Address)
				case "pprof":
					d.boolean(v, p, &c.Metrics.Pprof)
				case "unready_after":
					d.duration(v, p, &c.Metrics.UnreadyAfter)
				case "max_sources":
					d.integer(v, p, &c.Metrics.MaxSources)
				}
			})
		case "route_mode":
			d.str(v, p, &c.RouteMode)
		case "shutdown_timeout":
			d.duration(v, p, &c.ShutdownTimeout)
		case "shutdown_delay":
			d.duration(v, p, &c.ShutdownDelay)
		case "max_partial_bytes":
			d.size(v, p, &c.MaxPartialBytes)
		}
	})
	return c
}

func (d *decoder) decodeInput(n *yaml.Node, path string, in *Input) bool {
	return d.fields(n, path, inputKeys(), func(key string, v *yaml.Node, p string) {
		switch key {
		case "name":
			d.str(v, p, &in.Name)
		case "protocol":
			d.str(v, p, &in.Protocol)
		case "address":
			d.str(v, p, &in.Address)
		case "max_message_size":
			d.size(v, p, &in.MaxMessageSize)
		case "tls":
			t := &InputTLS{}
			if d.fields(v, p, tlsKeys(), func(key string, v *yaml.Node, p string) {
				switch key {
				case "cert_file":
					d.filePath(v, p, &t.CertFile)
				case "key_file":
					d.filePath(v, p, &t.KeyFile)
				case "client_ca_file":
					d.filePath(v, p, &t.ClientCAFile)
				}
			}) {
				in.TLS = t
			}
		case "allow":
			d.prefixes(v, p, &in.Allow)
		case "proxy_protocol":
			d.boolean(v, p, &in.ProxyProtocol)
		case "trusted_proxies":
			d.prefixes(v, p, &in.TrustedProxies)
		case "max_connections":
			d.integer(v, p, &in.MaxConnections)
		case "max_connections_per_source":
			d.integer(v, p, &in.MaxConnectionsPerSource)
		case "idle_timeout":
			d.duration(v, p, &in.IdleTimeout)
		case "handshake_timeout":
			d.duration(v, p, &in.HandshakeTimeout)
		case "silent_after":
			d.duration(v, p, &in.SilentAfter)
		case "strict":
			d.boolean(v, p, &in.Strict)
		case "url":
			d.str(v, p, &in.URL)
		case "public_token":
			d.secretStr(v, p, &in.PublicToken)
		case "private_token":
			d.secretStr(v, p, &in.PrivateToken)
		case "interval":
			d.duration(v, p, &in.Interval)
		case "ca_file":
			d.filePath(v, p, &in.CAFile)
		case "system_roots":
			d.systemRoots(v, p, &in.NoSystemRoots)
		case "state_dir":
			d.filePath(v, p, &in.StateDir)
		case "overlap":
			d.duration(v, p, &in.Overlap)
		case "timeout":
			d.duration(v, p, &in.Timeout)
		}
	})
}

// prefixes decodes a list of CIDRs or bare addresses (allow,
// trusted_proxies).
func (d *decoder) prefixes(n *yaml.Node, path string, dst *[]netip.Prefix) {
	d.sequence(n, path, func(item *yaml.Node, ip string) {
		if s, ok := d.listItem(item, ip); ok {
			if pfx, ok := d.prefix(s, ip); ok {
				*dst = append(*dst, pfx)
			}
		}
	})
}

// prefix parses a CIDR or a bare address (a /32 or /128).
func (d *decoder) prefix(s, path string) (netip.Prefix, bool) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			d.problemf(path, "must be an IP address or a CIDR such as 10.0.0.0/8, got %s", quote(s))
			return netip.Prefix{}, false
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		d.problemf(path, "must be an IP address or a CIDR such as 10.0.0.0/8, got %s", quote(s))
		return netip.Prefix{}, false
	}
	if m := pfx.Masked(); m != pfx {
		d.warnf(path, "%s has host bits set; it means %s", quote(s), m)
		pfx = m
	}
	d.mappedPrefixWarning(path, s, pfx)
	return pfx, true
}

func (d *decoder) decodeOutput(n *yaml.Node, path string, out *Output) bool {
	return d.fields(n, path, outputKeys(), func(key string, v *yaml.Node, p string) {
		switch key {
		case "name":
			d.str(v, p, &out.Name)
		case "type":
			d.str(v, p, &out.Type)
		case "url":
			d.str(v, p, &out.URL)
		case "intake_key":
			d.secretStr(v, p, &out.IntakeKey)
		case "ca_file":
			d.filePath(v, p, &out.CAFile)
		case "system_roots":
			d.systemRoots(v, p, &out.NoSystemRoots)
		case "endpoint":
			d.str(v, p, &out.Endpoint)
		case "compression":
			d.str(v, p, &out.Compression)
		case "headers":
			d.headers(v, p, out)
		case "batch":
			d.fields(v, p, batchKeys(), func(key string, v *yaml.Node, p string) {
				switch key {
				case "max_events":
					d.integer(v, p, &out.Batch.MaxEvents)
				case "max_bytes":
					d.size(v, p, &out.Batch.MaxBytes)
				case "max_wait":
					d.duration(v, p, &out.Batch.MaxWait)
				}
			})
		case "address":
			d.str(v, p, &out.Address)
		case "tls":
			d.boolean(v, p, &out.TLS)
		case "server_name":
			d.str(v, p, &out.ServerName)
		case "client_cert_file":
			d.filePath(v, p, &out.ClientCertFile)
		case "client_key_file":
			d.filePath(v, p, &out.ClientKeyFile)
		case "format":
			d.str(v, p, &out.Format)
		case "framing":
			d.str(v, p, &out.Framing)
		case "window":
			d.integer(v, p, &out.Window)
		case "max_message_size":
			d.size(v, p, &out.MaxMessageSize)
		case "queue_size":
			d.size(v, p, &out.QueueSize)
		case "path":
			d.filePath(v, p, &out.Path)
		case "timeout":
			d.duration(v, p, &out.Timeout)
		case "dedup":
			out.Dedup = d.dedup(v, p)
		}
	})
}

// headers decodes an http output's extra headers. Values are secrets as far
// as messages go: they are never quoted.
func (d *decoder) headers(n *yaml.Node, path string, out *Output) {
	out.Headers = d.stringMap(n, path, "a mapping of header names to values", true)
}

// stringMap decodes a mapping of strings to strings; want describes it in
// the problem reported for anything else; with secrets its values are
// secrets (they may read files). Null or absent gives nil.
func (d *decoder) stringMap(n *yaml.Node, path, want string, secrets bool) map[string]string {
	n = resolve(n)
	if n == nil || isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.problemf(path, "must be %s, not %s", want, describe(n))
		return nil
	}
	m := map[string]string{}
	for _, kv := range d.pairs(n, path, 0) {
		p := join(path, kv.key)
		d.lines[p] = kv.line
		if s, ok := d.expandScalar(kv.v, p, secrets); ok {
			m[kv.key] = s
		}
	}
	return m
}

func (d *decoder) decodeRoute(n *yaml.Node, path string, r *Route) bool {
	return d.fields(n, path, routeKeys(), func(key string, v *yaml.Node, p string) {
		switch key {
		case "name":
			d.str(v, p, &r.Name)
		case "match":
			d.decodeMatch(v, p, &r.Match)
		case "not":
			r.Not = &Match{}
			d.decodeMatch(v, p, r.Not)
		case "outputs":
			d.strList(v, p, &r.Outputs)
		case "drop":
			d.boolean(v, p, &r.Drop)
		case "dedup":
			r.Dedup = d.dedup(v, p)
		}
	})
}

func (d *decoder) decodeMatch(n *yaml.Node, path string, m *Match) {
	d.fields(n, path, matchKeys(), func(key string, v *yaml.Node, p string) {
		switch key {
		case "kinds":
			d.strList(v, p, &m.Kinds)
		case "min_priority":
			d.str(v, p, &m.MinPriority)
		case "inputs":
			d.strList(v, p, &m.Inputs)
		case "models":
			d.strList(v, p, &m.Models)
		case "categories":
			d.strList(v, p, &m.Categories)
		case "min_score":
			d.score(v, p, &m.MinScore)
		case "max_score":
			d.score(v, p, &m.MaxScore)
		case "sources":
			d.strList(v, p, &m.Sources)
		case "tags":
			d.strList(v, p, &m.Tags)
		}
	})
}

// dedup decodes a dedup mapping; max_keys defaults to 1,000,000.
func (d *decoder) dedup(n *yaml.Node, path string) *Dedup {
	dd := &Dedup{MaxKeys: DefaultDedupMaxKeys}
	d.fields(n, path, dedupKeys(), func(key string, v *yaml.Node, p string) {
		switch key {
		case "window":
			d.duration(v, p, &dd.Window)
		case "max_keys":
			d.integer(v, p, &dd.MaxKeys)
		}
	})
	return dd
}
