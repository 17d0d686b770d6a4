package poller

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestTokensNeverLeak drives the poller through every kind of failure,
// with answers that echo the tokens (whole, or
// straddling the 120-byte cut of the quoted body) and the request's
// DTAPI-Signature, and checks that neither token nor any signature shows in
// the logs (debug level, errors included) or the metrics.
func TestTokensNeverLeak(t *testing.T) {
	m := newMockAPI(t, testPublic, testPrivate)
	m.allowProblems()
	echo := "token " + testPublic + " / " + testPrivate
	for _, f := range []mockFault{
		{status: 500, body: echo},
		{status: 500, body: strings.Repeat("x", 110) + testPrivate},
		{status: 500, body: "signature mismatch: got ", echoSig: true},
		{status: 400, body: "API SIGNATURE ERROR, got ", echoSig: true},
		{status: 503, body: strings.Repeat("y", 100) + "sig=", echoSig: true},
		{status: 400, body: "API SIGNATURE ERROR " + echo},
		{status: 400, body: "API DATE ERROR " + echo},
		{status: 302, location: "/login?token=" + testPublic},
		{status: 302, location: "/x/" + testPublic + "/" + testPrivate},
		{status: 401, body: echo},
		{status: 403, body: echo},
		{status: 429, body: echo, retryAfter: "0"},
		{status: 200, body: "<html>" + echo + "</html>"},
		{status: 200, body: `[{"pbid":"` + testPrivate + `",`},
		{hang: true},
	} {
		m.failNext(1, f)
	}
	ms := time.Now().UnixMilli() - 5
	m.add(breachesEP, mockEvent{time: ms, body: breach(1, ms)})
	cfg := testConfig(m)
	cfg.Timeout = 100 * time.Millisecond
	cfg.StateDir = t.TempDir()
	sink := &fakeSink{}
	r := start(t, cfg, sink)
	waitFor(t, 10*time.Second, "recovery", func() bool { return len(sink.events()) == 1 })
	r.stop()

	// A second poller with a wrong private token: genuine signature errors.
	bad := cfg
	bad.PrivateToken = "priv-wrong-" + testPrivate
	r2 := start(t, bad, &fakeSink{})
	waitFor(t, 5*time.Second, "signature errors", func() bool {
		return metricValue(r2.set, `dtrelay_poller_errors_total{input="cloud",reason="signature"}`) >= 1
	})
	r2.stop()

	var exposition bytes.Buffer
	r.set.WritePrometheus(&exposition)
	r2.set.WritePrometheus(&exposition)
	places := map[string]string{"logs": r.logs.String() + r2.logs.String(), "metrics": exposition.String()}
	if !strings.Contains(places["logs"], "cannot poll the Darktrace API") {
		t.Fatal("no error was logged: the test proves nothing")
	}
	for where, text := range places {
		secrets := []string{testPublic, testPrivate, testPrivate[:8]}
		for _, req := range m.requests() {
			secrets = append(secrets, req.signature)
		}
		for _, secret := range secrets {
			if strings.Contains(text, secret) {
				i := strings.Index(text, secret)
				t.Errorf("%s contain a token: ...%s...", where, text[max(0, i-80):min(len(text), i+40)])
			}
		}
	}
}
