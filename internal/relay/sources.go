package relay

import (
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/config"
	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/internal/promlabel"
	"github.com/dtrelay/dtrelay/parser"
	"github.com/dtrelay/dtrelay/receiver"
)

// SourceStatus is one source of alerts as Relay.Sources reports it. A
// source is an input and the sender's syslog HOSTNAME or, for messages
// without one, its address (the peer's, or the one a PROXY header named);
// a darktrace-api input has one source, its instance (scheme and host of
// its url). Past metrics.max_sources, new senders of an input are counted
// together as its source "other".
type SourceStatus struct {
	Input  string `json:"input"`
	Source string `json:"source"`
	// FirstSeen and LastSeen are the reception times of its first and
	// last message (any, JSON or not).
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// LastAlert is the reception time of its last JSON alert, LastTest
	// that of its last Darktrace test alert; zero: none yet.
	LastAlert time.Time `json:"last_alert,omitzero"`
	LastTest  time.Time `json:"last_test,omitzero"`
	// Alerts counts its JSON alerts by kind (parser.Kind names, only the
	// kinds seen); NotJSON its messages whose payload is not a JSON
	// object; Bytes the bytes of all its messages, without framing.
	Alerts  map[string]uint64 `json:"alerts"`
	NotJSON uint64            `json:"not_json"`
	Bytes   uint64            `json:"bytes"`
	// Connections is the number of open connections (tcp, tls) from its
	// peer addresses: a connection is known by its address before it has
	// sent, so senders behind one address (a proxy without PROXY headers)
	// all count the connections of that address.
	Connections int `json:"connections"`
	// Peers are the last few addresses it sent from, the latest first.
	Peers []string `json:"peers"`
	// Silent: its input has silent_after (SilentAfter) and it has sent
	// nothing for that long.
	Silent      bool          `json:"silent"`
	SilentAfter time.Duration `json:"silent_after"`
}

// OtherSource is the source that counts the senders of an input past
// metrics.max_sources.
const OtherSource = "other"

const maxPeers = 4 // peer addresses kept per source

// The HELP texts of the families of this file and of heartbeat.go.
func init() {
	for fam, text := range map[string]string{
		"dtrelay_source_alerts_total":                 "JSON alerts received from the source (HOSTNAME, peer address or poller instance), by kind.",
		"dtrelay_source_last_alert_timestamp_seconds": "Unix time of the source's last JSON alert.",
		"dtrelay_source_silent":                       "1 while the source has sent nothing for its input's silent_after, else 0.",
		"dtrelay_heartbeat_dropped_total":             "Heartbeat events a full output queue refused.",
	} {
		helpTexts[fam] = text
	}
}

// sourceTable tracks the sources of every input. Producers publish to it
// once per read (forward.SourceObserver): the table's read lock to find
// the source, then the source's own mutex; a new source takes the write
// lock once. Receivers tell it of connections (receiver.ConnObserver),
// under the write lock once per connection open and close.
type sourceTable struct {
	log     zerolog.Logger
	connLog zerolog.Logger // sampled
	set     *metrics.Set
	max     int
	outputs func(mask uint64) []string

	mu     sync.RWMutex
	inputs map[string]*inputSources
	n      int // sources tracked, but for "other"
	warned bool

	alerts atomic.Uint64 // JSON alerts since takeAlerts, for the heartbeat
}

// takeAlerts returns the JSON alerts received since its last call.
func (t *sourceTable) takeAlerts() uint64 { return t.alerts.Swap(0) }

type inputSources struct {
	name        string
	silentAfter atomic.Int64 // ns; 0: off
	byName      map[string]*source
	byPeer      map[netip.Addr]*source // sources without a HOSTNAME
	conns       map[netip.Addr]int     // open connections by address
}

type source struct {
	in   *inputSources
	name string

	mu                               sync.Mutex
	first, last, lastAlert, lastTest int64 // Unix ns
	kinds                            [parser.NumKinds]uint64
	kindCtr                          [parser.NumKinds]*metrics.Counter
	notJSON, bytes                   uint64
	peers                            [maxPeers]netip.Addr
	npeers                           int
	silent                           bool

	// The test-alert lines of this source (see testAlert): testFrom
	// starts the current period, testLines counts its lines, testHeld
	// the test alerts not logged since the last line.
	testFrom  int64
	testLines int
	testHeld  uint32
}

func newSourceTable(maxSources int, set *metrics.Set, log zerolog.Logger, outputs func(uint64) []string) *sourceTable {
	if maxSources < 1 {
		maxSources = config.DefaultMaxSources
	}
	return &sourceTable{log: log, set: set, max: maxSources, outputs: outputs, inputs: map[string]*inputSources{},
		connLog: log.Sample(&zerolog.BurstSampler{Burst: 5, Period: 10 * time.Second})}
}

// configure sets an input's silent_after (at start and at each reload).
func (t *sourceTable) configure(ic config.Input) {
	t.input(ic.Name).silentAfter.Store(int64(ic.SilentAfter))
}

func (t *sourceTable) input(name string) *inputSources {
	t.mu.RLock()
	in := t.inputs[name]
	t.mu.RUnlock()
	if in != nil {
		return in
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if in = t.inputs[name]; in == nil {
		in = &inputSources{name: name, byName: map[string]*source{}, byPeer: map[netip.Addr]*source{}, conns: map[netip.Addr]int{}}
		t.inputs[name] = in
	}
	return in
}

// Read is forward.SourceObserver: one read's counts.
func (t *sourceTable) Read(b *forward.SourceBatch) {
	in := t.input(b.Input)
	peer := b.Peer.Addr().Unmap()
	for i := range b.Reads {
		r := &b.Reads[i]
		s := t.find(in, b.Source, r.Host, peer)
		if s == nil {
			s = t.add(in, b.Source, r.Host, peer, b.Now)
		}
		s.read(t, r, peer, b.Now)
		var n uint64
		for _, k := range r.Kinds {
			n += uint64(k)
		}
		t.alerts.Add(n)
		if r.Tests > 0 {
			t.testAlert(s, b.Input, r, b.Now)
		}
	}
}

func (t *sourceTable) find(in *inputSources, fixed string, host []byte, peer netip.Addr) *source {
	t.mu.RLock()
	defer t.mu.RUnlock()
	switch {
	case fixed != "":
		return in.byName[fixed]
	case len(host) > 0:
		return in.byName[string(host)] // no allocation: a map index by converted bytes
	default:
		return in.byPeer[peer]
	}
}

// add registers a new source, or returns the input's "other" past
// max_sources.
func (t *sourceTable) add(in *inputSources, fixed string, host []byte, peer netip.Addr, now int64) *source {
	key := fixed // in byName; none for a source named by its address
	switch {
	case key != "":
	case len(host) > 0:
		key = string(host)
	}
	name := strings.ToValidUTF8(key, "\uFFFD") // a label value and a log field
	switch {
	case name != "":
	case peer.IsValid():
		name = peer.String()
	default:
		name = "unknown"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.lookupLocked(in, fixed, host, peer); s != nil {
		return s
	}
	if t.n >= t.max {
		if !t.warned {
			t.warned = true
			t.log.Warn().Str("input", in.name).Str("source", name).Int("max_sources", t.max).
				Msg("metrics.max_sources reached: new sources are counted as source \"other\" of their input")
		}
		s := in.byName[OtherSource]
		if s == nil {
			s = t.newSource(in, OtherSource)
			in.byName[OtherSource] = s
		}
		return s
	}
	s := t.newSource(in, name)
	if key == "" {
		in.byPeer[peer] = s
	} else {
		in.byName[key] = s
	}
	t.n++
	ev := t.log.Info().Str("input", in.name).Str("source", name)
	if peer.IsValid() {
		ev = ev.Str("peer", peer.String())
	}
	ev.Msg("new source")
	return s
}

func (t *sourceTable) lookupLocked(in *inputSources, fixed string, host []byte, peer netip.Addr) *source {
	switch {
	case fixed != "":
		return in.byName[fixed]
	case len(host) > 0:
		return in.byName[string(host)]
	}
	return in.byPeer[peer]
}

// newSource makes a source and its gauges; under t.mu.
func (t *sourceTable) newSource(in *inputSources, name string) *source {
	s := &source{in: in, name: name}
	labels := `input="` + promlabel.Escape(in.name) + `",source="` + promlabel.Escape(name) + `"`
	t.set.GetOrCreateGauge(`dtrelay_source_last_alert_timestamp_seconds{`+labels+`}`, func() float64 {
		s.mu.Lock()
		defer s.mu.Unlock()
		return float64(s.lastAlert) / 1e9
	})
	t.set.GetOrCreateGauge(`dtrelay_source_silent{`+labels+`}`, func() float64 {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.silent {
			return 1
		}
		return 0
	})
	return s
}

// read adds one read's counts.
func (s *source) read(t *sourceTable, r *forward.SourceRead, peer netip.Addr, now int64) {
	s.mu.Lock()
	if s.first == 0 {
		s.first = now
	}
	if now > s.last {
		s.last = now
	}
	alerts := false
	for k, n := range r.Kinds {
		if n == 0 {
			continue
		}
		alerts = true
		s.kinds[k] += uint64(n)
		if s.kindCtr[k] == nil { // once per source and kind
			s.kindCtr[k] = t.set.GetOrCreateCounter(`dtrelay_source_alerts_total{input="` + promlabel.Escape(s.in.name) +
				`",source="` + promlabel.Escape(s.name) + `",kind="` + parser.Kind(k).String() + `"}`)
		}
		s.kindCtr[k].Add(int(n))
	}
	if alerts && now > s.lastAlert {
		s.lastAlert = now
	}
	if r.Tests > 0 {
		s.lastTest = now
	}
	s.notJSON += uint64(r.NotJSON)
	s.bytes += r.Bytes
	if peer.IsValid() && (s.npeers == 0 || s.peers[0] != peer) {
		j := 0 // peer's index, or npeers when it is new
		for j < s.npeers && s.peers[j] != peer {
			j++
		}
		if j == s.npeers && s.npeers < maxPeers {
			s.npeers++
		}
		j = min(j, s.npeers-1) // the last one makes room when full
		copy(s.peers[1:j+1], s.peers[:j])
		s.peers[0] = peer
	}
	back := s.silent
	s.silent = false
	s.mu.Unlock()
	if back {
		t.log.Info().Str("input", s.in.name).Str("source", s.name).Msg("source sends again after being silent")
	}
}

// Test-alert lines: at most testLogBurst per source in testLogPeriod. An
// operator who sends Darktrace's test alert from the console sees a line
// for each click; a master that sends them by the thousand (a load test,
// a misconfigured model) costs a line per read without it: 1-1.4% of the
// relay's CPU at 1% test alerts under full load (issue 16's profile), and
// a log no one can read. The alerts themselves are counted and forwarded
// as always; the next line says how many went unlogged.
const (
	testLogBurst  = 5
	testLogPeriod = 10 * time.Second
)

func (t *sourceTable) testAlert(s *source, input string, r *forward.SourceRead, now int64) {
	s.mu.Lock()
	if now-s.testFrom >= int64(testLogPeriod) || now < s.testFrom {
		s.testFrom, s.testLines = now, 0
	}
	if s.testLines >= testLogBurst {
		s.testHeld += r.Tests
		s.mu.Unlock()
		return
	}
	s.testLines++
	held := s.testHeld
	s.testHeld = 0
	s.mu.Unlock()
	outs := t.outputs(r.TestMask)
	to := "no output (the routes send it nowhere)"
	if len(outs) > 0 {
		to = "outputs " + strings.Join(outs, ", ")
	}
	ev := t.log.Info().Str("input", input).Str("source", s.name).Strs("outputs", outs)
	if r.Tests > 1 {
		ev = ev.Uint32("test_alerts", r.Tests)
	}
	if held > 0 {
		ev = ev.Uint32("test_alerts_unlogged", held)
	}
	ev.Msgf("Darktrace test alert from %s via %s → %s", s.name, input, to)
}

// checkSilent flags the sources whose input's silent_after has passed
// since their last message, and logs each once.
func (t *sourceTable) checkSilent(now int64) {
	t.mu.RLock()
	var all []*source
	for _, in := range t.inputs {
		if in.silentAfter.Load() <= 0 {
			continue
		}
		for _, s := range in.byName {
			all = append(all, s)
		}
		for _, s := range in.byPeer {
			all = append(all, s)
		}
	}
	t.mu.RUnlock()
	for _, s := range all {
		after := s.in.silentAfter.Load()
		s.mu.Lock()
		now := max(now, s.last) // a read may be published after now was taken
		turned := !s.silent && s.last > 0 && now-s.last >= after
		if turned {
			s.silent = true
		}
		last := s.last
		s.mu.Unlock()
		if turned {
			t.log.Warn().Str("input", s.in.name).Str("source", s.name).Dur("silent_after", time.Duration(after)).
				Time("last_seen", time.Unix(0, last)).Msg("source silent: nothing received for silent_after")
		}
	}
}

// checkEvery is the silence checker's period: a tenth of the shortest
// silent_after, at most 10s, at least 10ms.
func (t *sourceTable) checkEvery() time.Duration {
	d := 10 * time.Second
	t.mu.RLock()
	for _, in := range t.inputs {
		if a := time.Duration(in.silentAfter.Load()); a > 0 {
			d = min(d, a/10)
		}
	}
	t.mu.RUnlock()
	return max(d, 10*time.Millisecond)
}

// runChecker runs checkSilent until stop is closed.
func (t *sourceTable) runChecker(stop <-chan struct{}) {
	timer := time.NewTimer(t.checkEvery())
	defer timer.Stop()
	for {
		select {
		case <-stop:
			return
		case <-timer.C:
		}
		t.checkSilent(time.Now().UnixNano())
		timer.Reset(t.checkEvery())
	}
}

// conns returns the connection observer of input name.
func (t *sourceTable) conns(name string) receiver.ConnObserver {
	return connObserver{t: t, in: t.input(name)}
}

type connObserver struct {
	t  *sourceTable
	in *inputSources
}

func (c connObserver) Opened(remote netip.AddrPort) {
	a := remote.Addr().Unmap()
	c.t.mu.Lock()
	c.in.conns[a]++
	c.t.mu.Unlock()
	c.t.connLog.Info().Str("input", c.in.name).Str("remote", remote.String()).Msg("connection opened")
}

func (c connObserver) Closed(remote netip.AddrPort) {
	a := remote.Addr().Unmap()
	c.t.mu.Lock()
	if c.in.conns[a]--; c.in.conns[a] <= 0 {
		delete(c.in.conns, a)
	}
	c.t.mu.Unlock()
	c.t.connLog.Info().Str("input", c.in.name).Str("remote", remote.String()).Msg("connection closed")
}

// statuses returns every source, by input and name.
func (t *sourceTable) statuses() []SourceStatus {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []SourceStatus
	for _, in := range t.inputs {
		after := time.Duration(in.silentAfter.Load())
		add := func(s *source) {
			s.mu.Lock()
			st := SourceStatus{Input: in.name, Source: s.name, FirstSeen: time.Unix(0, s.first), LastSeen: time.Unix(0, s.last),
				Alerts: map[string]uint64{}, NotJSON: s.notJSON, Bytes: s.bytes, Silent: s.silent, SilentAfter: after}
			if s.lastAlert > 0 {
				st.LastAlert = time.Unix(0, s.lastAlert)
			}
			if s.lastTest > 0 {
				st.LastTest = time.Unix(0, s.lastTest)
			}
			for k, n := range s.kinds {
				if n > 0 {
					st.Alerts[parser.Kind(k).String()] = n
				}
			}
			for _, p := range s.peers[:s.npeers] {
				st.Peers = append(st.Peers, p.String())
				st.Connections += in.conns[p]
			}
			s.mu.Unlock()
			out = append(out, st)
		}
		for _, s := range in.byName {
			add(s)
		}
		for _, s := range in.byPeer {
			add(s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Input != out[j].Input {
			return out[i].Input < out[j].Input
		}
		return out[i].Source < out[j].Source
	})
	return out
}

// Sources returns the state of every source seen since the start, sorted
// by input and source. Safe for concurrent use.
func (r *Relay) Sources() []SourceStatus {
	if r.sources == nil {
		return nil
	}
	return r.sources.statuses()
}

// GetFrom is receiver.PeerPool: the producer learns the read's address.
func (s sinkPool) GetFrom(remote netip.AddrPort) receiver.FrameSink {
	pr := s.pp.Get()
	pr.SetPeer(remote)
	return pr
}

// pollerSource is a darktrace-api input's one source: its url's scheme and
// host (no user information, path or query).
func pollerSource(ic config.Input) string {
	if ic.Protocol != config.ProtocolDarktraceAPI {
		return ""
	}
	u, err := url.Parse(ic.URL)
	if err != nil || u.Host == "" {
		return ic.Name
	}
	return u.Scheme + "://" + u.Host
}
