package poller

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestProbe drives Probe against the API double through each outcome
// `dtrelay check --online` reports: the double checks the signature and
// date independently of Sign, so a wrong private token and a host clock
// off by 10 minutes are refused as Darktrace refuses them.
func TestProbe(t *testing.T) {
	ctx := context.Background()
	t.Run("success", func(t *testing.T) {
		m := newMockAPI(t, testPublic, testPrivate)
		ms := time.Now().UnixMilli() - 1000
		m.add(breachesEP, mockEvent{time: ms, body: breach(1, ms)})
		res := Probe(ctx, testConfig(m))
		if res.Err != nil {
			t.Fatalf("Probe: %v", res.Err)
		}
		if len(res.Answered) != 2 || res.Answered[0] != breachesEP || res.Answered[1] != incidentsEP || res.Events != 1 {
			t.Fatalf("answered %v with %d events, want both endpoints and the 1 breach", res.Answered, res.Events)
		}
		if !res.HaveSkew || res.Skew.Abs() > 2*time.Second {
			t.Errorf("skew %v (measured: %v), want within 2s of 0 (same clock)", res.Skew, res.HaveSkew)
		}
		reqs := m.requests()
		if len(reqs) != 2 {
			t.Fatalf("%d requests, want one per endpoint", len(reqs))
		}
		for _, r := range reqs {
			if d := time.Duration(r.end-r.start) * time.Millisecond; d != ProbeWindow {
				t.Errorf("%s asked for a window of %v, want %v", r.path, d, ProbeWindow)
			}
		}
		if !strings.Contains(reqs[0].query, "creationtime=true") {
			t.Errorf("/modelbreaches asked without the poller's parameters: %s", reqs[0].query)
		}
	})
	t.Run("signature", func(t *testing.T) {
		m := newMockAPI(t, testPublic, testPrivate)
		m.allowProblems()
		cfg := testConfig(m)
		cfg.PrivateToken = "wrong-" + testPrivate
		res := Probe(ctx, cfg)
		if !errors.Is(res.Err, ErrSignature) || res.Path != breachesEP {
			t.Fatalf("got %q on %s, want ErrSignature on %s", res.Err, res.Path, breachesEP)
		}
		noSecret(t, res.Err.Error(), testPrivate, cfg.PrivateToken)
	})
	t.Run("date", func(t *testing.T) {
		m := newMockAPI(t, testPublic, testPrivate)
		m.allowProblems()
		cfg := testConfig(m)
		cfg.now = func() time.Time { return time.Now().Add(10 * time.Minute) } // this host is 10 min ahead
		res := Probe(ctx, cfg)
		if !errors.Is(res.Err, ErrDate) {
			t.Fatalf("got %v, want ErrDate", res.Err)
		}
		if !res.HaveSkew || (res.Skew+10*time.Minute).Abs() > 2*time.Second {
			t.Fatalf("skew %v (measured: %v), want -10m within 2s", res.Skew, res.HaveSkew)
		}
	})
	t.Run("permission redirect", func(t *testing.T) {
		m := newMockAPI(t, testPublic, testPrivate)
		m.failNext(1, mockFault{status: 302, location: "/login", path: incidentsEP})
		res := Probe(ctx, testConfig(m))
		if !errors.Is(res.Err, ErrLogin) || res.Path != incidentsEP {
			t.Fatalf("got %v on %q, want ErrLogin on %s", res.Err, res.Path, incidentsEP)
		}
		if len(res.Answered) != 1 || res.Answered[0] != breachesEP {
			t.Errorf("answered %v, want %s alone", res.Answered, breachesEP)
		}
	})
	t.Run("untrusted CA", func(t *testing.T) {
		m := newMockAPI(t, testPublic, testPrivate)
		cfg := testConfig(m)
		cfg.CAFile = ""
		res := Probe(ctx, cfg)
		if !errors.Is(res.Err, ErrUntrusted) || !strings.Contains(res.Err.Error(), "ca_file") {
			t.Fatalf("got %v, want ErrUntrusted naming ca_file", res.Err)
		}
		if res.HaveSkew {
			t.Error("a skew measured without an answer")
		}
	})
	t.Run("echoed secrets", func(t *testing.T) {
		m := newMockAPI(t, testPublic, testPrivate)
		m.failNext(1, mockFault{status: 500, body: "token " + testPublic + " " + testPrivate + " sig ", echoSig: true})
		res := Probe(ctx, testConfig(m))
		if !errors.Is(res.Err, ErrStatus) {
			t.Fatalf("got %v, want ErrStatus", res.Err)
		}
		noSecret(t, res.Err.Error(), testPublic, testPrivate, m.requests()[0].signature)
	})
	t.Run("timeout", func(t *testing.T) {
		m := newMockAPI(t, testPublic, testPrivate)
		m.failNext(1, mockFault{hang: true})
		cfg := testConfig(m)
		cfg.Timeout = 300 * time.Millisecond
		res := Probe(ctx, cfg)
		if !errors.Is(res.Err, ErrTimeout) {
			t.Fatalf("got %v, want ErrTimeout", res.Err)
		}
	})
}

func noSecret(t *testing.T, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%q shows a secret", text)
		}
	}
}
