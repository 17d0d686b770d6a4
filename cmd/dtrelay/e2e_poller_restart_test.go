package main

import (
	"bytes"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// dtDouble is a small Darktrace API for the binary's tests: it creates a
// model breach every 10 ms (created now, its time 10 minutes earlier, as
// Darktrace writes breaches minutes after the activity) and serves the
// breaches whose creation time is in [starttime, endtime] when asked with
// creationtime=true (else by time), and an empty list of AI Analyst events.
type dtDouble struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events []dtEvent
	stop   chan struct{}
	done   chan struct{}
	// polls and served count the /modelbreaches requests and the breaches
	// returned.
	polls, served atomic.Int64
}

type dtEvent struct {
	created int64
	body    string
}

func newDTDouble(t *testing.T, create bool) *dtDouble {
	d := &dtDouble{stop: make(chan struct{}), done: make(chan struct{})}
	d.srv = httptest.NewTLSServer(http.HandlerFunc(d.serve))
	t.Cleanup(d.srv.Close)
	if !create {
		close(d.done)
		return d
	}
	go func() {
		defer close(d.done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for pbid := 1; pbid <= 60_000; pbid++ { // bounded: 10 minutes
			select {
			case <-d.stop:
				return
			case <-tick.C:
			}
			now := time.Now().UnixMilli()
			d.mu.Lock()
			d.events = append(d.events, dtEvent{now, fmt.Sprintf(`{"pbid":%d,"time":%d,"creationTime":%d,"score":0.5,"model":{"name":"E2E::Late","priority":2},"triggeredComponents":[]}`,
				pbid, now-10*time.Minute.Milliseconds(), now)})
			d.mu.Unlock()
		}
	}()
	return d
}

// burst creates n breaches in one millisecond, pbids from first.
func (d *dtDouble) burst(first, n int) {
	now := time.Now().UnixMilli()
	d.mu.Lock()
	defer d.mu.Unlock()
	for pbid := first; pbid < first+n; pbid++ {
		d.events = append(d.events, dtEvent{now, fmt.Sprintf(`{"pbid":%d,"time":%d,"creationTime":%d,"score":0.5,"model":{"name":"E2E::Burst","priority":2},"triggeredComponents":[]}`,
			pbid, now, now)})
	}
}

// stopCreating stops creating breaches and returns those created.
func (d *dtDouble) stopCreating() []string {
	close(d.stop)
	<-d.done
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, e := range d.events {
		out = append(out, e.body)
	}
	return out
}

func (d *dtDouble) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("DTAPI-Token") == "" || len(r.Header.Get("DTAPI-Signature")) != 40 {
		http.Error(w, "API SIGNATURE ERROR", http.StatusBadRequest)
		return
	}
	q := r.URL.Query()
	start, err1 := strconv.ParseInt(q.Get("starttime"), 10, 64)
	end, err2 := strconv.ParseInt(q.Get("endtime"), 10, 64)
	if err1 != nil || err2 != nil {
		http.Error(w, "bad window", http.StatusBadRequest)
		return
	}
	switch r.URL.Path {
	case "/aianalyst/incidentevents":
		w.Write([]byte("[]"))
	case "/modelbreaches":
		byCreation := q.Get("creationtime") == "true"
		d.polls.Add(1)
		var b bytes.Buffer
		b.WriteByte('[')
		d.mu.Lock()
		for _, e := range d.events {
			t := e.created
			if !byCreation {
				t -= 10 * time.Minute.Milliseconds()
			}
			if t >= start && t <= end {
				if b.Len() > 1 {
					b.WriteByte(',')
				}
				b.WriteString(e.body)
				d.served.Add(1)
			}
		}
		d.mu.Unlock()
		b.WriteByte(']')
		w.Write(b.Bytes())
	default:
		http.Redirect(w, r, "/login", http.StatusFound)
	}
}

// TestPollerRestartWithoutSpool (issue 13 items 2 and 4): without a spool
// the checkpoint lives in state_dir; two graceful restarts, one while
// breaches keep being created, neither lose nor re-send a breach. Every
// breach is created 10 minutes after its time (only found by creation time).
func TestPollerRestartWithoutSpool(t *testing.T) {
	dt := newDTDouble(t, true)
	dir := t.TempDir()
	ca := writeFile(t, dir, "api-ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: dt.srv.Certificate().Raw})))
	out := filepath.Join(dir, "out.ndjson")
	cfg := writeFile(t, dir, "dtrelay.yaml", fmt.Sprintf(`
inputs:
  - {name: cloud, protocol: darktrace-api, url: "%s", public_token: pub, private_token: priv, interval: 1s, overlap: 2s, ca_file: %s, state_dir: %s}
outputs: [{name: out, type: file, path: %s}]
`, dt.srv.URL, ca, filepath.Join(dir, "state"), out))
	lines := func() []string {
		b, _ := os.ReadFile(out)
		return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	}
	for run := range 3 {
		p := startRelay(t, "run", "-c", cfg)
		before := len(lines())
		waitFor(t, "new breaches forwarded", func() bool { return len(lines()) > before+50 })
		if run == 2 {
			time.Sleep(1500 * time.Millisecond)
		}
		if code := p.stop(t); code != 0 {
			t.Fatalf("run %d: exit code %d", run, code)
		}
		if strings.Count(p.stderr.String(), `"polling the Darktrace API"`) != 1 {
			t.Errorf("run %d: the start line is not logged once:\n%s", run, p.stderr.String())
		}
		if run == 0 {
			time.Sleep(2 * time.Second) // breaches created while dtrelay is down
		}
	}
	want := dt.stopCreating()
	p := startRelay(t, "run", "-c", cfg) // collects what was created during the last stop
	waitFor(t, "every breach", func() bool { return len(lines()) >= len(want) })
	time.Sleep(1500 * time.Millisecond) // more polls: nothing more may come
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	got := map[string]int{}
	for _, l := range lines() {
		got[l]++
	}
	lost, dup := 0, 0
	for _, w := range want {
		switch n := got[w]; {
		case n == 0:
			lost++
		case n > 1:
			dup += n - 1
		}
	}
	t.Logf("%d breaches created, %d lines forwarded over 4 runs: %d lost, %d duplicated", len(want), len(lines()), lost, dup)
	if lost > 0 || dup > 0 || len(lines()) != len(want) {
		t.Fatalf("%d lost, %d duplicated, %d lines for %d breaches", lost, dup, len(lines()), len(want))
	}
}
