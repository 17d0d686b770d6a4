package relay

import (
	"bytes"
	"errors"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
)

// metricsLimits bound what the metrics listener may cost. It has no
// authentication and sits beside the syslog inputs in one process: however
// many clients connect, and however slowly they talk, it must not take the
// descriptors and goroutines the inputs need.
type metricsLimits struct {
	// MaxConns caps the connections it holds open; more wait in the
	// kernel's listen backlog, holding no descriptor of the process.
	MaxConns int
	// ReadHeaderTimeout bounds a request's headers (a silent connection is
	// closed after it); ReadTimeout the whole request.
	ReadHeaderTimeout, ReadTimeout time.Duration
	// WriteTimeout bounds an answer; it must exceed the 30 s CPU profile of
	// /debug/pprof/profile.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection between requests.
	IdleTimeout    time.Duration
	MaxHeaderBytes int
}

// defaultMetricsLimits are those of a running relay.
var defaultMetricsLimits = metricsLimits{
	MaxConns:          64,
	ReadHeaderTimeout: 5 * time.Second,
	ReadTimeout:       10 * time.Second,
	WriteTimeout:      40 * time.Second,
	IdleTimeout:       30 * time.Second,
	MaxHeaderBytes:    16 << 10,
}

func (r *Relay) startMetrics() {
	addr := r.cfg.Metrics.Address
	if addr == "" {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		r.log.Warn().Err(err).Str("address", addr).Msg("cannot listen for metrics; carrying on without")
		return
	}
	r.metricsLn = ln
	r.httpSrv, _ = serveMetrics(ln, withStatus(metricsHandler(r.set, r.cfg.Metrics.Pprof, r.liveness, r.readiness), r.Status), defaultMetricsLimits, r.log)
	r.log.Info().Str("address", ln.Addr().String()).Bool("pprof", r.cfg.Metrics.Pprof).Msg("serving metrics")
}

// metricsHandler serves /metrics (set, the process metrics and the
// descriptor counts), /healthz and /readyz (the reasons live and ready
// give, health.go) and, with withPprof, the Go profiler under
// /debug/pprof/.
func metricsHandler(set *metrics.Set, withPprof bool, live, ready func() []healthReason) http.Handler {
	mux := http.NewServeMux()
	// # HELP and # TYPE lines for every family; the library leaves HELP
	// empty, writeHelp fills it in (help.go).
	metrics.ExposeMetadata(true)
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		var buf bytes.Buffer
		set.WritePrometheus(&buf)
		metrics.WriteProcessMetrics(&buf)
		// process_open_fds against process_max_fds: the descriptors the
		// inputs need to accept connections.
		metrics.WriteFDMetrics(&buf)
		_, _ = w.Write(writeHelp(buf.Bytes()))
	})
	mux.HandleFunc("/healthz", healthHandler(live))
	mux.HandleFunc("/readyz", healthHandler(ready))
	if withPprof {
		// Opt-in (metrics.pprof): profiles show the memory of a process
		// that holds the intake keys, to anyone who reaches the address.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	}
	return mux
}

// serveMetrics serves h on ln, within lim, in a goroutine, and returns the
// server (Close it to stop) and the listener that caps its connections.
// The server's own errors (an Accept error, a handler's panic) are logged
// through log, as JSON like every other line.
func serveMetrics(ln net.Listener, h http.Handler, lim metricsLimits, log zerolog.Logger) (*http.Server, *limitListener) {
	log = log.With().Str("component", "metrics").Logger()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      lim.WriteTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		ErrorLog:          stdlog.New(LogWriter(log, zerolog.WarnLevel), "", 0),
	}
	ll := newLimitListener(ln, lim.MaxConns)
	go func() {
		if err := srv.Serve(ll); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("metrics listener failed")
		}
	}()
	return srv, ll
}

// LogWriter returns an io.Writer that logs each line written to it as one
// log event at level, the line as its message: for the standard library's
// loggers (http.Server.ErrorLog, log.SetOutput), so that their lines come out
// as JSON too. Safe for concurrent use.
func LogWriter(log zerolog.Logger, level zerolog.Level) io.Writer {
	return logWriter{log: log, level: level}
}

type logWriter struct {
	log   zerolog.Logger
	level zerolog.Level
}

func (w logWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.log.WithLevel(w.level).Msg(line)
	}
	return len(p), nil
}

// limitListener holds at most cap(slots) accepted connections open: Accept
// takes a slot before it takes a connection from the kernel, and a
// connection gives its slot back when closed. Connections beyond the cap
// wait in the listen backlog, unserved, holding no descriptor of the
// process. (golang.org/x/net/netutil.LimitListener does the same; this
// avoids the dependency for 40 lines.) Safe for concurrent use.
type limitListener struct {
	net.Listener
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func newLimitListener(ln net.Listener, n int) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, max(n, 1)), done: make(chan struct{})}
}

// Accept waits for a free slot, then for a connection.
func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, l: l}, nil
}

// Close closes the listener and wakes an Accept waiting for a slot.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// open returns the number of connections holding a slot.
func (l *limitListener) open() int { return len(l.slots) }

type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { <-c.l.slots })
	return err
}
