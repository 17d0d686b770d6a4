package poller

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/internal/pki"
)

// mockAPI is a Darktrace API over HTTPS (127.0.0.1, port 0) with its own CA.
// It checks each request the way Darktrace does: token, DTAPI-Date within
// dateSkew of its clock, and the signature, recomputed here independently
// of Sign; the query must be sorted. It answers like Darktrace: 401, 400
// "API DATE ERROR", 400 "API SIGNATURE ERROR". A bad request is also
// recorded as a problem, which fails the test unless allowProblems was
// called. Faults queued with failNext are answered first. Otherwise
// GET /modelbreaches and /aianalyst/incidentevents answer the events whose
// time (with creationtime=true: creation time) is within [starttime,
// endtime], as a JSON array, in the order added (a late event is left out
// of the first answer that covers its time); or the static body set for
// the path.
type mockAPI struct {
	tb              testing.TB
	srv             *httptest.Server
	caFile          string
	public, private string

	mu       sync.Mutex
	events   map[string][]mockEvent
	static   map[string][]byte
	faults   []mockFault
	reqs     []mockReq
	problems []string
	allow    bool
}

const dateSkew = 5 * time.Minute

type mockEvent struct {
	time    int64 // ms: what starttime/endtime select on
	created int64 // ms: what they select on with creationtime=true; 0: time
	late    bool  // left out of the first answer whose window covers it
	body    []byte
}

// mockFault is an answer instead of the normal one.
type mockFault struct {
	status     int
	body       string
	location   string
	retryAfter string
	hang       bool   // never answer (until the client gives up)
	echoSig    bool   // append the request's DTAPI-Signature to body
	path       string // only for requests to this path; "": any
}

type mockReq struct {
	path       string
	start, end int64
	query      string
	signature  string // the DTAPI-Signature header
	status     int
}

func newMockAPI(tb testing.TB, public, private string) *mockAPI {
	tb.Helper()
	ca, err := pki.NewCA("darktrace mock CA")
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := ca.Issue(pki.Server, pki.Loopback...)
	if err != nil {
		tb.Fatal(err)
	}
	m := &mockAPI{tb: tb, public: public, private: private,
		events: map[string][]mockEvent{}, static: map[string][]byte{}}
	m.caFile = filepath.Join(tb.TempDir(), "dt-ca.pem")
	if err := os.WriteFile(m.caFile, ca.PEM, 0o600); err != nil {
		tb.Fatal(err)
	}
	m.srv = httptest.NewUnstartedServer(http.HandlerFunc(m.serve))
	m.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	m.srv.StartTLS()
	tb.Cleanup(func() {
		m.srv.CloseClientConnections()
		m.srv.Close()
		m.mu.Lock()
		defer m.mu.Unlock()
		if len(m.problems) > 0 && !m.allow {
			tb.Errorf("mock Darktrace API saw %d problem(s), first: %s", len(m.problems), m.problems[0])
		}
	})
	return m
}

func (m *mockAPI) URL() string { return m.srv.URL }

func (m *mockAPI) allowProblems() {
	m.mu.Lock()
	m.allow = true
	m.mu.Unlock()
}

// add appends events to path's list.
func (m *mockAPI) add(path string, evs ...mockEvent) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events[path] = append(m.events[path], evs...)
}

func (m *mockAPI) setStatic(path string, body []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.static[path] = body
}

func (m *mockAPI) failNext(n int, f mockFault) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for range n {
		m.faults = append(m.faults, f)
	}
}

func (m *mockAPI) requests() []mockReq {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]mockReq(nil), m.reqs...)
}

// requestsTo returns the requests to path that got status.
func (m *mockAPI) requestsTo(path string, status int) []mockReq {
	var out []mockReq
	for _, r := range m.requests() {
		if r.path == path && r.status == status {
			out = append(out, r)
		}
	}
	return out
}

func (m *mockAPI) problemf(format string, args ...any) {
	m.problems = append(m.problems, fmt.Sprintf(format, args...))
}

func (m *mockAPI) serve(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	req := mockReq{path: r.URL.Path, query: r.URL.RawQuery, signature: r.Header.Get("DTAPI-Signature")}
	status, body := m.check(r)
	var fault *mockFault
	if status == 0 {
		for i, f := range m.faults {
			if f.path == "" || f.path == r.URL.Path {
				m.faults = append(m.faults[:i:i], m.faults[i+1:]...)
				fault = &f
				break
			}
		}
	}
	if status == 0 && fault == nil {
		status, body = m.answer(r, &req)
	}
	if fault != nil {
		status = fault.status
	}
	req.status = status
	m.reqs = append(m.reqs, req)
	m.mu.Unlock()

	switch {
	case fault != nil && fault.hang:
		select {
		case <-r.Context().Done():
		case <-time.After(30 * time.Second):
		}
		return
	case fault != nil:
		if fault.location != "" {
			w.Header().Set("Location", fault.location)
		}
		if fault.retryAfter != "" {
			w.Header().Set("Retry-After", fault.retryAfter)
		}
		w.WriteHeader(fault.status)
		_, _ = w.Write([]byte(fault.body))
		if fault.echoSig {
			_, _ = w.Write([]byte(r.Header.Get("DTAPI-Signature")))
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// check authenticates r as Darktrace would; status 0 means it passed.
func (m *mockAPI) check(r *http.Request) (int, []byte) {
	if r.Method != http.MethodGet {
		m.problemf("method %s", r.Method)
		return http.StatusMethodNotAllowed, nil
	}
	if got := r.URL.Query().Encode(); got != r.URL.RawQuery {
		m.problemf("query not sorted: %q", r.URL.RawQuery)
	}
	if r.Header.Get("DTAPI-Token") != m.public {
		m.problemf("unknown token")
		return http.StatusUnauthorized, nil
	}
	date := r.Header.Get("DTAPI-Date")
	t, err := time.Parse("20060102T150405", date)
	if err != nil || time.Until(t).Abs() > dateSkew {
		m.problemf("date %q", date)
		return http.StatusBadRequest, []byte(`{"error":"API DATE ERROR"}`)
	}
	mac := hmac.New(sha1.New, []byte(m.private))
	fmt.Fprintf(mac, "%s?%s\n%s\n%s", r.URL.EscapedPath(), r.URL.RawQuery, m.public, date)
	if want := hex.EncodeToString(mac.Sum(nil)); r.Header.Get("DTAPI-Signature") != want {
		m.problemf("bad signature")
		return http.StatusBadRequest, []byte(`{"error":"API SIGNATURE ERROR"}`)
	}
	return 0, nil
}

// answer serves the events of r's window.
func (m *mockAPI) answer(r *http.Request, req *mockReq) (int, []byte) {
	q := r.URL.Query()
	var err1, err2 error
	req.start, err1 = strconv.ParseInt(q.Get("starttime"), 10, 64)
	req.end, err2 = strconv.ParseInt(q.Get("endtime"), 10, 64)
	if err1 != nil || err2 != nil || req.start > req.end {
		m.problemf("bad window %q", r.URL.RawQuery)
		return http.StatusBadRequest, []byte("bad window")
	}
	if b, ok := m.static[r.URL.Path]; ok {
		return http.StatusOK, b
	}
	evs, ok := m.events[r.URL.Path]
	if !ok && r.URL.Path != "/modelbreaches" && r.URL.Path != "/aianalyst/incidentevents" {
		return http.StatusFound, nil // Darktrace sends unknown paths to /login
	}
	byCreation := q.Get("creationtime") == "true"
	var b bytes.Buffer
	b.WriteByte('[')
	n := 0
	for i, e := range evs {
		t := e.time
		if byCreation && e.created != 0 {
			t = e.created
		}
		if t < req.start || t > req.end {
			continue
		}
		if e.late {
			evs[i].late = false // Darktrace writes it just after this answer
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		b.Write(e.body)
		n++
	}
	b.WriteByte(']')
	return http.StatusOK, b.Bytes()
}

// fakeSink records what a poller forwards. Frames count as delivered only
// when their Publish's Delivery succeeds (at once); failNext makes the next
// Deliveries fail with the given errors.
type fakeSink struct {
	mu        sync.Mutex
	delivered [][]byte
	lost      int // frames of failed flushes
	fails     []error
	flushes   int
}

type fakeProducer struct {
	s      *fakeSink
	frames [][]byte
}

func (s *fakeSink) Get() Producer  { return &fakeProducer{s: s} }
func (s *fakeSink) Put(p Producer) { p.(*fakeProducer).frames = nil }

func (s *fakeSink) failNext(errs ...error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails = append(s.fails, errs...)
}

func (s *fakeSink) events() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.delivered...)
}

func (p *fakeProducer) Frame(f []byte) { p.frames = append(p.frames, bytes.Clone(f)) }

func (p *fakeProducer) Publish() Delivery {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushes++
	frames := p.frames
	p.frames = nil
	if len(s.fails) > 0 {
		err := s.fails[0]
		s.fails = s.fails[1:]
		s.lost += len(frames)
		return doneDelivery{err}
	}
	s.delivered = append(s.delivered, frames...)
	return doneDelivery{}
}

// doneDelivery is a Delivery already settled with err.
type doneDelivery struct{ err error }

var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (doneDelivery) Done() <-chan struct{} { return closed }
func (d doneDelivery) Err() error          { return d.err }
