package intaketest

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/valyala/fastjson"
)

// KeyHeader is the header carrying the intake key on /plain/batch.
const KeyHeader = "X-SEKOIAIO-INTAKE-KEY"

// Fault is what the HTTP mock does instead of accepting a request (after
// reading its body): answer Status (with Retry-After, Location and Body
// when set),
// or Hang until the client gives up, or Close the connection without an
// answer. Events of a faulted request are not recorded.
type Fault struct {
	Status     int
	RetryAfter string
	Location   string
	Body       string
	Hang       bool
	Close      bool
}

// Request describes one request the HTTP mock received.
type Request struct {
	Path      string
	Gzip      bool
	BodyBytes int // after decompression
	WireBytes int // as sent
	Events    int // events accepted (0 unless Status is 200)
	Status    int // the answer; 0 when the mock hung or closed the connection
	Header    http.Header
}

// HTTPIntake is a mock of Sekoia.io's HTTPS intake (httptest TLS server).
//
// POST /plain/batch: LF-separated events, key in header X-SEKOIAIO-INTAKE-KEY.
// POST /batch: {"intake_key": K, "jsons": ["event", ...]}, nothing else.
// Any other path: NDJSON (every line, the last included, ends with LF), no
// key check: the generic http output.
// Content-Encoding gzip is decoded. Accepted requests get 200 and
// {"event_ids": [...]}, one id per event. An empty event, a wrong key or a
// body of the wrong shape is a problem (answered 400, or 401 for the key).
type HTTPIntake struct {
	*recorder
	tb      testing.TB
	srv     *httptest.Server
	key     string
	pki     *testPKI
	conns   atomic.Int64
	down    atomic.Bool
	stop    chan struct{}
	mu      sync.Mutex
	faults  []Fault
	reqs    []Request
	maxBody int
	caFile  string
	parsers fastjson.ParserPool

	refuse atomic.Int32 // answer every request with this status (Refuse)
	// Content refusals (RefuseContaining, RefuseEvents): requests or
	// events holding these bytes.
	badBody, badEvent []byte
}

// NewSekoiaHTTP starts an HTTPS mock intake expecting key, for the duration
// of the test.
func NewSekoiaHTTP(tb testing.TB, key string) *HTTPIntake {
	tb.Helper()
	h := &HTTPIntake{recorder: newRecorder(tb, "HTTP"), tb: tb, key: key, pki: newPKI(tb), stop: make(chan struct{})}
	h.srv = httptest.NewUnstartedServer(http.HandlerFunc(h.serve))
	h.srv.TLS = &tls.Config{Certificates: []tls.Certificate{h.pki.server}}
	h.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			h.conns.Add(1)
		}
	}
	h.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are tests' business
	h.srv.StartTLS()
	tb.Cleanup(func() {
		close(h.stop)
		h.srv.CloseClientConnections()
		h.srv.Close()
	})
	return h
}

// URL returns the base URL, "https://127.0.0.1:PORT".
func (h *HTTPIntake) URL() string { return h.srv.URL }

// CAFile writes the CA of the mock's certificate to a PEM file (once) and
// returns its path.
func (h *HTTPIntake) CAFile() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.caFile == "" {
		h.caFile = writeFile(h.tb, "intake-ca.pem", h.pki.caPEM)
	}
	return h.caFile
}

// FailNext makes the next n requests meet f instead of being accepted.
func (h *HTTPIntake) FailNext(n int, f Fault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for range n {
		h.faults = append(h.faults, f)
	}
}

// SetDown makes the intake answer every request 503 (without a
// Retry-After) while down is true: an outage whose end the test decides.
func (h *HTTPIntake) SetDown(down bool) { h.down.Store(down) }

// Refuse(status) answers every request with status (a 401 for a revoked
// key, a 404 for a wrong url...) until Refuse(0).
func (h *HTTPIntake) Refuse(status int) { h.refuse.Store(int32(status)) }

// RefuseContaining answers 400 to every request whose decompressed body
// holds sub, as an intake refusing one event's content refuses a request
// holding it; nil: never.
func (h *HTTPIntake) RefuseContaining(sub []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.badBody = sub
}

// RefuseEvents makes /batch requests accepted with a per-event status: an
// event holding sub is not recorded, and its entry in "event_ids" is null;
// nil: never.
func (h *HTTPIntake) RefuseEvents(sub []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.badEvent = sub
}

// RejectLarger answers 413 to every request whose decompressed body is
// larger than n bytes (0: never), like an intake's size limit.
func (h *HTTPIntake) RejectLarger(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.maxBody = n
}

// Requests returns the requests received so far.
func (h *HTTPIntake) Requests() []Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Request(nil), h.reqs...)
}

// Conns returns the number of TCP connections accepted so far.
func (h *HTTPIntake) Conns() int { return int(h.conns.Load()) }

func (h *HTTPIntake) serve(w http.ResponseWriter, r *http.Request) {
	wire, _ := io.ReadAll(r.Body)
	req := Request{Path: r.URL.Path, WireBytes: len(wire), Header: r.Header.Clone()}
	body := wire
	if r.Header.Get("Content-Encoding") == "gzip" {
		req.Gzip = true
		zr, err := gzip.NewReader(bytes.NewReader(wire))
		if err == nil {
			body, err = io.ReadAll(zr)
		}
		if err != nil {
			h.problem("%s: bad gzip body: %v", r.URL.Path, err)
			h.answer(w, &req, http.StatusBadRequest, nil)
			return
		}
	}
	req.BodyBytes = len(body)
	if h.down.Load() {
		h.answer(w, &req, http.StatusServiceUnavailable, nil)
		return
	}
	if st := int(h.refuse.Load()); st != 0 {
		h.answer(w, &req, st, []byte(`{"message":"refused by the test"}`))
		return
	}
	h.mu.Lock()
	badBody, badEvent := h.badBody, h.badEvent
	var f *Fault
	if len(h.faults) > 0 {
		f = &h.faults[0]
		h.faults = h.faults[1:]
	}
	maxBody := h.maxBody
	h.mu.Unlock()
	switch {
	case f != nil && f.Hang:
		h.log(req)
		select {
		case <-r.Context().Done():
		case <-h.stop:
		}
		return
	case f != nil && f.Close:
		h.log(req)
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close()
		}
		return
	case f != nil:
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		if f.Location != "" {
			w.Header().Set("Location", f.Location)
		}
		h.answer(w, &req, f.Status, []byte(f.Body))
		return
	case r.Method != http.MethodPost:
		h.problem("%s %s: want POST", r.Method, r.URL.Path)
		h.answer(w, &req, http.StatusMethodNotAllowed, nil)
		return
	case maxBody > 0 && len(body) > maxBody:
		h.answer(w, &req, http.StatusRequestEntityTooLarge, nil)
		return
	case badBody != nil && bytes.Contains(body, badBody):
		h.answer(w, &req, http.StatusBadRequest, []byte(`{"message":"invalid event"}`))
		return
	}
	events, status := h.parse(r, body)
	if status != http.StatusOK {
		h.answer(w, &req, status, nil)
		return
	}
	if badEvent != nil && r.URL.Path == "/batch" {
		h.answerPerEvent(w, &req, events, badEvent)
		return
	}
	req.Events = len(events)
	h.add(events...)
	h.answer(w, &req, http.StatusOK, eventIDs(len(events)))
}

// answerPerEvent accepts events but those holding bad, whose ids are null.
func (h *HTTPIntake) answerPerEvent(w http.ResponseWriter, req *Request, events [][]byte, bad []byte) {
	ids := []byte(`{"event_ids":[`)
	for i, e := range events {
		if i > 0 {
			ids = append(ids, ',')
		}
		if bytes.Contains(e, bad) {
			ids = append(ids, "null"...)
			continue
		}
		req.Events++
		h.add(e)
		ids = fmt.Appendf(ids, `"00000000-0000-4000-8000-%012d"`, i)
	}
	h.answer(w, req, http.StatusOK, append(ids, "]}"...))
}

// parse checks the key and shape of a request and returns its events.
func (h *HTTPIntake) parse(r *http.Request, body []byte) ([][]byte, int) {
	switch r.URL.Path {
	case "/plain/batch":
		if got := r.Header.Get(KeyHeader); got != h.key {
			h.problem("/plain/batch: wrong or missing %s", KeyHeader)
			return nil, http.StatusUnauthorized
		}
		return h.lines(r.URL.Path, body, false)
	case "/batch":
		return h.parseBatch(body)
	}
	return h.lines(r.URL.Path, body, true)
}

// lines splits body into LF-separated events, copied. terminated: every
// line must end with LF (NDJSON); else the body must not end with one.
func (h *HTTPIntake) lines(path string, body []byte, terminated bool) ([][]byte, int) {
	if terminated {
		if len(body) == 0 || body[len(body)-1] != '\n' {
			h.problem("%s: body does not end with LF", path)
			return nil, http.StatusBadRequest
		}
		body = body[:len(body)-1]
	}
	var events [][]byte
	for _, line := range bytes.Split(body, []byte{'\n'}) {
		if len(line) == 0 {
			h.problem("%s: empty event", path)
			return nil, http.StatusBadRequest
		}
		events = append(events, append([]byte(nil), line...))
	}
	return events, http.StatusOK
}

// parseBatch checks a /batch body: an object with exactly "intake_key" (the
// key) and "jsons" (an array of strings).
func (h *HTTPIntake) parseBatch(body []byte) ([][]byte, int) {
	p := h.parsers.Get()
	defer h.parsers.Put(p)
	v, err := p.ParseBytes(body)
	if err != nil {
		h.problem("/batch: body is not JSON: %v", err)
		return nil, http.StatusBadRequest
	}
	o, err := v.Object()
	if err != nil || o.Len() != 2 {
		h.problem("/batch: body is not an object with intake_key and jsons only")
		return nil, http.StatusBadRequest
	}
	if string(v.GetStringBytes("intake_key")) != h.key {
		h.problem("/batch: wrong or missing intake_key")
		return nil, http.StatusUnauthorized
	}
	arr, err := v.Get("jsons").Array()
	if err != nil {
		h.problem("/batch: jsons is not an array")
		return nil, http.StatusBadRequest
	}
	events := make([][]byte, 0, len(arr))
	for i, e := range arr {
		s, err := e.StringBytes()
		if err != nil || len(s) == 0 {
			h.problem("/batch: jsons[%d] is not a non-empty string", i)
			return nil, http.StatusBadRequest
		}
		events = append(events, append([]byte(nil), s...))
	}
	return events, http.StatusOK
}

func (h *HTTPIntake) answer(w http.ResponseWriter, req *Request, status int, body []byte) {
	req.Status = status
	h.log(*req)
	if body != nil {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (h *HTTPIntake) log(req Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reqs = append(h.reqs, req)
}

// eventIDs returns {"event_ids": [...]} with n ids.
func eventIDs(n int) []byte {
	b := make([]byte, 0, 16+n*40)
	b = append(b, `{"event_ids":[`...)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `"00000000-0000-4000-8000-%012d"`, i)
	}
	return append(b, "]}"...)
}

// String describes the mock for test logs.
func (h *HTTPIntake) String() string {
	return "sekoia-http mock at " + h.srv.URL + " (" + strconv.Itoa(h.Count()) + " events)"
}
