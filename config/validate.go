package config

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/dtrelay/dtrelay/parser"
	"github.com/dtrelay/dtrelay/spool"
)

// Limits of values that cannot work outside them.
const (
	MinMessageSize  = 1 * KiB
	MaxMessageSize  = 16 * MiB
	MinPollInterval = time.Second
	// SekoiaMaxRequest is Sekoia's request size limit; a batch must stay
	// under it.
	SekoiaMaxRequest = 10 * MiB
	// shortIntakeKey is the length under which an intake key looks wrong.
	shortIntakeKey = 16
)

// validate checks a decoded and completed Config, adding a problem for what
// cannot work and a warning for what is unusual.
func (d *decoder) validate(c *Config) {
	if len(c.Inputs) == 0 && !d.problemsIn("inputs") {
		d.problemf("inputs", "at least one input is required")
	}
	if len(c.Outputs) == 0 && !d.problemsIn("outputs") {
		d.problemf("outputs", "at least one output is required")
	}
	d.validateInputs(c.Inputs)
	d.validatePartial(c)
	d.validateOutputs(c)
	d.validateRoutes(c)
	if h := c.Heartbeat; h != nil {
		d.validateHeartbeat(h, c.Outputs)
	}
	if c.Spool != nil {
		d.validateSpool(c.Spool, c.Inputs)
		d.validateSpoolRename(c)
	}
	d.validateDeadLetter(&c.DeadLetter, maxMessageSize(c.Inputs))
	if c.Metrics.MaxSources < 1 && !d.problemsIn("metrics.max_sources") {
		d.problemf("metrics.max_sources", "must be at least 1, got %d", c.Metrics.MaxSources)
	}
	if c.Metrics.Address != "" {
		if host, _, ok := d.listenAddress("metrics.address", c.Metrics.Address); ok && !isLoopback(host) {
			served := "/metrics, /healthz and /readyz are"
			if c.Metrics.Pprof {
				served = "/metrics, /healthz, /readyz and /debug/pprof (pprof: true) are"
			}
			d.warnf("metrics.address", "is not a loopback address: %s served without authentication to every host that can reach it", served)
		}
	} else {
		if c.Metrics.Pprof {
			d.warnf("metrics.pprof", "has no effect without metrics.address")
		}
		if d.isSet("metrics.unready_after") {
			d.warnf("metrics.unready_after", "has no effect without metrics.address")
		}
	}
	d.shutdownWarning(c)
}

// systemdStopTimeout is systemd's default TimeoutStopSec: a unit still
// running that long after SIGTERM is killed (SIGKILL), its drain cut short.
const systemdStopTimeout = 90 * time.Second

// shutdownWarning warns when shutdown_delay and shutdown_timeout together
// outlast systemd's default stop timeout.
func (d *decoder) shutdownWarning(c *Config) {
	if total := c.ShutdownDelay + c.ShutdownTimeout; total > systemdStopTimeout && d.isSet("shutdown_delay") {
		d.warnf("shutdown_delay", "%s plus shutdown_timeout %s is longer than systemd's default TimeoutStopSec (%s): "+
			"raise TimeoutStopSec in the unit, or systemd kills the relay before its drain ends",
			formatDuration(c.ShutdownDelay), formatDuration(c.ShutdownTimeout), formatDuration(systemdStopTimeout))
	}
}

// isLoopback reports whether a listen host is loopback only: a loopback IP
// address or "localhost". An empty host is every interface.
func isLoopback(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// problemsIn reports whether path or anything under it has a problem.
func (d *decoder) problemsIn(path string) bool {
	for p := range d.bad {
		if p == path || strings.HasPrefix(p, path+"[") || strings.HasPrefix(p, path+".") {
			return true
		}
	}
	return false
}

// maxMessageSize returns the largest valid max_message_size of inputs (an
// invalid one is reported already and must not cause more problems).
func maxMessageSize(inputs []Input) Size {
	var m Size
	for _, in := range inputs {
		if in.MaxMessageSize <= MaxMessageSize {
			m = max(m, in.MaxMessageSize)
		}
	}
	return m
}

// inputKeyUse reports whether key is used by inputs of protocol.
func inputKeyUse(protocol, key string) bool {
	switch key {
	case "name", "protocol", "max_message_size", "silent_after":
		return true
	case "address", "allow", "strict":
		return protocol != ProtocolDarktraceAPI
	case "proxy_protocol", "trusted_proxies", "max_connections", "max_connections_per_source", "idle_timeout",
		"handshake_timeout":
		return protocol == ProtocolTCP || protocol == ProtocolTLS
	case "tls":
		return protocol == ProtocolTLS
	}
	return protocol == ProtocolDarktraceAPI // url, tokens, interval, ca_file, system_roots, state_dir, overlap, timeout
}

// listener identifies a listening socket: "tcp" or "udp" and a port.
type listener struct {
	network string
	port    int
}

type bound struct{ host, path string }

func (d *decoder) validateInputs(inputs []Input) {
	names := map[string]string{}
	listeners := map[listener][]bound{}
	for i := range inputs {
		in, p := &inputs[i], d.inputPaths[i]
		d.name(p+".name", in.Name, names)
		if in.Protocol == "" {
			d.problemf(p+".protocol", "is required (tcp, udp, tls or darktrace-api)")
			continue
		}
		if !d.oneOf(p+".protocol", "protocol", in.Protocol, ProtocolTCP, ProtocolUDP, ProtocolTLS, ProtocolDarktraceAPI) {
			continue
		}
		d.applicable(p, inputKeys(), "protocol "+in.Protocol, func(k string) bool { return inputKeyUse(in.Protocol, k) })
		if in.MaxMessageSize < MinMessageSize || in.MaxMessageSize > MaxMessageSize {
			d.problemf(p+".max_message_size", "must be from %s to %s, got %s", MinMessageSize, MaxMessageSize, in.MaxMessageSize)
		}
		d.largeMessageWarning(in, p)
		if in.SilentAfter < 0 {
			d.problemf(p+".silent_after", "must not be negative (0: never), got %s", formatDuration(in.SilentAfter))
		}
		if in.Protocol == ProtocolDarktraceAPI {
			d.validatePoller(in, p)
			continue
		}
		if in.Address == "" {
			d.problemf(p+".address", "is required for protocol %s", in.Protocol)
		} else if host, port, ok := d.listenAddress(p+".address", in.Address); ok && port != 0 {
			network := "tcp"
			if in.Protocol == ProtocolUDP {
				network = "udp"
			}
			l := listener{network, port}
			for _, b := range listeners[l] {
				if b.host == host || b.host == "" || host == "" || isUnspecified(b.host) || isUnspecified(host) {
					d.problemf(p+".address", "%s conflicts with %s (%s on the same port)", quote(in.Address), b.path, network)
					break
				}
			}
			listeners[l] = append(listeners[l], bound{host, p + ".address"})
		}
		if in.Protocol != ProtocolUDP {
			d.validateConnLimits(in, p)
		}
		if in.Protocol == ProtocolTLS {
			d.validateInputTLS(in.TLS, p+".tls")
		}
	}
}

func isUnspecified(host string) bool { return host == "0.0.0.0" || host == "::" }

func (d *decoder) validateInputTLS(t *InputTLS, p string) {
	if t == nil {
		d.problemf(p, "is required for protocol tls: {cert_file: ..., key_file: ...}")
		return
	}
	if t.CertFile == "" {
		d.problemf(p+".cert_file", "is required")
	}
	if t.KeyFile == "" {
		d.problemf(p+".key_file", "is required")
	}
	if t.CertFile != "" && t.KeyFile != "" {
		d.keyPair(p+".cert_file", p+".key_file", t.CertFile, t.KeyFile)
	}
	d.caFile(p+".client_ca_file", t.ClientCAFile)
}

func (d *decoder) validatePoller(in *Input, p string) {
	if in.URL == "" {
		d.problemf(p+".url", "is required for protocol darktrace-api")
	} else if u := d.checkURL(p+".url", in.URL); u != nil && u.Scheme == "http" {
		d.warnf(p+".url", "plain http: the API token and the alerts travel in clear")
	}
	if in.PublicToken == "" {
		d.problemf(p+".public_token", "is required for protocol darktrace-api")
	}
	if in.PrivateToken == "" {
		d.problemf(p+".private_token", "is required for protocol darktrace-api")
	}
	d.headerSecret(p+".public_token", in.PublicToken)
	d.headerSecret(p+".private_token", in.PrivateToken)
	if in.Interval < MinPollInterval {
		d.problemf(p+".interval", "must be at least %s, got %s", formatDuration(MinPollInterval), formatDuration(in.Interval))
	}
	d.caFile(p+".ca_file", in.CAFile)
	d.trustRoots(p, in.CAFile, in.NoSystemRoots)
	if in.Overlap < time.Second || in.Overlap > MaxPollOverlap {
		d.problemf(p+".overlap", "must be from 1s to %s, got %s", formatDuration(MaxPollOverlap), formatDuration(in.Overlap))
	}
	if in.Timeout < time.Second {
		d.problemf(p+".timeout", "must be at least 1s, got %s", formatDuration(in.Timeout))
	}
}

// MaxPollOverlap is the longest overlap: below the poller's one-hour
// window cap.
const MaxPollOverlap = 30 * time.Minute

func (d *decoder) validateRoutes(c *Config) {
	inputs, outputs := map[string]bool{}, map[string]bool{}
	for _, in := range c.Inputs {
		inputs[in.Name] = true
	}
	for _, o := range c.Outputs {
		outputs[o.Name] = true
	}
	kinds := make([]string, 0, len(parser.Kinds()))
	for _, k := range parser.Kinds() {
		kinds = append(kinds, k.String())
	}
	if c.RouteMode != "" {
		d.oneOf("route_mode", "route_mode", c.RouteMode, RouteModeAll, RouteModeFirst)
	}
	routed, names := map[string]bool{}, map[string]string{}
	for i := range c.Routes {
		r, p := &c.Routes[i], d.routePaths[i]
		if d.has(p + ".name") {
			d.name(p+".name", r.Name, names)
		}
		d.validateMatch(&r.Match, p+".match", inputs, kinds)
		if r.Not != nil {
			if r.Not.empty() {
				d.problemf(p+".not", "is empty: it would exclude every event; list what to exclude, or remove it")
			}
			d.validateMatch(r.Not, p+".not", inputs, kinds)
		}
		if r.Dedup != nil {
			d.validateDedup(r.Dedup, p+".dedup", c.Spool)
		}
		switch {
		case r.Drop && len(r.Outputs) > 0:
			d.problemf(p+".outputs", "a drop route sends events nowhere: remove its outputs (or drop: true)")
		case r.Drop && r.Dedup != nil:
			d.problemf(p+".dedup", "a drop route sends nothing to de-duplicate: remove it")
		case !r.Drop && len(r.Outputs) == 0:
			d.problemf(p+".outputs", "at least one output is required (or drop: true to drop what the route matches)")
		}
		seen := map[string]bool{}
		for j, name := range r.Outputs {
			op := index(p+".outputs", j)
			switch {
			case !outputs[name]:
				d.problemf(op, "no output is named %s", quote(name))
			case seen[name]:
				d.problemf(op, "output %s is listed twice", quote(name))
			}
			seen[name], routed[name] = true, true
		}
	}
	if len(c.Routes) == 0 {
		return
	}
	for i, o := range c.Outputs {
		if o.Name != "" && !routed[o.Name] {
			d.warnf(d.outputPaths[i]+".name", "no route sends events to output %s", quote(o.Name))
		}
	}
}

// empty reports whether m sets nothing (it matches every event).
func (m *Match) empty() bool {
	return len(m.Kinds) == 0 && m.MinPriority == "" && len(m.Inputs) == 0 && len(m.Models) == 0 &&
		len(m.Categories) == 0 && m.MinScore == nil && m.MaxScore == nil && len(m.Sources) == 0 && len(m.Tags) == 0
}

// Categories a match may name (any case): Darktrace's model and AI Analyst
// categories.
var matchCategories = []string{"critical", "suspicious", "compliance", "informational"}

func (d *decoder) validateMatch(m *Match, p string, inputs map[string]bool, kinds []string) {
	for j, k := range m.Kinds {
		if _, ok := parser.ParseKind(k); !ok {
			d.problemf(index(p+".kinds", j), "unknown kind %s (want %s)", quote(k), orList(kinds))
		}
	}
	if mp := m.MinPriority; mp != "" {
		if _, ok := parser.ParsePriority(mp); !ok {
			d.problemf(p+".min_priority", "unknown priority %s (want none, low, medium or high)", quote(mp))
		}
	}
	for j, name := range m.Inputs {
		if !inputs[name] {
			d.problemf(index(p+".inputs", j), "no input is named %s", quote(name))
		}
	}
	for j, c := range m.Categories {
		if !slices.Contains(matchCategories, strings.ToLower(c)) {
			d.problemf(index(p+".categories", j), "unknown category %s (want %s)", quote(c), orList(matchCategories))
		}
	}
	for _, list := range []struct {
		key string
		v   []string
	}{{"models", m.Models}, {"sources", m.Sources}, {"tags", m.Tags}} {
		for j, s := range list.v {
			if s == "" {
				d.problemf(index(p+"."+list.key, j), "must not be empty")
			}
		}
	}
	if m.MinScore != nil && m.MaxScore != nil && *m.MinScore > *m.MaxScore {
		d.problemf(p+".max_score", "is below min_score (%g): nothing can match", *m.MinScore)
	}
}

func (d *decoder) validateDedup(dd *Dedup, p string, sp *Spool) {
	if dd.Window <= 0 {
		d.problemf(p+".window", "must be positive, e.g. 10m, got %s", formatDuration(dd.Window))
	}
	if dd.MaxKeys < 1 {
		d.problemf(p+".max_keys", "must be at least 1, got %d", dd.MaxKeys)
	}
	if sp == nil {
		d.warnf(p, "without a spool the de-duplication memory is lost at every restart: alerts sent just before one may be sent again")
	}
}

// SpoolRecordOverhead is what the pipeline adds to a message in a spool
// record (forward.SpoolRecordSize; internal/relay tests that they agree).
const SpoolRecordOverhead = 64

func (d *decoder) validateSpool(s *Spool, inputs []Input) {
	if s.Dir == "" {
		d.problemf("spool.dir", "is required")
	} else if fi, err := os.Stat(s.Dir); err == nil && !fi.IsDir() {
		d.problemf("spool.dir", "%s is not a directory", quote(s.Dir))
	}
	maxMsg := maxMessageSize(inputs)
	// The spool needs a few segments that each hold the largest record, or
	// such a record could never be spooled.
	need := (Size(spool.MinMaxSize(int(maxMsg)+SpoolRecordOverhead)) + MiB - 1) / MiB * MiB
	switch {
	case s.MaxSize < max(MiB, maxMsg):
		d.problemf("spool.max_size", "must be at least %s, got %s", max(MiB, maxMsg), s.MaxSize)
	case s.MaxSize < need:
		from := ""
		for i, in := range inputs {
			if in.MaxMessageSize == maxMsg {
				from = d.inputPaths[i] + ".max_message_size"
				break
			}
		}
		d.problemf("spool.max_size", "must be at least %s to hold 4 segments of the largest message (%s: %s), got %s",
			need, from, maxMsg, s.MaxSize)
	}
	if s.FsyncInterval <= 0 {
		d.problemf("spool.fsync_interval", "must be positive, got %s", formatDuration(s.FsyncInterval))
	}
	d.oneOf("spool.when_full", "when_full", s.WhenFull, "block", "drop_oldest")
}

// validateDeadLetter: the directory, when it exists, must be one, and each
// file must hold a few of the largest events (a line can be twice its
// payload, escaped as a JSON string).
func (d *decoder) validateDeadLetter(dl *DeadLetter, maxMsg Size) {
	if fi, err := os.Stat(dl.Dir); err == nil && !fi.IsDir() {
		d.problemf("dead_letter.dir", "%s is not a directory", quote(dl.Dir))
	}
	if minSize := max(MiB, 4*maxMsg); dl.MaxSize < minSize {
		d.problemf("dead_letter.max_size", "must be at least %s (four times the largest max_message_size, 1MiB at least), got %s", minSize, dl.MaxSize)
	}
}

// headerSecret refuses a secret holding a control character: intake keys
// and API tokens go into HTTP headers and syslog structured data, where a CR
// or LF ends the header or the frame and lets what follows be injected. The
// value is never quoted.
func (d *decoder) headerSecret(path, v string) {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			d.problemf(path, "must not contain CR, LF or other control characters")
			return
		}
	}
}

// shortKeyWarning warns about an intake key too short to be one, without
// saying anything about its value.
func (d *decoder) shortKeyWarning(path, key string) {
	if key != "" && len(key) < shortIntakeKey {
		d.warnf(path, "%s", fmt.Sprintf("is shorter than %d characters; Sekoia intake keys are longer, check it", shortIntakeKey))
	}
}

// validateHeartbeat checks heartbeat: interval at least 1s, outputs named.
func (d *decoder) validateHeartbeat(h *Heartbeat, outs []Output) {
	if h.Interval < time.Second && !d.problemsIn("heartbeat.interval") {
		d.problemf("heartbeat.interval", "must be at least 1s, got %s", formatDuration(h.Interval))
	}
	names := map[string]bool{}
	for _, o := range outs {
		names[o.Name] = true
	}
	for j, name := range h.Outputs {
		if !names[name] {
			d.problemf(index("heartbeat.outputs", j), "no output is named %s", quote(name))
		}
	}
}
