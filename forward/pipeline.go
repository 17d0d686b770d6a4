package forward

import (
	"context"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/parser"
	"github.com/dtrelay/dtrelay/spool"
)

// InputSpec describes one input feeding the pipeline.
type InputSpec struct {
	Name string
	// Datagram inputs (UDP) never wait for a full queue: a sender cannot be
	// slowed down, so what does not fit is dropped and counted dropped_full.
	Datagram bool
	// Strict also rejects payloads that are not valid UTF-8
	// (parser.Classifier.Strict).
	Strict bool
	// Track makes every block of the input report its delivery, for
	// Producer.FlushWait (a poller's input; a channel per block).
	Track bool
	// Source, when set, names the one source of every message of the
	// input (a poller's instance) for Options.Sources; else a message's
	// HOSTNAME, or the peer address, does.
	Source string
}

// Options configures a Pipeline.
type Options struct {
	Inputs  []InputSpec
	Outputs []OutputSpec
	Routes  []RouteSpec
	// RouteMode is RouteAll (the default: every matching route) or
	// RouteFirst (the first matching route only).
	RouteMode string
	// StateDir, when set (the spool's directory), keeps the
	// de-duplication state across restarts: loaded at New, saved every
	// dedupSaveEvery and at Stop.
	StateDir string
	// MaxPayload caps the JSON the classifier parses (the input's
	// max_message_size); larger payloads are counted not_json.
	MaxPayload int
	// Spool, when set, makes the pipeline durable (see spool.go). Its
	// consumers must be the outputs' names, in the order of Outputs. The
	// caller closes it after Stop.
	Spool   *spool.Spool
	Metrics *metrics.Set
	Log     zerolog.Logger
	// Sources, when set, is told what each sender sent, once per read.
	Sources SourceObserver
}

// Pipeline joins inputs to outputs. Create it with New, feed it through the
// ProducerPool of each input, and stop it with Stop.
type Pipeline struct {
	router atomic.Pointer[Router] // replaced by SetRoutes
	srcObs SourceObserver         // Options.Sources
	// Events of Inject refused by a full queue.
	injectDropped *metrics.Counter
	outputs       []*output
	// De-duplication state kept in stateDir; stopSaving ends its saver.
	stateDir   string
	dedupDir   string // Options.StateDir, for a reload that adds de-duplication
	stopSaving chan struct{}
	saverDone  chan struct{}
	poolMu     sync.Mutex // guards pools and stalls (SetInput)
	pools      []*ProducerPool
	stalls     map[string]*stalls // by input name: a replaced pool's gauges read the same
	log        zerolog.Logger
	set        *metrics.Set
	cancel     context.CancelFunc

	// With a spool.
	spool     *spool.Spool
	pubMu     sync.Mutex     // orders spool appends and queue pushes
	recs      [][]byte       // scratch of publishSpooled, under pubMu
	sources   []*spoolSource // the outputs' sources, with a spool
	stopping  atomic.Bool
	spoolLost *metrics.Counter
	sampled   zerolog.Logger
}

// New builds the pipeline and starts one batcher goroutine per output.
func New(opts Options) (*Pipeline, error) {
	if opts.Metrics == nil {
		opts.Metrics = metrics.NewSet()
	}
	ro := RouterOptions{Outputs: len(opts.Outputs), Mode: opts.RouteMode, Metrics: opts.Metrics}
	for i, o := range opts.Outputs {
		if o.NotJSON {
			ro.NotJSON = append(ro.NotJSON, i)
		}
		ro.OutputDedup = append(ro.OutputDedup, o.Dedup)
		ro.OutputNames = append(ro.OutputNames, o.Name)
	}
	router, err := NewRouter(opts.Routes, ro)
	if err != nil {
		return nil, err
	}
	sendCtx, cancel := context.WithCancel(context.Background())
	p := &Pipeline{log: opts.Log, set: opts.Metrics, cancel: cancel, spool: opts.Spool, srcObs: opts.Sources,
		sampled: opts.Log.Sample(&zerolog.BurstSampler{Burst: 5, Period: 10 * time.Second})}
	p.router.Store(router)
	p.spoolLost = opts.Metrics.GetOrCreateCounter(`dtrelay_spool_unspooled_total`)
	p.injectDropped = opts.Metrics.GetOrCreateCounter(`dtrelay_heartbeat_dropped_total`)
	for i, spec := range opts.Outputs {
		o := newOutput(spec, i, opts.Metrics, opts.Log)
		o.send, o.src = sendCtx, memSource{o.q}
		if p.spool != nil {
			r, err := p.spool.Reader(spec.Name)
			if err != nil {
				cancel()
				return nil, fmt.Errorf("cannot open the spool for output %q: %w", spec.Name, err)
			}
			src := &spoolSource{output: o, p: p, reader: r}
			src.overflow.Store(true) // replay what the spool holds first
			o.src = src
			p.sources = append(p.sources, src)
		}
		p.outputs = append(p.outputs, o)
	}
	for i, in := range opts.Inputs {
		p.pools = append(p.pools, newProducerPool(p, i, in, opts.MaxPayload, opts.Metrics, opts.Log))
	}
	for _, o := range p.outputs {
		go o.run()
	}
	p.dedupDir = opts.StateDir
	p.startDedupState(opts.StateDir)
	return p, nil
}

// Pool returns the ProducerPool of input i (its index in Options.Inputs).
func (p *Pipeline) Pool(i int) *ProducerPool {
	p.poolMu.Lock()
	defer p.poolMu.Unlock()
	return p.pools[i]
}

// Unblock lets producers waiting on a full queue go on, so that receivers
// can finish their reads while stopping. Queues may then exceed their size.
func (p *Pipeline) Unblock() {
	p.stopping.Store(true)
	if p.spool != nil {
		p.spool.StopWaiting() // what it refuses goes on in memory
	}
	for _, o := range p.outputs {
		o.q.unblock()
	}
}

// Stop closes the queues and waits for every output to deliver what was
// queued, until ctx ends; then in-flight deliveries are abandoned. Call it
// after the receivers stopped. Without a spool it returns the number of
// events that could not be delivered (also counted as dropped, reason
// "shutdown"). With a spool Stop does not wait on an output that is
// failing: what is undelivered stays in the spool for the next start, and
// Stop returns only the events the spool had refused (in memory only, see
// spool.go) that could not be delivered.
func (p *Pipeline) Stop(ctx context.Context) int64 {
	p.stopping.Store(true)
	if p.spool != nil {
		p.spool.StopWaiting()
	}
	for _, o := range p.outputs {
		o.q.close()
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		waiting := false
		for _, o := range p.outputs {
			select {
			case <-o.done:
			default:
				if p.spool == nil || !o.failing.Load() {
					waiting = true
				}
			}
		}
		if !waiting {
			break
		}
		select {
		case <-ctx.Done():
			break wait
		case <-tick.C:
		}
	}
	p.stopDedupState()
	p.cancel() // abandon deliveries still under way
	for _, o := range p.outputs {
		<-o.done
		if r := o.repl.Swap(nil); r != nil { // a reload's, never applied
			o.discard(r, nil)
		}
	}
	var lost, spooled int64
	for _, o := range p.outputs {
		kept, missed := o.src.close()
		lost += o.undelivered + missed
		spooled += kept
		if err := o.Sender.Close(); err != nil {
			p.log.Warn().Err(err).Str("output", o.Name).Msg("cannot close output")
		}
	}
	if spooled > 0 {
		p.log.Warn().Int64("events", spooled).Msg("undelivered events stay in the spool for the next start")
	}
	return lost
}

// publish hands a filled block to every output it has records for. For a
// datagram input a full queue drops the block's records for that output;
// for others a full queue makes it wait, timed on clock.
func (p *Pipeline) publish(b *Block, datagram bool, dropped *metrics.Counter, clock *stallClock) time.Duration {
	if b.mask == 0 {
		putBlock(b)
		return 0
	}
	if p.spool != nil {
		return p.publishSpooled(b)
	}
	b.refs.Store(int32(bits.OnesCount64(b.mask)))
	var waited time.Duration
	for m := b.mask; m != 0; m &= m - 1 {
		o := p.outputs[bits.TrailingZeros64(m)]
		ok, w := o.q.pushTimed(b, !datagram, clock)
		waited += w
		if !ok { // full (datagram input), or stopped
			n := b.count(o.bit)
			dropped.Add(n)
			p.sampled.Warn().Str("output", o.Name).Int("events", n).Msg("queue full (UDP input) or stopping: events dropped, counted dropped_full")
			b.fail() // a tracked block's events did not reach o
			b.release()
		}
	}
	return waited
}

// count returns how many of b's records are routed to the outputs in mask.
func (b *Block) count(mask uint64) int {
	n := 0
	var r Record
	for off := 0; off < len(b.buf); {
		var m uint64
		m, off = b.readRecord(off, &r)
		if m&mask != 0 {
			n++
		}
	}
	return n
}

// ProducerPool hands out Producers for one input. Get and Put are safe for
// concurrent use; a Producer is owned by its caller until Put.
type ProducerPool struct {
	p        *Pipeline
	name     string
	source   string // InputSpec.Source
	input    uint16
	datagram bool
	track    bool
	pool     sync.Pool
	m        inputMetrics
	sampled  zerolog.Logger // per-read problems: a few lines per period
	stalls   *stalls        // its producers' waits for room downstream; one per input name

	// The least sizes of a read's first block and of those after it. A
	// datagram input publishes a block per datagram, so its blocks are
	// sized to their frame (block size classes are at most 25% larger):
	// its queue's byte budget then counts the datagrams' bytes.
	firstBlock, nextBlock int
}

func newProducerPool(p *Pipeline, idx int, in InputSpec, maxPayload int, set *metrics.Set, log zerolog.Logger) *ProducerPool {
	pp := &ProducerPool{p: p, name: in.Name, source: in.Source, input: uint16(idx), datagram: in.Datagram, track: in.Track,
		sampled: log.Sample(&zerolog.BurstSampler{Burst: 5, Period: 10 * time.Second})}
	pp.m = newInputMetrics(set, in.Name)
	pp.stalls = p.stallsOf(in.Name)
	set.GetOrCreateGauge(fmt.Sprintf(`dtrelay_input_blocked{input=%q}`, in.Name), func() float64 {
		n, _ := pp.stalls.read()
		return float64(n)
	})
	set.GetOrCreateGauge(fmt.Sprintf(`dtrelay_input_backpressure_seconds_total{input=%q}`, in.Name), func() float64 {
		_, sec := pp.stalls.read()
		return sec
	})
	if !in.Datagram {
		pp.firstBlock, pp.nextBlock = firstBlockSize, bigBlockSize
	}
	pp.pool.New = func() any {
		cls := parser.NewClassifier(maxPayload)
		cls.Strict = in.Strict
		return &Producer{pp: pp, cls: cls, clock: pp.stalls.clock()}
	}
	return pp
}

// stallsOf returns the stall clocks of the input named name: the metrics
// registered for a name read the first pool's, and a pool that replaces it
// (SetInput) must feed the same.
func (p *Pipeline) stallsOf(name string) *stalls {
	p.poolMu.Lock()
	defer p.poolMu.Unlock()
	if p.stalls == nil {
		p.stalls = map[string]*stalls{}
	}
	s := p.stalls[name]
	if s == nil {
		s = &stalls{}
		p.stalls[name] = s
	}
	return s
}

// Get returns a Producer for one read.
func (pp *ProducerPool) Get() *Producer { return pp.pool.Get().(*Producer) }

// Put gives back a Producer after its Flush.
func (pp *ProducerPool) Put(pr *Producer) { pp.pool.Put(pr) }

type inputMetrics struct {
	kinds                      [parser.NumKinds]*metrics.Counter
	notJSON, filtered, dropped *metrics.Counter
	lastAlert                  *metrics.Gauge
}

func newInputMetrics(set *metrics.Set, name string) inputMetrics {
	var m inputMetrics
	for k := range m.kinds {
		m.kinds[k] = set.GetOrCreateCounter(fmt.Sprintf(`dtrelay_input_alerts_total{input=%q,kind=%q}`, name, parser.Kind(k)))
	}
	drop := func(reason string) *metrics.Counter {
		return set.GetOrCreateCounter(fmt.Sprintf(`dtrelay_input_discarded_total{input=%q,reason=%q}`, name, reason))
	}
	m.notJSON = set.GetOrCreateCounter(fmt.Sprintf(`dtrelay_input_not_json_total{input=%q}`, name))
	m.filtered = drop("filtered")
	m.dropped = drop("dropped_full")
	m.lastAlert = set.GetOrCreateGauge(fmt.Sprintf(`dtrelay_input_last_alert_timestamp_seconds{input=%q}`, name), nil)
	return m
}
