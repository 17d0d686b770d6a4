package poller

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/internal/intaketest"
	"github.com/dtrelay/dtrelay/output"
	"github.com/dtrelay/dtrelay/spool"
)

// longOutage runs the output outages of issue 13 at full length (20 s, 30 s)
// instead of the 2 s of `make test`; the behaviour tested is the same.
var longOutage = flag.Bool("poller.long", false, "run the poller's output-outage tests at full length (20s/30s)")

func outage(full time.Duration) time.Duration {
	if *longOutage {
		return full
	}
	return 2 * time.Second
}

// rig is a real forward pipeline fed by a poller: a Sekoia HTTPS intake
// (mock) and optionally a file output, with or without a spool.
type rig struct {
	pipe   *forward.Pipeline
	sp     *spool.Spool
	set    *metrics.Set
	intake *intaketest.HTTPIntake
	file   string
	dlDir  string
}

const rigKey = "intake-key-for-the-outage-test"

// startOutageRun starts an outage test: an API double creating events, a
// rig (with a file output when withFile), a poller polling every 100 ms,
// and waits until 20 events reached the intake.
func startOutageRun(t *testing.T, withFile, withSpool bool) (*mockAPI, *rig, *feeder, *running) {
	t.Helper()
	m := newMockAPI(t, testPublic, testPrivate)
	rg := newRig(t, withFile, withSpool)
	cfg := testConfig(m)
	cfg.Interval = 100 * time.Millisecond
	cfg.Overlap = time.Second
	f := feed(m, 1)
	r := start(t, cfg, PoolSink(rg.pipe.Pool(0)))
	waitFor(t, 5*time.Second, "events before the outage", func() bool { return rg.intake.Count() >= 20 })
	return m, rg, f, r
}

func newRig(t *testing.T, withFile, withSpool bool) *rig {
	t.Helper()
	dir := t.TempDir()
	r := &rig{set: metrics.NewSet(), intake: intaketest.NewSekoiaHTTP(t, rigKey), dlDir: filepath.Join(dir, "dead-letter")}
	log := zerolog.Nop()
	sender, err := output.NewSekoiaHTTPSender(output.SekoiaHTTPConfig{URL: r.intake.URL(), IntakeKey: rigKey,
		TLSClientConfig: output.TLSClientConfig{CAFile: r.intake.CAFile()}, Timeout: 2 * time.Second}, r.set, "sekoia", log)
	if err != nil {
		t.Fatal(err)
	}
	outs := []forward.OutputSpec{{Name: "sekoia", Encoder: sender.Encoder(), Sender: sender,
		QueueSize: 8 << 20, MaxEvents: 100, MaxBytes: 1 << 20, MaxWait: 5 * time.Millisecond,
		DeadLetter: forward.NewDeadLetter(r.dlDir, "sekoia", 64<<20)}}
	if withFile {
		r.file = filepath.Join(dir, "out.ndjson")
		fs, err := output.NewFileSender(r.file)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, forward.OutputSpec{Name: "file", Encoder: output.NDJSONEncoder{}, Sender: fs,
			QueueSize: 8 << 20, MaxEvents: 100, MaxBytes: 1 << 20, MaxWait: 5 * time.Millisecond})
	}
	opts := forward.Options{Inputs: []forward.InputSpec{{Name: "cloud", Track: true}}, Outputs: outs,
		MaxPayload: DefaultMaxEventSize, Metrics: r.set, Log: log}
	if withSpool {
		var names []string
		for _, o := range outs {
			names = append(names, o.Name)
		}
		r.sp, err = spool.Open(spool.Options{Dir: filepath.Join(dir, "spool"), MaxSize: 64 << 20, FsyncInterval: 50 * time.Millisecond,
			Consumers: names, Metrics: r.set, Log: log, MaxRecord: forward.SpoolRecordSize(DefaultMaxEventSize)})
		if err != nil {
			t.Fatal(err)
		}
		opts.Spool = r.sp
	}
	if r.pipe, err = forward.New(opts); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { r.stop(t) }) })
	return r
}

// stop stops the pipeline (and closes the spool) and reports a loss.
func (r *rig) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if lost := r.pipe.Stop(ctx); lost != 0 {
		t.Errorf("pipeline lost %d events", lost)
	}
	if r.sp != nil {
		r.sp.Close()
	}
}

func (r *rig) fileEvents() [][]byte {
	b, _ := os.ReadFile(r.file)
	var out [][]byte
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if l != "" {
			out = append(out, []byte(strings.TrimSuffix(l, "\n")))
		}
	}
	return out
}

// feeder adds one breach to the API double every 10 ms until stopped,
// and returns every event it added.
type feeder struct {
	stop func() [][]byte
}

func feed(m *mockAPI, first int) *feeder {
	done := make(chan struct{})
	res := make(chan [][]byte, 1)
	go func() {
		var added [][]byte
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := first; i < first+100_000; i++ { // bounded: 1000 s
			select {
			case <-done:
				res <- added
				return
			case <-tick.C:
			}
			ms := time.Now().UnixMilli()
			b := breach(i, ms)
			m.add(breachesEP, mockEvent{time: ms, body: b})
			added = append(added, b)
		}
		<-done
		res <- added
	}()
	var once sync.Once
	var out [][]byte
	return &feeder{stop: func() [][]byte {
		once.Do(func() { close(done); out = <-res })
		return out
	}}
}

// checkOnce fails unless got holds every event of want exactly once, and
// nothing else.
func checkOnce(t *testing.T, where string, got, want [][]byte) {
	t.Helper()
	n := countOf(got)
	lost, dup := 0, 0
	for _, w := range want {
		switch c := n[string(w)]; {
		case c == 0:
			lost++
		case c > 1:
			dup += c - 1
		}
	}
	if lost > 0 || dup > 0 || len(got) != len(want) {
		t.Errorf("%s: %d events received for %d polled: %d lost, %d duplicated", where, len(got), len(want), lost, dup)
	} else {
		t.Logf("%s: %d of %d events, each once", where, len(got), len(want))
	}
}

// TestOutputRefusalLosesNothing (issue 13 item 1): while the intake answers
// 401 (a revoked key: the operator's fix) the poller goes on polling; no
// event may be lost or confirmed before the intake took it, with or
// without a spool. Full length (20 s) with -poller.long.
func TestOutputRefusalLosesNothing(t *testing.T) {
	for _, withSpool := range []bool{false, true} {
		name := "memory"
		if withSpool {
			name = "spool"
		}
		t.Run(name, func(t *testing.T) {
			m, rg, f, r := startOutageRun(t, false, withSpool)
			rg.intake.Refuse(401)
			time.Sleep(outage(20 * time.Second))
			confirmed := metricValue(r.set, `dtrelay_poller_events_total{input="cloud",endpoint="modelbreaches"}`)
			accepted := float64(rg.intake.Count())
			if !withSpool && confirmed > accepted {
				t.Errorf("during the outage the poller confirmed %v events, the intake had accepted %v", confirmed, accepted)
			}
			rg.intake.Refuse(0)
			want := f.stop()
			waitFor(t, 30*time.Second, "every event at the intake", func() bool { return rg.intake.Count() >= len(want) })
			n := len(m.requestsTo(breachesEP, 200))
			waitFor(t, 5*time.Second, "more polls", func() bool { return len(m.requestsTo(breachesEP, 200)) >= n+3 })
			r.stop()
			rg.stop(t)
			checkOnce(t, "intake", rg.intake.Events(), want)
			if v := metricValue(r.set, `dtrelay_poller_events_total{input="cloud",endpoint="modelbreaches"}`); v != float64(len(want)) {
				t.Errorf("events_total = %v, want %d", v, len(want))
			}
		})
	}
}
