package poller

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
	"time"
)

// expectedEvents returns what forwarding body must produce: each element,
// compacted when it holds a raw CR or LF.
func expectedEvents(t *testing.T, body []byte) [][]byte {
	t.Helper()
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, r := range raws {
		r = bytes.TrimSpace(r)
		if bytes.ContainsAny(r, "\r\n") {
			var c bytes.Buffer
			if err := json.Compact(&c, r); err != nil {
				t.Fatal(err)
			}
			r = c.Bytes()
		}
		out = append(out, r)
	}
	return out
}

// TestServesSamples answers every poll with the same body (the API
// returning the same events whatever the window, the worst case for
// de-duplication): the real public responses when available, and this
// package's synthetic ones. Each event is forwarded once, as expected.
func TestServesSamples(t *testing.T) {
	type pair struct{ name, breaches, incidents string }
	pairs := []pair{{"synthetic", "testdata/modelbreaches_pretty.json", "testdata/aianalyst_incidentevents.json"}}
	if _, err := os.Stat(samplesDir); err == nil {
		pairs = append(pairs,
			pair{"sekoia-automation-library", samplesDir + "/sekoia-automation-library/modelbreaches_response.txt", samplesDir + "/sekoia-automation-library/aianalyst_response.txt"},
			pair{"elastic-api-mock", samplesDir + "/elastic/api-mock/modelbreaches.json", samplesDir + "/elastic/api-mock/aianalyst_incidentevents.json"})
	} else {
		t.Logf("real samples not available (%s absent): synthetic data only", samplesDir)
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			m := newMockAPI(t, testPublic, testPrivate)
			var want [][]byte
			for path, file := range map[string]string{breachesEP: p.breaches, incidentsEP: p.incidents} {
				body, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				m.setStatic(path, body)
				want = append(want, expectedEvents(t, body)...)
			}
			sink := &fakeSink{}
			r := start(t, testConfig(m), sink)
			waitFor(t, 5*time.Second, "every event", func() bool { return len(sink.events()) >= len(want) })
			n := len(m.requests())
			waitFor(t, 5*time.Second, "more polls", func() bool { return len(m.requests()) >= n+6 })
			r.stop()
			got := countOf(sink.events())
			for _, w := range want {
				if got[string(w)] != 1 {
					t.Errorf("event forwarded %d times (%.80s...)", got[string(w)], w)
				}
			}
			if len(sink.events()) != len(want) {
				t.Errorf("forwarded %d events, want %d", len(sink.events()), len(want))
			}
			for _, e := range sink.events() {
				if bytes.IndexByte(e, '\n') >= 0 || e[0] != '{' {
					t.Errorf("forwarded frame is not one JSON object without LF: %.60q", e)
				}
			}
		})
	}
}
