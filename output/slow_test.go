package output

import (
	"bytes"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/forward"
)

// slowIntake is an HTTPS intake that reads request bodies at most rate
// bytes per second (0: as fast as they come) and records the NDJSON events
// of each body it read in full within budget. A body that took longer is
// not recorded: its client has given up by then (the kernels' buffers
// would let the intake read on after the client's close, as if the client
// had not given up).
type slowIntake struct {
	srv    *httptest.Server
	caFile string
	budget time.Duration
	rate   atomic.Int64
	mu     sync.Mutex
	events map[string]int // event → times received
	sizes  []int          // events per accepted request
}

func newSlowIntake(t *testing.T, rate int64, budget time.Duration) *slowIntake {
	s := &slowIntake{events: map[string]int{}, budget: budget}
	s.rate.Store(rate)
	s.srv = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
	s.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(s.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *slowIntake) serve(w http.ResponseWriter, r *http.Request) {
	var body bytes.Buffer
	buf := make([]byte, 512)
	start := time.Now()
	for {
		n, err := r.Body.Read(buf)
		body.Write(buf[:n])
		if rate := s.rate.Load(); rate > 0 {
			// Hold the pace: body.Len() bytes take body.Len()/rate seconds.
			due := start.Add(time.Duration(int64(body.Len()) * int64(time.Second) / rate))
			select {
			case <-time.After(time.Until(due)):
			case <-r.Context().Done():
				return
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return // the client gave up
		}
	}
	if time.Since(start) > s.budget {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	lines := bytes.Split(bytes.TrimSuffix(body.Bytes(), []byte{'\n'}), []byte{'\n'})
	s.mu.Lock()
	for _, l := range lines {
		s.events[string(l)]++
	}
	s.sizes = append(s.sizes, len(lines))
	s.mu.Unlock()
}

func (s *slowIntake) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}

func (s *slowIntake) requestSizes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.sizes...)
}

// TestSlowIntakeGetsSmallerRequests: an intake reading 40 KB/s cannot take
// a 32 KB batch within the 250 ms timeout, which every retry of the whole
// batch would meet again, forever (the issue: a 1 KB/s intake got nothing
// in 90 s). After a timeout the batcher halves the requests, down to what
// fits the budget, so every event arrives; once the intake is fast again
// the requests grow back to whole batches.
func TestSlowIntakeGetsSmallerRequests(t *testing.T) {
	const timeout = 250 * time.Millisecond
	in := newSlowIntake(t, 40_000, timeout)
	set := metrics.NewSet()
	s, err := NewHTTPSender(HTTPConfig{URL: in.srv.URL + "/ingest", Compression: CompressionNone, Timeout: timeout,
		TLSClientConfig: TLSClientConfig{CAFile: in.caFile}}, set, "out", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	p, err := forward.New(forward.Options{
		Inputs: []forward.InputSpec{{Name: "tcp"}},
		Outputs: []forward.OutputSpec{{Name: "out", Encoder: s.Encoder(), Sender: s, QueueSize: 8 << 20,
			MaxEvents: 32, MaxWait: 10 * time.Millisecond, Timeout: timeout}},
		MaxPayload: 256 << 10, Metrics: set, Log: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stopWithin(p, 5*time.Second)
	var frames []string
	for i := range 32 {
		frames = append(frames, "<165>Aug  5 03:34:46 dt darktrace "+string(outAlert(i, 1000)))
	}
	feed(p, 0, frames, 32)
	start := time.Now()
	waitFor(t, "every event through the slow intake", func() bool { return in.distinct() == 32 })
	t.Logf("32 events of 1 KB through a 40 KB/s intake with a %v timeout in %v, requests of %v events",
		timeout, time.Since(start).Round(time.Millisecond), in.requestSizes())
	for _, n := range in.requestSizes() {
		if n > 10 { // 10 KB: 250 ms at 40 KB/s
			t.Fatalf("a request of %d events went through within the budget: the intake is not slow enough for this test", n)
		}
	}
	if v := metric(set, `dtrelay_output_failures_total{output="out",reason="timeout"}`); v == "" || v == "0" {
		t.Fatal("no timeout counted")
	}

	in.rate.Store(0) // fast again: the requests grow back
	for round := range 6 {
		frames = frames[:0]
		for i := range 32 {
			frames = append(frames, "<165>Aug  5 03:34:46 dt darktrace "+string(outAlert(1000*(round+1)+i, 1000)))
		}
		feed(p, 0, frames, 32)
		want := 32 * (round + 2)
		waitFor(t, "the fast rounds", func() bool { return in.distinct() == want })
	}
	sizes := in.requestSizes()
	if last := sizes[len(sizes)-1]; last != 32 {
		t.Fatalf("requests of %v events: not back to whole batches of 32", sizes)
	}
	if lost := stopWithin(p, 5*time.Second); lost != 0 {
		t.Fatalf("lost %d", lost)
	}
}
