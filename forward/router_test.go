package forward

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/dtrelay/dtrelay/internal/alloctest"
	"github.com/dtrelay/dtrelay/parser"
)

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		ok   bool
	}{
		{"System::*", "System::Probe Traffic Loss", true},
		{"System::*", "Compromise::System::x", false},
		{"*::Antigena*", "Antigena::Network::Insider Threat::Antigena Large Data Volume Outbound Block", true},
		{"Antigena::*", "Antigena::Network::Compliance::AntigenaConnectionSeen", true},
		{"*", "", true},
		{"", "", true},
		{"", "x", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"*a*b*c*", "xxaxxbxxcxx", true},
		{"*a*b*c", "xxaxxbxxcxxd", false},
		{"dt-*.example.com", "dt-master.example.com", true},
		{"dt-*.example.com", "dt-master.example.org", false},
		{"Compliance::SMB Drive Write", "Compliance::SMB Drive Write", true},
	} {
		if got := glob(tc.p, []byte(tc.s)); got != tc.ok {
			t.Errorf("glob(%q, %q) = %v", tc.p, tc.s, got)
		}
	}
}

// sample is one of the project's payloads, classified as the producer does.
type sample struct {
	name string
	in   RouteInput
	fl   parser.Fields
}

func loadSamples(t testing.TB) map[string]*sample {
	t.Helper()
	files := map[string]string{
		"breach":        "model_breach_thennow.json",       // Anomalous Connection::..., Suspicious, 0.871
		"antigena":      "model_breach_antigena.json",      // Antigena::Network::..., Suspicious, 0.439
		"informational": "model_breach_informational.json", // System::Probe Traffic Loss, Informational, 0.674
		"flat":          "model_breach_flat.json",          // Compromise::Watched Domain, Critical, 0.541
		"aia":           "ai_analyst.json",                 // critical, aiaScore 87.21
		"aia_compl":     "ai_analyst_compliance.json",      // compliance, 42
		"test":          "test_alert.json",
		"system":        "system_status.json",
		"email":         "email.json",
		"audit":         "audit_login.json",
	}
	out := map[string]*sample{}
	var c parser.Classifier
	for name, f := range files {
		payload, err := os.ReadFile(filepath.Join("..", "testdata", "payloads", f))
		if err != nil {
			t.Fatal(err)
		}
		app := "darktrace"
		if name == "audit" {
			app = "darktrace_audit"
		}
		s := &sample{name: name}
		var a parser.Alert
		if err := c.ClassifyFields(payload, []byte(app), &a, &s.fl); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		// Fields' buffers are reused by the next call: keep copies.
		s.fl = parser.Fields{Model: clone(s.fl.Model), Category: clone(s.fl.Category), Identity: clone(s.fl.Identity)}
		s.in = RouteInput{Kind: a.Kind, Priority: a.Priority, Score: a.Score, App: []byte(app),
			Host: []byte("dt-master.example.com"), Payload: payload}
		if name == "email" || name == "system" {
			s.in.Host = []byte("uv.example.com")
		}
		s.in.Fields = &s.fl
		out[name] = s
	}
	return out
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// TestRouteMatchers: each matcher against every family of the samples.
func TestRouteMatchers(t *testing.T) {
	samples := loadSamples(t)
	for _, tc := range []struct {
		name  string
		match Match
		not   *Match
		want  string // the samples that match, sorted
	}{
		{"models System", Match{Models: []string{"System::*"}}, nil, "informational"},
		{"models Antigena", Match{Models: []string{"Antigena::*"}}, nil, "antigena"},
		{"models two", Match{Models: []string{"Compromise::*", "Anomalous Connection::*"}}, nil, "breach flat"},
		{"categories", Match{Categories: []string{"critical"}}, nil, "aia flat"},
		{"categories compliance", Match{Categories: []string{"Compliance"}}, nil, "aia_compl"},
		{"categories informational", Match{Categories: []string{"informational"}}, nil, "informational"},
		{"score range", Match{ScoreRange: true, MinScore: 0.5, MaxScore: 0.9}, nil, "aia breach email flat informational"},
		{"min score", Match{ScoreRange: true, MinScore: 0.8, MaxScore: 1}, nil, "aia breach email test"},
		{"max score", Match{ScoreRange: true, MinScore: 0, MaxScore: 0.45}, nil, "aia_compl antigena"},
		{"sources", Match{Sources: []string{"uv.*"}}, nil, "email system"},
		{"tags", Match{Tags: []string{"darktrace_audit"}}, nil, "audit"},
		{"kinds and not models", Match{Kinds: []parser.Kind{parser.KindModelBreach}}, &Match{Models: []string{"System::*", "Antigena::*"}}, "breach flat"},
		{"not categories", Match{}, &Match{Categories: []string{"informational", "compliance"}},
			"aia antigena audit breach email flat system test"},
		{"everything", Match{}, nil, "aia aia_compl antigena audit breach email flat informational system test"},
	} {
		r, err := NewRouter([]RouteSpec{{Match: tc.match, Not: tc.not, Outputs: []int{0}}}, RouterOptions{Outputs: 1})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, name := range sortedKeys(samples) {
			if r.Route(&samples[name].in) == 1 {
				got = append(got, name)
			}
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("%s: matched %q, want %q", tc.name, strings.Join(got, " "), tc.want)
		}
	}
}

func sortedKeys(m map[string]*sample) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}

// TestDropRoutesAndModes: a drop route drops what it matches, counted
// with its name; mode all unions the matching routes, mode first takes
// the first.
func TestDropRoutesAndModes(t *testing.T) {
	samples := loadSamples(t)
	routes := []RouteSpec{
		{Name: "noise", Match: Match{Models: []string{"System::*"}}, Drop: true},
		{Name: "breaches", Match: Match{Kinds: []parser.Kind{parser.KindModelBreach}}, Outputs: []int{0}},
		{Name: "critical", Match: Match{Categories: []string{"critical"}}, Outputs: []int{1}},
	}
	for _, mode := range []string{RouteAll, RouteFirst} {
		set := metrics.NewSet()
		r, err := NewRouter(routes, RouterOptions{Outputs: 2, Mode: mode, Metrics: set})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]uint64{"informational": 0, "breach": 0b01, "aia": 0b10, "email": 0}
		if mode == RouteAll {
			want["flat"] = 0b11
		} else {
			want["flat"] = 0b01
		}
		for name, w := range want {
			if got := r.Route(&samples[name].in); got != w {
				t.Errorf("mode %s: %s routed %b, want %b", mode, name, got, w)
			}
		}
		if v := metric(set, `dtrelay_route_filtered_total{route="noise"}`); v != "1" {
			t.Errorf("mode %s: filtered{noise} = %q, want 1", mode, v)
		}
	}
}

// TestDedupWindowAndRestart: within the window a second send of one
// breach (another master forwarding it, or the poller) is deduplicated and
// counted; after it, it goes again; the state survives a save and load
// (a restart with a spool); max_keys forgets the oldest first.
func TestDedupWindowAndRestart(t *testing.T) {
	samples := loadSamples(t)
	dir := t.TempDir()
	spec := &DedupSpec{Window: 10 * time.Minute, MaxKeys: 1000}
	newR := func(set *metrics.Set) *Router {
		r, err := NewRouter([]RouteSpec{{Name: "siem", Outputs: []int{0}, Dedup: spec}}, RouterOptions{Outputs: 1, Metrics: set})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	set := metrics.NewSet()
	r := newR(set)
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC).UnixNano()
	at := func(in RouteInput, d time.Duration) *RouteInput { in.Now = t0 + int64(d); return &in }
	b := samples["breach"].in
	if r.Route(at(b, 0)) != 1 {
		t.Fatal("first send not routed")
	}
	other := b
	other.Host = []byte("uv.example.com") // the same breach from the Unified View
	if r.Route(at(other, time.Minute)) != 0 {
		t.Fatal("the same breach within the window was sent again")
	}
	if r.Route(at(samples["aia"].in, time.Minute)) != 1 || r.Route(at(samples["email"].in, time.Minute)) != 1 {
		t.Fatal("other alerts were deduplicated")
	}
	if r.Route(at(samples["email"].in, 2*time.Minute)) != 0 {
		t.Fatal("an e-mail event (no identity: payload hash) sent twice")
	}
	if v := metric(set, `dtrelay_route_deduplicated_total{route="siem"}`); v != "2" {
		t.Fatalf("deduplicated = %q, want 2", v)
	}
	if err := r.SaveDedup(dir, time.Unix(0, t0+int64(3*time.Minute))); err != nil {
		t.Fatal(err)
	}
	// Restart.
	r2 := newR(metrics.NewSet())
	if n, err := r2.LoadDedup(dir, time.Unix(0, t0+int64(4*time.Minute))); err != nil || n != 3 {
		t.Fatalf("loaded %d keys (%v), want 3", n, err)
	}
	if r2.Route(at(b, 5*time.Minute)) != 0 {
		t.Fatal("after a restart the breach was sent again within the window")
	}
	if r2.Route(at(b, 11*time.Minute)) != 1 {
		t.Fatal("after the window the breach was not sent")
	}
	// A key older than the window is not loaded.
	if n, _ := newR(metrics.NewSet()).LoadDedup(dir, time.Unix(0, t0+int64(20*time.Minute))); n != 0 {
		t.Fatalf("loaded %d expired keys", n)
	}
	// max_keys: the oldest are forgotten first.
	small, _ := NewRouter([]RouteSpec{{Outputs: []int{0}, Dedup: &DedupSpec{Window: time.Hour, MaxKeys: 2}}}, RouterOptions{Outputs: 1})
	for _, name := range []string{"breach", "aia", "flat"} {
		small.Route(at(samples[name].in, 0))
	}
	if small.Route(at(samples["breach"].in, time.Second)) != 1 || small.Route(at(samples["flat"].in, time.Second)) != 0 {
		t.Fatal("max_keys did not forget the oldest key first")
	}
}

// Output-level de-duplication applies to that output only.
func TestOutputDedup(t *testing.T) {
	samples := loadSamples(t)
	r, err := NewRouter(nil, RouterOptions{Outputs: 2, OutputDedup: []*DedupSpec{nil, {Window: time.Minute}}, OutputNames: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	in := samples["breach"].in
	if r.Route(&in) != 0b11 || r.Route(&in) != 0b01 {
		t.Fatal("output b was not de-duplicated alone")
	}
}

// Routing on fields allocates nothing.
func TestRouteAllocatesNothing(t *testing.T) {
	samples := loadSamples(t)
	r, err := NewRouter([]RouteSpec{
		{Name: "noise", Match: Match{Models: []string{"System::*"}}, Not: &Match{Categories: []string{"critical"}}, Drop: true},
		{Match: Match{Sources: []string{"dt-*"}, ScoreRange: true, MinScore: 0.5, MaxScore: 1}, Outputs: []int{0}, Dedup: &DedupSpec{Window: time.Minute}},
	}, RouterOptions{Outputs: 1})
	if err != nil {
		t.Fatal(err)
	}
	in := samples["breach"].in
	r.Route(&in)
	if n := alloctest.PerRun(500, func() { r.Route(&in) }); n != 0 {
		t.Fatalf("%v allocations per Route", n)
	}
}

// BenchmarkDedupMemory measures DedupBytesPerKey: the heap a million
// remembered identities take.
func BenchmarkDedupMemory(b *testing.B) {
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		d := newDedupSet("m", DedupSpec{Window: time.Hour, MaxKeys: 1 << 30}, metrics.NewSet().NewCounter("x"))
		const n = 1_000_000
		for i := range n {
			d.seen(uint64(i)*0x9E3779B97F4A7C15+1, int64(i))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/key")
		runtime.KeepAlive(d)
	}
}
