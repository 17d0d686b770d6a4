package receiver

import (
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/dtrelay/dtrelay/internal/promlabel"
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
	rejectUntrusted  *metrics.Counter
	rejectPerSource  *metrics.Counter
	rejectHandshake  *metrics.Counter
	evicted          *metrics.Counter
	partialCap       *metrics.Counter
	idleClosed       *metrics.Counter
	lastFrame        *metrics.Gauge
}

// NewMetrics registers (or finds, if already registered) the metrics of the
// input named input in set:
//
//	dtrelay_input_frames_total{input}
//	dtrelay_input_bytes_total{input}
//	dtrelay_input_errors_total{input,reason="oversize"|"truncated"|"proxy_protocol"|"partial_frame_cap"}
//	dtrelay_input_connections{input}
//	dtrelay_input_connections_total{input}
//	dtrelay_input_rejected_connections_total{input,reason=R}
//	dtrelay_input_idle_closed_total{input}
//	dtrelay_input_last_frame_timestamp_seconds{input}
//
// A rejected connection is one closed before it completed a frame, R says
// why: "allow" (source not in allow), "untrusted_proxy" (proxy_protocol and
// a peer not in trusted_proxies, refused before anything is read),
// "max_connections" (cap reached, every connection has completed a frame),
// "per_source_limit" (max_connections_per_source), "evicted" (closed to make
// room for a new one, as the oldest without a frame), "handshake_timeout" (the
// PROXY header or TLS handshake not done within handshake_timeout),
// "tls_handshake" (the handshake failed).
// "partial_frame_cap" counts connections closed because the process-wide
// max_partial_bytes was exceeded and they held the largest partial frame.
func NewMetrics(set *metrics.Set, input string) *Metrics {
	l := `input="` + promlabel.Escape(input) + `"`
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
		rejectUntrusted:  set.GetOrCreateCounter(reason(rej, "untrusted_proxy")),
		rejectPerSource:  set.GetOrCreateCounter(reason(rej, "per_source_limit")),
		rejectHandshake:  set.GetOrCreateCounter(reason(rej, "handshake_timeout")),
		evicted:          set.GetOrCreateCounter(reason(rej, "evicted")),
		partialCap:       set.GetOrCreateCounter(reason(errs, "partial_frame_cap")),
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
