package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/internal/rsyslogpeer"
)

// Scenario is one load: what is sent, how, and where the relay forwards it.
type Scenario struct {
	Input    string // "tcp", "udp" or "tls"
	Output   string // OutputSyslog, OutputTLSSyslog, OutputHTTP, OutputHTTPS or OutputRELP
	Size     int    // alert size in bytes of JSON
	MaxSize  int    // > Size: sizes spread over Size..MaxSize
	Mix      Mix    // nil: DefaultMix
	Conns    int
	Framing  Framing
	Header   HeaderStyle
	Rate     float64 // alerts/s in all; 0: as fast as the relay takes them
	Count    uint64  // alerts per run (0: bounded by Duration)
	Duration time.Duration
	// RELPWindow, for OutputRELP: see RelaySpec.RELPWindow.
	RELPWindow int
	// Relays, when not empty, names the only relays Compare runs this
	// scenario through (the standard's cells: dtrelay and the job's best
	// peer); the others are not run and not listed as skipped.
	Relays []string
}

// Name is a short label such as "tcp->tls-syslog 1.5KB c4" (size, then connections).
func (s Scenario) Name() string {
	size := fmtSize(s.Size)
	if s.MaxSize > s.Size {
		size += "-" + fmtSize(s.MaxSize)
	}
	name := fmt.Sprintf("%s->%s %s c%d", s.Input, s.Output, size, s.Conns)
	if s.Output == OutputRELP && s.RELPWindow > 0 {
		name += fmt.Sprintf(" w%d", s.RELPWindow)
	}
	return name
}

func fmtSize(n int) string {
	if n >= 1000 {
		return fmt.Sprintf("%gKB", float64(n/100)/10)
	}
	return fmt.Sprintf("%dB", n)
}

// Point is one sample of a run's time series.
type Point struct {
	T        float64 `json:"t"`        // seconds since the load started
	Sent     uint64  `json:"sent"`     // alerts sent so far
	Received uint64  `json:"received"` // distinct alerts received so far
	CPU      float64 `json:"cpu_s"`    // relay CPU seconds since the load started
	RSS      float64 `json:"rss_mb"`   // relay RSS, MB
}

// RunResult is the outcome of one scenario through one relay.
type RunResult struct {
	Relay        string        `json:"relay"`
	Round        int           `json:"round"`
	Sent         uint64        `json:"sent"`
	Received     uint64        `json:"received"` // distinct alerts
	Duplicates   uint64        `json:"duplicates"`
	Lost         uint64        `json:"lost"`
	Malformed    uint64        `json:"malformed"`
	MissingIDs   []uint64      `json:"missing_ids,omitempty"` // the first few
	SentBytes    uint64        `json:"sent_bytes"`
	Elapsed      time.Duration `json:"-"`
	ElapsedSec   float64       `json:"elapsed_s"` // load start to last alert received
	AlertsPerSec float64       `json:"alerts_per_sec"`
	MBPerSec     float64       `json:"mb_per_sec"` // syslog input MB/s delivered
	P50          float64       `json:"p50_ms"`
	P99          float64       `json:"p99_ms"`
	P999         float64       `json:"p999_ms"`
	MaxLatency   float64       `json:"max_ms"`
	CPUSec       float64       `json:"cpu_s"`
	CPUPerAlert  float64       `json:"cpu_us_per_alert"`
	RSSMB        float64       `json:"rss_mb"` // peak
	// OtherCPU is the CPU, in cores, that processes other than dtbench and
	// the relay used during the load and drain (the machine's busy time
	// from /proc/stat less theirs): near 0 on a quiet machine. For
	// OutputRELP it includes the rsyslog that plays the intake.
	OtherCPU   float64 `json:"other_cpu_cores"`
	FirstEvent string  `json:"first_event,omitempty"` // start of the first event the sink got
	Series     []Point `json:"series,omitempty"`
	Error      string  `json:"error,omitempty"`
}

// RunOptions tunes how a run ends.
type RunOptions struct {
	// DrainIdle ends the wait for outstanding alerts after this long without
	// progress (default 3 s); DrainMax bounds the whole wait (default 60 s).
	DrainIdle, DrainMax time.Duration
	// SampleEvery is the period of the time series (default 250 ms).
	SampleEvery time.Duration
	// OnSample, when set, is called with each sample (progress display).
	OnSample func(Point)
	// RELPPeer is the rsyslog that plays the intake of OutputRELP
	// (RELPSink); empty finds it (rsyslogpeer.Find).
	RELPPeer rsyslogpeer.Install
	Log      zerolog.Logger
}

func (o *RunOptions) defaults() {
	if o.DrainIdle <= 0 {
		o.DrainIdle = 3 * time.Second
	}
	if o.DrainMax <= 0 {
		o.DrainMax = 60 * time.Second
	}
	if o.SampleEvery <= 0 {
		o.SampleEvery = 250 * time.Millisecond
	}
}

// RunOnce sends scenario sc through relay, with the sink playing the intake,
// and measures it. dir is a fresh directory for the relay's files; cert is
// the TLS certificate of the sink (and of a TLS input). An error is returned
// only when the run could not be made (relay or sink failed to start); what
// went wrong during the load is in RunResult.Error.
func RunOnce(ctx context.Context, relay Relay, sc Scenario, dir string, cert *Cert, opts RunOptions) (*RunResult, error) {
	opts.defaults()
	mix := sc.Mix
	if mix == nil {
		mix = DefaultMix()
	}
	gen, err := NewGenerator(mix, sc.Size, max(sc.Size, sc.MaxSize))
	if err != nil {
		return nil, err
	}
	tally := new(Tally)
	spec := &RelaySpec{Dir: dir, Input: sc.Input, Output: sc.Output, Cert: cert, IntakeKey: IntakeKey, Conns: sc.Conns,
		Framing: sc.Framing, Header: sc.Header, RELPWindow: sc.RELPWindow}
	closeSink, err := startSink(spec, tally, opts)
	if err != nil {
		return nil, err
	}
	defer closeSink()
	if spec.InputAddr, err = FreePort(netOf(sc.Input)); err != nil {
		return nil, err
	}
	proc, err := relay.Start(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("cannot start %s: %w", relay.Name(), err)
	}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return proc.Stop(sctx)
	}
	defer stop()

	cfg := SendConfig{Network: sc.Input, Addr: spec.InputAddr, Conns: sc.Conns, Framing: sc.Framing,
		Header: sc.Header, Rate: sc.Rate, Count: sc.Count, Duration: sc.Duration}
	if sc.Input == "tls" {
		cfg.TLS = cert.ClientConfig()
	}
	sender, err := NewSender(cfg, gen)
	if err != nil {
		return nil, err
	}
	res := &RunResult{Relay: relay.Name()}
	m := newMeter(proc.Pid(), tally, sender, opts)
	start := time.Now()
	m.start = start
	m.sample() // CPU baseline
	self := NewProcSampler(os.Getpid())
	busy0, busyErr := MachineBusy()
	self0, selfErr := self.Sample()

	sendCtx := ctx
	if sc.Duration <= 0 {
		// A count-bounded load still needs a bound when the relay stalls.
		var cancel context.CancelFunc
		sendCtx, cancel = context.WithTimeout(ctx, 10*time.Minute)
		defer cancel()
	}
	type sendOut struct {
		st  SendStats
		err error
	}
	done := make(chan sendOut, 1)
	go func() {
		st, err := sender.Run(sendCtx)
		done <- sendOut{st, err}
	}()
	tick := time.NewTicker(opts.SampleEvery)
	defer tick.Stop()
	var so sendOut
wait:
	for {
		select {
		case so = <-done:
			break wait
		case <-tick.C:
			m.sample()
		}
	}
	if so.err != nil {
		res.Error = so.err.Error()
	}
	// Drain: wait for what is in flight, until all arrived or no progress.
	drainStart, lastProgress := time.Now(), time.Now()
	prev := tally.Counts().Unique()
	for ctx.Err() == nil {
		u := tally.Counts().Unique()
		if u >= so.st.Sent {
			break
		}
		if u != prev {
			prev, lastProgress = u, time.Now()
		}
		if time.Since(lastProgress) > opts.DrainIdle || time.Since(drainStart) > opts.DrainMax {
			break
		}
		select {
		case <-tick.C:
			m.sample()
		case <-time.After(20 * time.Millisecond):
		}
	}
	m.sample()
	cpu := m.cpu // CPU before the relay's shutdown work
	busy1, busyErr1 := MachineBusy()
	self1, selfErr1 := self.Sample()
	if wall := time.Since(start); busyErr == nil && selfErr == nil && busyErr1 == nil && selfErr1 == nil && wall > 0 {
		other := (busy1 - busy0) - (self1.CPU - self0.CPU) - cpu
		res.OtherCPU = max(0, other.Seconds()/wall.Seconds())
	}
	if err := stop(); err != nil {
		opts.Log.Warn().Err(err).Str("relay", relay.Name()).Msg("relay stop")
	}
	closeSink() // alerts flushed at shutdown still count
	c := tally.Counts()
	res.Sent, res.SentBytes = so.st.Sent, so.st.Bytes
	res.Received, res.Duplicates, res.Malformed = c.Unique(), c.Duplicates, c.Malformed
	res.Lost, res.MissingIDs = tally.Missing(so.st.Sent, 10)
	if c.Last > 0 {
		res.Elapsed = time.Duration(c.Last - start.UnixNano())
	}
	res.ElapsedSec = res.Elapsed.Seconds()
	if res.Elapsed > 0 {
		res.AlertsPerSec = float64(res.Received) / res.Elapsed.Seconds()
		if res.Sent > 0 {
			res.MBPerSec = float64(res.SentBytes) / float64(res.Sent) * res.AlertsPerSec / 1e6
		}
	}
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	res.P50, res.P99, res.P999 = ms(tally.Latency.Quantile(0.5)), ms(tally.Latency.Quantile(0.99)), ms(tally.Latency.Quantile(0.999))
	res.MaxLatency = ms(tally.Latency.Max())
	res.CPUSec = cpu.Seconds()
	if res.Received > 0 && proc.Pid() > 0 {
		res.CPUPerAlert = float64(cpu.Microseconds()) / float64(res.Received)
	}
	res.RSSMB = m.rssMax / 1e6
	res.Series = m.series
	res.FirstEvent = string(tally.FirstEvent())
	if res.Error == "" && m.err != nil && proc.Pid() > 0 {
		res.Error = m.err.Error()
	}
	return res, nil
}

// startSink starts the sink spec.Output needs and fills spec's sink fields.
func startSink(spec *RelaySpec, tally *Tally, opts RunOptions) (func() error, error) {
	log := opts.Log
	switch spec.Output {
	case OutputRELP:
		s, err := NewRELPSink(opts.RELPPeer, filepath.Join(spec.Dir, "relp-sink"), spec.Cert, tally, log)
		if err != nil {
			return nil, err
		}
		spec.SinkAddr = s.Addr()
		return once(s.Close), nil
	case OutputHTTPS, OutputHTTP:
		tc := spec.Cert.ServerConfig()
		if spec.Output == OutputHTTP {
			tc = nil
		}
		s, err := NewHTTPSink("127.0.0.1:0", tc, spec.IntakeKey, tally, log)
		if err != nil {
			return nil, err
		}
		spec.SinkURL, spec.SinkAddr = s.URL(tc != nil), s.Addr()
		return once(s.Close), nil
	case OutputSyslog, OutputTLSSyslog:
		var tc = spec.Cert.ServerConfig()
		if spec.Output == OutputSyslog {
			tc = nil
		}
		s, err := NewSyslogSink("127.0.0.1:0", tc, tally, log)
		if err != nil {
			return nil, err
		}
		spec.SinkAddr = s.Addr()
		return once(s.Close), nil
	}
	return nil, fmt.Errorf("bench: unknown output %q (want syslog, tls-syslog, http, https or relp)", spec.Output)
}

func once(f func() error) func() error {
	done := false
	return func() error {
		if done {
			return nil
		}
		done = true
		return f()
	}
}

// meter samples the load's progress and the relay's resources.
type meter struct {
	start   time.Time
	proc    *ProcSampler
	cpu0    time.Duration
	cpu     time.Duration // since start
	rssMax  float64
	tally   *Tally
	sender  *Sender
	series  []Point
	opts    RunOptions
	err     error // the first sampling failure
	started bool
}

func newMeter(pid int, tally *Tally, sender *Sender, opts RunOptions) *meter {
	m := &meter{tally: tally, sender: sender, opts: opts}
	if pid > 0 {
		m.proc = NewProcSampler(pid)
	}
	return m
}

func (m *meter) sample() {
	p := Point{T: time.Since(m.start).Seconds(), Sent: m.sender.Sent(), Received: m.tally.Counts().Unique()}
	if m.proc != nil {
		s, err := m.proc.Sample()
		switch {
		case err != nil:
			if m.err == nil && !errors.Is(err, os.ErrNotExist) {
				m.err = err
			} else if m.err == nil {
				m.err = errors.New("bench: relay process exited during the run")
			}
		case !m.started:
			m.cpu0, m.started = s.CPU, true
		default:
			m.cpu = s.CPU - m.cpu0
		}
		if err == nil {
			p.RSS = float64(s.RSS) / 1e6
			m.rssMax = max(m.rssMax, float64(s.RSS))
		}
		p.CPU = m.cpu.Seconds()
	}
	m.series = append(m.series, p)
	if m.opts.OnSample != nil {
		m.opts.OnSample(p)
	}
}

// mkRunDir creates a fresh directory for one run under base.
func mkRunDir(base, name string) (string, error) {
	d, err := os.MkdirTemp(base, name+"-")
	if err != nil {
		return "", fmt.Errorf("cannot create run directory: %w", err)
	}
	return d, nil
}
