package poller

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestLateBreachFoundByCreationTime (issue 13 item 2): a breach whose time
// is 10 minutes old when Darktrace creates it is outside every window on
// time (overlap 5m), but inside the window that covers its creation:
// /modelbreaches is asked with creationtime=true.
func TestLateBreachFoundByCreationTime(t *testing.T) {
	m := newMockAPI(t, testPublic, testPrivate)
	sink := &fakeSink{}
	cfg := testConfig(m)
	cfg.Overlap = 5 * time.Minute
	cfg.MaxWindow = time.Hour
	r := start(t, cfg, sink)
	waitFor(t, 5*time.Second, "a first poll", func() bool { return len(m.requestsTo(breachesEP, 200)) > 0 })
	var want [][]byte
	for i := range 5 {
		now := time.Now().UnixMilli()
		b := breach(500+i, now-10*time.Minute.Milliseconds())
		m.add(breachesEP, mockEvent{time: now - 10*time.Minute.Milliseconds(), created: now, body: b})
		want = append(want, b)
	}
	waitFor(t, 5*time.Second, "the late breaches", func() bool { return len(sink.events()) >= 5 })
	n := len(m.requestsTo(breachesEP, 200))
	waitFor(t, 5*time.Second, "more polls", func() bool { return len(m.requestsTo(breachesEP, 200)) >= n+3 })
	r.stop()
	checkOnce(t, "sink", sink.events(), want)
	q, _ := url.ParseQuery(m.requestsTo(breachesEP, 200)[0].query)
	if q.Get("creationtime") != "true" {
		t.Errorf("/modelbreaches asked without creationtime=true: %s", m.requestsTo(breachesEP, 200)[0].query)
	}
}

// TestEndpointsPolledIndependently (issue 13 item 7): a /modelbreaches
// request that hangs until the timeout does not delay the AI Analyst
// events.
func TestEndpointsPolledIndependently(t *testing.T) {
	m := newMockAPI(t, testPublic, testPrivate)
	m.failNext(1, mockFault{hang: true, path: breachesEP})
	sink := &fakeSink{}
	cfg := testConfig(m)
	cfg.Timeout = 3 * time.Second
	r := start(t, cfg, sink)
	waitFor(t, 2*time.Second, "the hanging request", func() bool {
		for _, q := range m.requests() {
			if q.path == breachesEP {
				return true
			}
		}
		return false
	})
	ms := time.Now().UnixMilli()
	m.add(incidentsEP, mockEvent{time: ms, body: incident("indep", "g1", ms)})
	t0 := time.Now()
	waitFor(t, 2*time.Second, "the AI Analyst event while /modelbreaches hangs", func() bool { return len(sink.events()) == 1 })
	if d := time.Since(t0); d >= cfg.Timeout {
		t.Errorf("the AI Analyst event took %s, the hanging request's timeout is %s", d, cfg.Timeout)
	}
	r.stop()
}

// TestRateLimitLoggedOnceThenSampled (issue 13 item 7): every 429 is
// counted, but only the first is logged (then one line a minute).
func TestRateLimitLoggedOnceThenSampled(t *testing.T) {
	m := newMockAPI(t, testPublic, testPrivate)
	m.failNext(6, mockFault{status: 429, body: "Too Many Requests", path: breachesEP})
	cfg := testConfig(m)
	r := start(t, cfg, &fakeSink{})
	waitFor(t, 10*time.Second, "the 429s", func() bool { return len(m.requestsTo(breachesEP, 200)) > 0 })
	r.stop()
	if v := metricValue(r.set, `dtrelay_poller_errors_total{input="cloud",reason="rate_limited"}`); v != 6 {
		t.Errorf("errors_total{rate_limited} = %v, want 6", v)
	}
	warned := 0
	for _, l := range strings.Split(r.logs.String(), "\n") {
		if strings.Contains(l, `"reason":"rate_limited"`) && strings.Contains(l, `"level":"warn"`) {
			warned++
		}
	}
	if warned != 1 {
		t.Errorf("%d warnings for 6 answers 429, want 1", warned)
	}
}

// TestUntrustedCAHintsCAFile (issue 13 item 7): without the API's CA the
// error is reason tls and names ca_file as the fix.
func TestUntrustedCAHintsCAFile(t *testing.T) {
	m := newMockAPI(t, testPublic, testPrivate)
	cfg := testConfig(m)
	cfg.CAFile = ""
	r := start(t, cfg, &fakeSink{})
	waitFor(t, 5*time.Second, "a failed poll", func() bool {
		return metricValue(r.set, `dtrelay_poller_errors_total{input="cloud",reason="tls"}`) > 0
	})
	r.stop()
	if l := r.logs.String(); !strings.Contains(l, "ca_file") || !strings.Contains(l, `"level":"error"`) {
		t.Errorf("the log does not point at ca_file:\n%s", l)
	}
}

// TestMetricsTellRepeatsFromResends (issue 13 item 6): overlap repeats are
// counted apart from events forwarded, and events forwarded again because
// their delivery never succeeded are counted as possible duplicates; the
// checkpoint's age is a gauge.
func TestMetricsTellRepeatsFromResends(t *testing.T) {
	m := newMockAPI(t, testPublic, testPrivate)
	sink := &fakeSink{}
	sink.failNext(errDelivery) // the first delivery fails: its events are forwarded again
	ms := time.Now().UnixMilli() - 5
	for i := range 4 {
		m.add(breachesEP, mockEvent{time: ms, body: breach(700+i, ms)})
	}
	cfg := testConfig(m)
	r := start(t, cfg, sink)
	waitFor(t, 5*time.Second, "delivery", func() bool { return len(sink.events()) >= 4 })
	n := len(m.requestsTo(breachesEP, 200))
	waitFor(t, 5*time.Second, "more polls", func() bool { return len(m.requestsTo(breachesEP, 200)) >= n+3 })
	r.stop()
	series := func(name string) float64 {
		return metricValue(r.set, name+`{input="cloud",endpoint="modelbreaches"}`)
	}
	if v := series("dtrelay_poller_forwarded_total"); v != 8 {
		t.Errorf("forwarded_total = %v, want 8 (4, then 4 again)", v)
	}
	if v := series("dtrelay_poller_resent_total"); v != 4 {
		t.Errorf("resent_total = %v, want 4", v)
	}
	if v := series("dtrelay_poller_events_total"); v != 4 {
		t.Errorf("events_total = %v, want 4 confirmed", v)
	}
	if v := series("dtrelay_poller_repeats_total"); v < 4 {
		t.Errorf("repeats_total = %v, want >= 4 (the overlap returns them)", v)
	}
	if v := series("dtrelay_poller_unconfirmed_events"); v != 0 {
		t.Errorf("unconfirmed_events = %v after every delivery", v)
	}
	if v := series("dtrelay_poller_checkpoint_age_seconds"); v < 0 || v > 5 {
		t.Errorf("checkpoint_age_seconds = %v", v)
	}
}
