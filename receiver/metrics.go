package receiver

import (
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/dtrelay/dtrelay/internal/promlabel"
)

// Metrics are the counters of one input, registered in a metrics.Set under
// the label input="NAME". All methods are safe for concurrent use; the
// listeners publish once per read, never per frame.
type Metrics struct {
	set              *metrics.Set
	label            string // input="NAME"
	kernel           atomic.Pointer[func() uint64]
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
	proxyLocal       *metrics.Counter
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
//	dtrelay_input_proxy_local_total{input}
//	dtrelay_input_last_frame_timestamp_seconds{input}
//	dtrelay_input_discarded_total{input,reason="kernel_drop"}   (udp inputs, Linux)
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
// proxy_local counts connections from a trusted proxy that sent a LOCAL
// header (its health checks), accepted whatever allow says.
func NewMetrics(set *metrics.Set, input string) *Metrics {
	l := `input="` + promlabel.Escape(input) + `"`
	name := func(base string) string { return base + "{" + l + "}" }
	reason := func(base, r string) string { return base + "{" + l + `,reason="` + r + `"}` }
	const errs = "dtrelay_input_errors_total"
	const rej = "dtrelay_input_rejected_connections_total"
	return &Metrics{
		set:              set,
		label:            l,
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
		proxyLocal:       set.GetOrCreateCounter(name("dtrelay_input_proxy_local_total")),
		lastFrame:        set.GetOrCreateGauge(name("dtrelay_input_last_frame_timestamp_seconds"), nil),
	}
}

// watchKernelDrops exports total, the kernel's count of datagrams it
// dropped on a udp input's sockets (receive buffer full), as
// dtrelay_input_discarded_total{input,reason="kernel_drop"}, read at each
// scrape. A later call replaces total.
func (m *Metrics) watchKernelDrops(total func() uint64) {
	m.kernel.Store(&total)
	m.set.GetOrCreateGauge(`dtrelay_input_discarded_total{`+m.label+`,reason="kernel_drop"}`, func() float64 {
		return float64((*m.kernel.Load())())
	})
}

// KernelDrops returns the current kernel_drop count (0 for inputs other
// than udp).
func (m *Metrics) KernelDrops() uint64 {
	if f := m.kernel.Load(); f != nil {
		return (*f)()
	}
	return 0
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
