package receiver

import (
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Metrics are the counters of one input, registered in a metrics.Set under
// the label input="NAME". All methods are safe for concurrent use; the
// listeners publish once per read, never per frame.
type Metrics struct {
	frames           *metrics.Counter
	bytes            *metrics.Counter
	oversize         *metrics.Counter
	truncated        *metrics.Counter
	proxyErrors      *metrics.Counter
	connections      *metrics.Gauge
	connectionsTotal *metrics.Counter
	rejectAllow      *metrics.Counter
	rejectMax        *metrics.Counter
	rejectTLS        *metrics.Counter
	idleClosed       *metrics.Counter
	lastFrame        *metrics.Gauge
}

// NewMetrics registers (or finds, if already registered) the metrics of the
// input named input in set:
//
//	dtrelay_input_frames_total{input}
//	dtrelay_input_bytes_total{input}
//	dtrelay_input_errors_total{input,reason="oversize"|"truncated"|"proxy_protocol"}
//	dtrelay_input_connections{input}
//	dtrelay_input_connections_total{input}
//	dtrelay_input_rejected_connections_total{input,reason="allow"|"max_connections"|"tls_handshake"}
//	dtrelay_input_idle_closed_total{input}
//	dtrelay_input_last_frame_timestamp_seconds{input}
func NewMetrics(set *metrics.Set, input string) *Metrics {
	l := `input="` + escapeLabel(input) + `"`
	name := func(base string) string { return base + "{" + l + "}" }
	reason := func(base, r string) string { return base + "{" + l + `,reason="` + r + `"}` }
	const errs = "dtrelay_input_errors_total"
	const rej = "dtrelay_input_rejected_connections_total"
	return &Metrics{
		frames:           set.GetOrCreateCounter(name("dtrelay_input_frames_total")),
		bytes:            set.GetOrCreateCounter(name("dtrelay_input_bytes_total")),
		oversize:         set.GetOrCreateCounter(reason(errs, "oversize")),
		truncated:        set.GetOrCreateCounter(reason(errs, "truncated")),
		proxyErrors:      set.GetOrCreateCounter(reason(errs, "proxy_protocol")),
		connections:      set.GetOrCreateGauge(name("dtrelay_input_connections"), nil),
		connectionsTotal: set.GetOrCreateCounter(name("dtrelay_input_connections_total")),
		rejectAllow:      set.GetOrCreateCounter(reason(rej, "allow")),
		rejectMax:        set.GetOrCreateCounter(reason(rej, "max_connections")),
		rejectTLS:        set.GetOrCreateCounter(reason(rej, "tls_handshake")),
		idleClosed:       set.GetOrCreateCounter(name("dtrelay_input_idle_closed_total")),
		lastFrame:        set.GetOrCreateGauge(name("dtrelay_input_last_frame_timestamp_seconds"), nil),
	}
}

// publish adds the counters of one read.
func (m *Metrics) publish(s FramerStats) {
	if s.Bytes != 0 {
		m.bytes.Add(int(s.Bytes))
	}
	if s.Frames != 0 {
		m.frames.Add(int(s.Frames))
		m.lastFrame.Set(float64(time.Now().UnixMilli()) / 1e3)
	}
	if s.Oversize != 0 {
		m.oversize.Add(int(s.Oversize))
	}
	if s.Truncated != 0 {
		m.truncated.Add(int(s.Truncated))
	}
}

func (m *Metrics) opened() {
	m.connections.Inc()
	m.connectionsTotal.Inc()
}

func (m *Metrics) closed() { m.connections.Dec() }

// escapeLabel escapes a Prometheus label value.
func escapeLabel(s string) string {
	if !strings.ContainsAny(s, "\\\"\n") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return r.Replace(s)
}
