package poller

import (
	"os"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/forward"
)

// TestResumeFromSavedState: a second poller on the same state directory
// starts Overlap before the saved checkpoint and, thanks to the saved keys,
// does not forward again the events the first one delivered.
func TestResumeFromSavedState(t *testing.T) {
	m := newMockAPI(t, testPublic, testPrivate)
	cfg := testConfig(m)
	cfg.StateDir = t.TempDir()
	cfg.Overlap = 5 * time.Second // the first poller's events stay inside the overlap
	ms := time.Now().UnixMilli() - 5
	first := [][]byte{breach(1, ms), breach(2, ms)}
	for _, b := range first {
		m.add(breachesEP, mockEvent{time: ms, body: b})
	}
	m.add(incidentsEP, mockEvent{time: ms, body: incident("u1", "g1", ms)})
	sink1 := &fakeSink{}
	r1 := start(t, cfg, sink1)
	waitFor(t, 5*time.Second, "first delivery", func() bool { return len(sink1.events()) == 3 })
	r1.stop()
	path := statePath(cfg.StateDir, cfg.Name)
	st, err := loadState(path)
	if err != nil || st == nil {
		t.Fatalf("no saved state: %v", err)
	}
	saved := st.Endpoints["modelbreaches"]
	if len(saved.Seen) != 2 || saved.Checkpoint < ms {
		t.Fatalf("saved %+v", saved)
	}

	ms2 := time.Now().UnixMilli()
	later := breach(3, ms2)
	m.add(breachesEP, mockEvent{time: ms2, body: later})
	before := len(m.requests())
	sink2 := &fakeSink{}
	r2 := start(t, cfg, sink2)
	waitFor(t, 5*time.Second, "second delivery", func() bool { return len(sink2.events()) >= 1 })
	n := len(m.requestsTo(breachesEP, 200))
	waitFor(t, 5*time.Second, "more polls", func() bool { return len(m.requestsTo(breachesEP, 200)) >= n+2 })
	r2.stop()
	if evs := sink2.events(); len(evs) != 1 || string(evs[0]) != string(later) {
		t.Errorf("second poller forwarded %d events, want only the new one", len(evs))
	}
	for _, q := range m.requests()[before:] {
		if q.path == breachesEP {
			if want := saved.Checkpoint - cfg.Overlap.Milliseconds(); q.start != want {
				t.Errorf("first request after restart starts at %d, want checkpoint - overlap = %d", q.start, want)
			}
			break
		}
	}
	if v := metricValue(r2.set, `dtrelay_poller_duplicates_total{input="cloud"}`); v < 2 {
		t.Errorf("duplicates_total = %v after restart, want >= 2", v)
	}
}

func TestCorruptStateStartsFresh(t *testing.T) {
	m := newMockAPI(t, testPublic, testPrivate)
	cfg := testConfig(m)
	cfg.StateDir = t.TempDir()
	if err := os.WriteFile(statePath(cfg.StateDir, cfg.Name), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	ms := time.Now().UnixMilli() - 5
	m.add(breachesEP, mockEvent{time: ms, body: breach(1, ms)})
	sink := &fakeSink{}
	r := start(t, cfg, sink)
	waitFor(t, 10*time.Second, "delivery", func() bool { return len(sink.events()) == 1 })
	r.stop()
	if v := metricValue(r.set, `dtrelay_poller_errors_total{input="cloud",reason="state"}`); v != 1 {
		t.Errorf("errors_total{state} = %v, want 1", v)
	}
	if !contains(r.logs.String(), "cannot use the saved poller state") {
		t.Error("the bad state file was not logged")
	}
	if st, err := loadState(statePath(cfg.StateDir, cfg.Name)); err != nil || st == nil {
		t.Errorf("state not rewritten: %v", err)
	}
}

// TestCatchUpInSteps: resuming 6s behind with MaxWindow 1s, the poller asks
// for windows of at most 1s, back to back, each starting Overlap before the
// previous end, and forwards the events spread over those 6s once.
func TestCatchUpInSteps(t *testing.T) {
	m := newMockAPI(t, testPublic, testPrivate)
	cfg := testConfig(m)
	cfg.StateDir = t.TempDir()
	cfg.MaxWindow = time.Second
	cfg.Interval = time.Second // catching up must not wait for it
	now := time.Now().UnixMilli()
	cp := now - 6000
	err := saveState(statePath(cfg.StateDir, cfg.Name), &savedState{Version: stateVersion,
		Endpoints: map[string]savedEndpoint{"modelbreaches": {Checkpoint: cp}, "aianalyst/incidentevents": {Checkpoint: cp}}})
	if err != nil {
		t.Fatal(err)
	}
	var want int
	for ms := cp - 200; ms < now; ms += 250 {
		m.add(breachesEP, mockEvent{time: ms, body: breach(int(ms%1_000_000), ms)})
		want++
	}
	sink := &fakeSink{}
	began := time.Now()
	r := start(t, cfg, sink)
	waitFor(t, 5*time.Second, "catching up", func() bool {
		reqs := m.requestsTo(breachesEP, 200)
		return len(reqs) > 0 && reqs[len(reqs)-1].end >= now && len(sink.events()) >= want
	})
	took := time.Since(began)
	r.stop()
	if took > 3*time.Second {
		t.Errorf("catching up 6s took %s: the poller waited between steps", took)
	}
	reqs := m.requestsTo(breachesEP, 200)
	if len(reqs) < 8 {
		t.Fatalf("%d requests, want at least 6s / (1s - overlap)", len(reqs))
	}
	for i, q := range reqs {
		if q.end-q.start > cfg.MaxWindow.Milliseconds() {
			t.Errorf("request %d spans %dms > MaxWindow", i, q.end-q.start)
		}
		if i > 0 && q.start != reqs[i-1].end-cfg.Overlap.Milliseconds() {
			t.Errorf("request %d starts at %d, want %d", i, q.start, reqs[i-1].end-cfg.Overlap.Milliseconds())
		}
	}
	if got := countOf(sink.events()); len(got) != want || len(sink.events()) != want {
		t.Errorf("forwarded %d events (%d distinct), want %d once each", len(sink.events()), len(got), want)
	}
}

// TestTooLargeHalvesTheWindow: when a response exceeds MaxResponseSize the
// window is halved until answers fit; nothing is lost.
func TestTooLargeHalvesTheWindow(t *testing.T) {
	m := newMockAPI(t, testPublic, testPrivate)
	cfg := testConfig(m)
	cfg.StateDir = t.TempDir()
	cfg.MaxWindow = 8 * time.Second
	cfg.MaxResponseSize = 1200 // about 5 synthetic breaches
	now := time.Now().UnixMilli()
	cp := now - 8000
	err := saveState(statePath(cfg.StateDir, cfg.Name), &savedState{Version: stateVersion,
		Endpoints: map[string]savedEndpoint{"modelbreaches": {Checkpoint: cp}}})
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for ms := cp; ms < now; ms += 500 {
		m.add(breachesEP, mockEvent{time: ms, body: breach(int(ms%1_000_000), ms)})
		want++
	}
	sink := &fakeSink{}
	r := start(t, cfg, sink)
	waitFor(t, 10*time.Second, "every event", func() bool { return len(sink.events()) >= want })
	r.stop()
	if len(sink.events()) != want {
		t.Errorf("forwarded %d, want %d", len(sink.events()), want)
	}
	if v := metricValue(r.set, `dtrelay_poller_errors_total{input="cloud",reason="too_large"}`); v < 1 {
		t.Errorf("errors_total{too_large} = %v, want >= 1", v)
	}
}

// blockingSink never confirms: its Deliveries never end.
type blockingSink struct{ flushing chan struct{} }

type blockingProducer struct{ s *blockingSink }

type pendingDelivery struct{}

func (pendingDelivery) Done() <-chan struct{} { return nil }
func (pendingDelivery) Err() error            { return forward.ErrPending }

func (s *blockingSink) Get() Producer { return blockingProducer{s} }
func (s *blockingSink) Put(Producer)  {}
func (blockingProducer) Frame([]byte) {}
func (p blockingProducer) Publish() Delivery {
	select {
	case p.s.flushing <- struct{}{}:
	default:
	}
	return pendingDelivery{}
}

// TestStopDuringDelivery: stopping while the pipeline has not confirmed
// leaves the checkpoint where it was, so the next start forwards the events
// again (at least once, never lost), counted as possible duplicates.
func TestStopDuringDelivery(t *testing.T) {
	m := newMockAPI(t, testPublic, testPrivate)
	cfg := testConfig(m)
	cfg.StateDir = t.TempDir()
	ms := time.Now().UnixMilli() - 5
	m.add(breachesEP, mockEvent{time: ms, body: breach(1, ms)})
	bs := &blockingSink{flushing: make(chan struct{}, 1)}
	r := start(t, cfg, bs)
	select {
	case <-bs.flushing:
	case <-time.After(5 * time.Second):
		t.Fatal("no Publish")
	}
	first := m.requestsTo(breachesEP, 200)[0]
	r.stop() // fails the test if Run does not return
	if v := metricValue(r.set, `dtrelay_poller_errors_total{input="cloud",reason="delivery"}`); v != 0 {
		t.Errorf("a stop counted as a delivery error (%v)", v)
	}
	if st, _ := loadState(statePath(cfg.StateDir, cfg.Name)); st != nil {
		if cp, ok := st.Endpoints["modelbreaches"]; ok && cp.Checkpoint != first.start+cfg.Overlap.Milliseconds() {
			t.Fatalf("saved checkpoint %d moved from %d", cp.Checkpoint, first.start+cfg.Overlap.Milliseconds())
		}
	}
	sink := &fakeSink{}
	r2 := start(t, cfg, sink)
	waitFor(t, 5*time.Second, "the event again", func() bool { return len(sink.events()) == 1 })
	r2.stop()
	if v := metricValue(r2.set, `dtrelay_poller_resent_total{input="cloud",endpoint="modelbreaches"}`); v != 1 {
		t.Errorf("resent_total = %v, want 1 (forwarded before the stop, never confirmed)", v)
	}
}
