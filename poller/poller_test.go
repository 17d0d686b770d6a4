package poller

import (
	"fmt"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/forward"
)

// TestForwardsEachEventOnce feeds events while the poller runs: batches of
// breaches and AI Analyst events, several sharing one millisecond, some of
// them written by "Darktrace" only after a poll already covered their
// millisecond (they are only found thanks to the overlap). Every event must
// be forwarded exactly once across the overlapping windows.
func TestForwardsEachEventOnce(t *testing.T) {
	m := newMockAPI(t, testPublic, testPrivate)
	sink := &fakeSink{}
	cfg := testConfig(m)
	cfg.Overlap = 2 * time.Second // events come late by one poll: far less, even on a loaded machine
	r := start(t, cfg, sink)

	var want [][]byte
	pbid := 0
	served := func(path string, ms int64) func() bool {
		return func() bool {
			for _, q := range m.requestsTo(path, 200) {
				if q.end > ms {
					return true
				}
			}
			return false
		}
	}
	for round := range 8 {
		ms := time.Now().UnixMilli()
		for i := range 4 { // four breaches in one millisecond, the last two written late
			pbid++
			ev := mockEvent{time: ms, body: breach(pbid, ms), late: i >= 2}
			m.add(breachesEP, ev)
			want = append(want, ev.body)
		}
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", round)
		ai := []mockEvent{
			{time: ms, body: incident(id, "g"+id, ms)},
			{time: ms, body: incident(id+"b", "g"+id, ms)},
			{time: ms, body: incident(id, "gmerged-"+id, ms), late: true}, // moved to another incident later
		}
		m.add(incidentsEP, ai...)
		for _, e := range ai {
			want = append(want, e.body)
		}
		waitFor(t, 5*time.Second, "a poll covering the batch", served(breachesEP, ms))
		waitFor(t, 5*time.Second, "a poll covering the batch", served(incidentsEP, ms))
	}
	waitFor(t, 10*time.Second, "every event", func() bool { return len(sink.events()) >= len(want) })
	// A few more rounds: the overlap returns the last events again; none
	// may be forwarded twice.
	n := len(m.requestsTo(breachesEP, 200))
	waitFor(t, 5*time.Second, "more polls", func() bool { return len(m.requestsTo(breachesEP, 200)) >= n+5 })
	r.stop()

	got := countOf(sink.events())
	for _, w := range want {
		if got[string(w)] != 1 {
			t.Errorf("forwarded %d times: %s", got[string(w)], w)
		}
	}
	if len(sink.events()) != len(want) {
		t.Errorf("forwarded %d events, want %d", len(sink.events()), len(want))
	}
	if d := metricValue(r.set, `dtrelay_poller_duplicates_total{input="cloud"}`); d <= 0 {
		t.Errorf("duplicates_total = %v, want > 0 (the windows overlap)", d)
	}
	if v := metricValue(r.set, `dtrelay_poller_events_total{input="cloud",endpoint="modelbreaches"}`); v != 32 {
		t.Errorf("events_total{modelbreaches} = %v, want 32", v)
	}
	for _, path := range []string{breachesEP, incidentsEP} {
		reqs := m.requestsTo(path, 200)
		for i := 1; i < len(reqs); i++ {
			if reqs[i].start != reqs[i-1].end-cfg.Overlap.Milliseconds() {
				t.Fatalf("%s request %d starts at %d, want the previous end %d - overlap", path, i, reqs[i].start, reqs[i-1].end)
			}
		}
	}
}

// TestCheckpointHoldsWhileDeliveryFails: FlushWait fails three times; the
// window must not move, and the events must be forwarded by a later round,
// once.
func TestCheckpointHoldsWhileDeliveryFails(t *testing.T) {
	m := newMockAPI(t, testPublic, testPrivate)
	sink := &fakeSink{}
	sink.failNext(forward.ErrNotDelivered, forward.ErrNotDelivered, forward.ErrNotDelivered)
	ms := time.Now().UnixMilli() - 5
	var want [][]byte
	for i := range 5 {
		b := breach(100+i, ms)
		m.add(breachesEP, mockEvent{time: ms, body: b})
		want = append(want, b)
	}
	cfg := testConfig(m)
	cfg.StateDir = t.TempDir()
	r := start(t, cfg, sink)
	waitFor(t, 10*time.Second, "delivery", func() bool { return len(sink.events()) >= 5 })
	n := len(m.requestsTo(breachesEP, 200))
	waitFor(t, 5*time.Second, "more polls", func() bool { return len(m.requestsTo(breachesEP, 200)) >= n+3 })
	r.stop()

	got := countOf(sink.events())
	for _, w := range want {
		if got[string(w)] != 1 {
			t.Errorf("forwarded %d times: %s", got[string(w)], w)
		}
	}
	if len(sink.events()) != len(want) {
		t.Fatalf("delivered %d events (%d distinct), want %d once each", len(sink.events()), len(got), len(want))
	}
	if sink.lost != 15 {
		t.Errorf("%d events in failed flushes, want 15 (3 x 5)", sink.lost)
	}
	reqs := m.requestsTo(breachesEP, 200)
	for i := 1; i <= 3; i++ { // requests 0..2 failed delivery: same window start
		if reqs[i].start != reqs[0].start {
			t.Errorf("request %d starts at %d after a failed delivery, want %d (checkpoint moved)", i, reqs[i].start, reqs[0].start)
		}
	}
	if reqs[4].start != reqs[3].end-cfg.Overlap.Milliseconds() {
		t.Errorf("after the delivery, request 4 starts at %d, want %d", reqs[4].start, reqs[3].end-cfg.Overlap.Milliseconds())
	}
	if v := metricValue(r.set, `dtrelay_poller_errors_total{input="cloud",reason="delivery"}`); v != 3 {
		t.Errorf("errors_total{delivery} = %v, want 3", v)
	}
	st, err := loadState(statePath(cfg.StateDir, cfg.Name))
	if err != nil || st == nil {
		t.Fatalf("state: %v", err)
	}
	// The last request may have been cut short by the stop: the saved
	// checkpoint is the end of one of the windows after the delivery.
	cp, found := st.Endpoints["modelbreaches"].Checkpoint, false
	for _, q := range reqs[3:] {
		found = found || q.end == cp
	}
	if !found {
		t.Errorf("saved checkpoint %d is not the end of a window after the delivery", cp)
	}
}

// TestErrorsBackOffAndRecover: the API fails in every way for a while; the
// poller counts each failure by reason, backs off, and then forwards
// everything, once.
func TestErrorsBackOffAndRecover(t *testing.T) {
	m := newMockAPI(t, testPublic, testPrivate)
	faults := []struct {
		f      mockFault
		reason string
	}{
		{mockFault{status: 500, body: "oops"}, "http_status"},
		{mockFault{status: 302, location: "/login"}, "login_redirect"},
		{mockFault{status: 302, location: "/403"}, "forbidden"},
		{mockFault{status: 400, body: "API SIGNATURE ERROR"}, "signature"},
		{mockFault{status: 400, body: "API DATE ERROR"}, "date"},
		{mockFault{hang: true}, "timeout"},
		{mockFault{status: 200, body: "<html>maintenance</html>"}, "bad_response"},
	}
	for _, f := range faults {
		m.failNext(1, f.f)
	}
	ms := time.Now().UnixMilli() - 5
	m.add(breachesEP, mockEvent{time: ms, body: breach(1, ms)})
	m.add(incidentsEP, mockEvent{time: ms, body: incident("u1", "g1", ms)})
	sink := &fakeSink{}
	cfg := testConfig(m)
	cfg.Timeout = 150 * time.Millisecond
	r := start(t, cfg, sink)
	waitFor(t, 10*time.Second, "both events", func() bool { return len(sink.events()) >= 2 })
	n := len(m.requestsTo(breachesEP, 200))
	waitFor(t, 5*time.Second, "more polls", func() bool { return len(m.requestsTo(breachesEP, 200)) >= n+3 })
	r.stop()
	if len(sink.events()) != 2 {
		t.Errorf("delivered %d events, want 2", len(sink.events()))
	}
	for _, f := range faults {
		if v := metricValue(r.set, fmt.Sprintf(`dtrelay_poller_errors_total{input="cloud",reason=%q}`, f.reason)); v != 1 {
			t.Errorf("errors_total{%s} = %v, want 1", f.reason, v)
		}
	}
	if v := metricValue(r.set, `dtrelay_poller_requests_total{input="cloud",endpoint="modelbreaches",status="200"}`) +
		metricValue(r.set, `dtrelay_poller_requests_total{input="cloud",endpoint="aianalyst/incidentevents",status="200"}`); v < 4 {
		t.Errorf("requests_total{status=200} = %v", v)
	}
	logs := r.logs.String()
	for _, want := range []string{`"input":"cloud"`, `"reason":"login_redirect"`, `"reason":"date"`, "cannot poll the Darktrace API", "polling recovered"} {
		if !contains(logs, want) {
			t.Errorf("logs lack %s", want)
		}
	}
}

func TestBackoff(t *testing.T) {
	p := &Poller{cfg: Config{Interval: time.Minute, MaxBackoff: 5 * time.Minute}}
	for n, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
		for range 50 {
			if d := p.backoff(n + 1); d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", n+1, d, want/2, want)
			}
		}
	}
	if d := p.backoff(40); d < 150*time.Second || d > 5*time.Minute {
		t.Errorf("backoff(40) = %s, want capped at 5m (jittered)", d)
	}
	p.cfg.Interval = 20 * time.Millisecond
	if d := p.backoff(1); d > 20*time.Millisecond {
		t.Errorf("with a 20ms interval backoff(1) = %s", d)
	}
}
