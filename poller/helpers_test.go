package poller

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/internal/logtest"
)

const (
	testPublic  = "pub-5e1f0a7c9b3d"
	testPrivate = "priv-8c2e4d6f1a3b9e7d"
	samplesDir  = "../../shared/testdata/darktrace-samples"
	breachesEP  = "/modelbreaches"
	incidentsEP = "/aianalyst/incidentevents"
)

// testConfig is a fast configuration for m.
func testConfig(m *mockAPI) Config {
	return Config{
		Name: "cloud", URL: m.URL(), PublicToken: testPublic, PrivateToken: testPrivate,
		CAFile: m.caFile, Interval: 20 * time.Millisecond, Overlap: 300 * time.Millisecond,
		MaxWindow: 10 * time.Second, Timeout: 5 * time.Second, MaxBackoff: 100 * time.Millisecond,
	}
}

// running is a Poller under test.
type running struct {
	p    *Poller
	set  *metrics.Set
	logs *logtest.Buffer
	stop func()
}

// start creates and runs a poller for cfg; it is stopped when the test
// ends, or by stop.
func start(t *testing.T, cfg Config, sink Sink) *running {
	t.Helper()
	logs := &logtest.Buffer{}
	set := metrics.NewSet()
	p, err := New(cfg, sink, set, zerolog.New(logs).Level(zerolog.DebugLevel))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("Run did not return within 5s of cancel")
			}
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			l := logs.String()
			t.Logf("poller log (last 6000 bytes):\n%s", l[max(0, len(l)-6000):])
		}
	})
	return &running{p: p, set: set, logs: logs, stop: stop}
}

// waitFor polls cond every 5ms for at most d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// metricValue returns the value of the series name{labels} in set's
// exposition, or -1 when absent.
func metricValue(set *metrics.Set, series string) float64 {
	var b bytes.Buffer
	set.WritePrometheus(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return -1
}

// breach is a small synthetic model breach.
func breach(pbid int, ms int64) []byte {
	return fmt.Appendf(nil, `{"commentCount":0,"pbid":%d,"time":%d,"creationTime":%d,"model":{"name":"Synthetic::Model %d","pid":%d,"priority":3,"category":"Suspicious"},"triggeredComponents":[],"score":0.71,"device":{"did":%d,"ip":"192.0.2.%d"}}`,
		pbid, ms, ms+500, pbid%7, pbid%7, pbid%250, pbid%250)
}

// incident is a small synthetic AI Analyst incident event.
func incident(id, group string, ms int64) []byte {
	return fmt.Appendf(nil, `{"summariser":"BeaconSummary","acknowledged":false,"pinned":false,"createdAt":%d,"title":"Possible HTTP Command and Control","id":%q,"currentGroup":%q,"category":"critical","aiaScore":91.5,"breachDevices":[],"relatedBreaches":[],"details":[]}`,
		ms, id, group)
}

// countOf returns how many times each event was delivered, by content.
func countOf(evs [][]byte) map[string]int {
	n := map[string]int{}
	for _, e := range evs {
		n[string(e)]++
	}
	return n
}

func zeroLogger() zerolog.Logger { return zerolog.Nop() }

func contains(s, sub string) bool { return strings.Contains(s, sub) }
