package config

import (
	"net/textproto"
	"path/filepath"
	"strings"
)

// outputKeyUse reports whether key is used by outputs of type typ.
func outputKeyUse(typ, key string) bool {
	switch key {
	case "name", "type", "batch", "queue_size":
		return true
	case "timeout":
		return typ != TypeFile
	case "url", "compression":
		return typ == TypeSekoiaHTTP || typ == TypeHTTP
	case "ca_file", "system_roots":
		return typ != TypeFile
	case "intake_key":
		return typ == TypeSekoiaHTTP || typ == TypeSyslog || typ == TypeRELP
	case "endpoint":
		return typ == TypeSekoiaHTTP
	case "headers":
		return typ == TypeHTTP
	case "server_name", "client_cert_file", "client_key_file":
		return typ == TypeHTTP || typ == TypeSyslog || typ == TypeRELP
	case "address", "tls", "format":
		return typ == TypeSyslog || typ == TypeRELP
	case "framing":
		return typ == TypeSyslog
	case "window", "max_message_size":
		return typ == TypeRELP
	case "path":
		return typ == TypeFile
	}
	return false
}

func (d *decoder) validateOutputs(c *Config) {
	names, files := map[string]string{}, map[string]string{}
	maxMsg := maxMessageSize(c.Inputs)
	for i := range c.Outputs {
		o, p := &c.Outputs[i], d.outputPaths[i]
		d.name(p+".name", o.Name, names)
		if o.Type == "" {
			d.problemf(p+".type", "is required (sekoia-http, syslog, relp, http or file)")
			continue
		}
		if !d.oneOf(p+".type", "type", o.Type, TypeSekoiaHTTP, TypeSyslog, TypeRELP, TypeHTTP, TypeFile) {
			continue
		}
		d.applicable(p, outputKeys(), "type "+o.Type, func(k string) bool { return outputKeyUse(o.Type, k) })
		d.validateBatch(o, p, maxMsg)
		if o.Type != TypeFile && o.Timeout <= 0 {
			d.problemf(p+".timeout", "must be positive, got %s", formatDuration(o.Timeout))
		}
		switch o.Type {
		case TypeSekoiaHTTP:
			d.validateSekoiaHTTP(o, p)
		case TypeHTTP:
			d.validateHTTP(o, p)
		case TypeSyslog:
			d.validateStream(o, p, "intake.sekoia.io:10514")
			d.oneOf(p+".framing", "framing", o.Framing, "octet-counting", "newline")
		case TypeRELP:
			d.validateStream(o, p, "relp.intake.sekoia.io:11514")
			d.validateRELP(o, p, maxMsg)
		case TypeFile:
			if o.Path == "" {
				d.problemf(p+".path", "is required for type file (\"-\" is standard output)")
			} else if first, dup := files[filepath.Clean(o.Path)]; dup {
				d.problemf(p+".path", "%s is written by %s already; two outputs cannot share a file", quote(o.Path), first)
			} else {
				files[filepath.Clean(o.Path)] = p + ".path"
				d.outFile(p+".path", o.Path)
			}
		}
	}
}

func (d *decoder) validateBatch(o *Output, p string, maxMsg Size) {
	if o.Batch.MaxEvents < 1 {
		d.problemf(p+".batch.max_events", "must be at least 1, got %d", o.Batch.MaxEvents)
	}
	if o.Batch.MaxBytes < KiB {
		d.problemf(p+".batch.max_bytes", "must be at least 1KiB, got %s", o.Batch.MaxBytes)
	}
	if o.Type == TypeSekoiaHTTP && o.Batch.MaxBytes >= SekoiaMaxRequest {
		d.problemf(p+".batch.max_bytes", "must stay under Sekoia's %s request limit, got %s", SekoiaMaxRequest, o.Batch.MaxBytes)
	}
	if minQueue := max(KiB, maxMsg); o.QueueSize < minQueue {
		d.problemf(p+".queue_size", "must be at least %s (the largest input max_message_size), got %s", minQueue, o.QueueSize)
	}
}

func (d *decoder) validateSekoiaHTTP(o *Output, p string) {
	if u := d.checkURL(p+".url", o.URL); u != nil {
		if u.Scheme != "https" {
			d.problemf(p+".url", "must be https:// (the intake key must not travel in clear), got %s", quote(redactURL(u)))
		} else if isIP(u.Hostname()) {
			d.warnf(p+".url", "host is an IP address; the intake's certificate names intake.sekoia.io, so TLS verification fails unless this is a proxy with its own certificate")
		}
	}
	if o.IntakeKey == "" {
		d.problemf(p+".intake_key", "is required for type sekoia-http")
	}
	d.headerSecret(p+".intake_key", o.IntakeKey)
	d.shortKeyWarning(p+".intake_key", o.IntakeKey)
	d.oneOf(p+".endpoint", "endpoint", o.Endpoint, "plain", "batch")
	d.oneOf(p+".compression", "compression", o.Compression, "gzip", "none")
	d.caFile(p+".ca_file", o.CAFile)
	d.trustRoots(p, o.CAFile, o.NoSystemRoots)
}

func (d *decoder) validateHTTP(o *Output, p string) {
	if o.URL == "" {
		d.problemf(p+".url", "is required for type http")
	} else if u := d.checkURL(p+".url", o.URL); u != nil && u.Scheme == "http" {
		d.warnf(p+".url", "plain http: events (and headers) travel in clear")
	}
	d.oneOf(p+".compression", "compression", o.Compression, "gzip", "none")
	d.validateHeaders(o.Headers, p+".headers")
	d.caFile(p+".ca_file", o.CAFile)
	d.trustRoots(p, o.CAFile, o.NoSystemRoots)
	d.keyPair(p+".client_cert_file", p+".client_key_file", o.ClientCertFile, o.ClientKeyFile)
}

// validateHeaders checks header names and values; values are never quoted.
func (d *decoder) validateHeaders(h map[string]string, p string) {
	seen := map[string]string{}
	for name, value := range h {
		hp := join(p, name)
		canon := textproto.CanonicalMIMEHeaderKey(name)
		switch {
		case !validToken(name):
			d.problemf(hp, "is not a valid header name")
		case canon == "Content-Length" || canon == "Content-Encoding" || canon == "Transfer-Encoding" || canon == "Host":
			d.problemf(hp, "is set by dtrelay and cannot be configured")
		case strings.ContainsAny(value, "\r\n\x00"):
			d.problemf(hp, "value must not contain CR, LF or NUL")
		case seen[canon] != "":
			d.problemf(hp, "duplicate header (also %s; names are case-insensitive)", seen[canon])
		}
		seen[canon] = hp
	}
}

// validToken reports whether s is an HTTP token (RFC 9110).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// validateStream checks what syslog and relp outputs share: the address
// (example: a sample for the problem's text), format and intake key, TLS.
func (d *decoder) validateStream(o *Output, p, example string) {
	host, hostOK := "", false
	if o.Address == "" {
		d.problemf(p+".address", "is required for type %s (host:port, e.g. %s)", o.Type, example)
	} else {
		host, hostOK = d.dialAddress(p+".address", o.Address)
	}
	if d.oneOf(p+".format", "format", o.Format, "sekoia", "rfc5424", "original") {
		if o.Format == "sekoia" {
			if o.IntakeKey == "" {
				d.problemf(p+".intake_key", "is required with format sekoia")
			}
			d.headerSecret(p+".intake_key", o.IntakeKey)
			d.shortKeyWarning(p+".intake_key", o.IntakeKey)
			if !o.TLS {
				d.warnf(p+".tls", "is false with format sekoia: the intake key and the events travel in clear")
			}
			if hostOK && isIP(host) && !d.isSet(p+".server_name") {
				d.warnf(p+".address", "host is an IP address; the intake's certificate names intake.sekoia.io: set server_name")
			}
		} else if d.has(p + ".intake_key") {
			d.problemf(p+".intake_key", "is used only with format sekoia; remove it")
		}
	}
	if !o.TLS {
		for _, k := range []string{"ca_file", "system_roots", "server_name", "client_cert_file", "client_key_file"} {
			if d.has(p + "." + k) {
				d.problemf(p+"."+k, "is used only with tls: true; remove it")
			}
		}
		return
	}
	d.caFile(p+".ca_file", o.CAFile)
	d.trustRoots(p, o.CAFile, o.NoSystemRoots)
	d.keyPair(p+".client_cert_file", p+".client_key_file", o.ClientCertFile, o.ClientKeyFile)
}

// validateRELP checks a relp output's window and message size; maxMsg is
// the largest input max_message_size.
func (d *decoder) validateRELP(o *Output, p string, maxMsg Size) {
	if o.Window < 1 || o.Window > MaxRELPWindow {
		d.problemf(p+".window", "must be 1 to %d, got %d", MaxRELPWindow, o.Window)
	}
	switch {
	case o.MaxMessageSize < MinMessageSize || o.MaxMessageSize > MaxMessageSize:
		d.problemf(p+".max_message_size", "must be from %s to %s, got %s", MinMessageSize, MaxMessageSize, o.MaxMessageSize)
	case o.MaxMessageSize < maxMsg:
		d.warnf(p+".max_message_size", "is %s, less than an input's max_message_size (%s): larger events go to the dead-letter file, not to this output",
			o.MaxMessageSize, maxMsg)
	}
}
