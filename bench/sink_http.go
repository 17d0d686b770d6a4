package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/rs/zerolog"
	"github.com/valyala/fastjson"
)

// MaxRequestBody is the largest request body HTTPSink reads (Sekoia takes
// requests under 10 MiB), after gzip decoding.
const MaxRequestBody = 10 << 20

// HTTPSink plays the Sekoia HTTPS intake: POST .../plain/batch (LF-separated
// events, key in header X-SEKOIAIO-INTAKE-KEY) and POST .../batch
// ({"intake_key": K, "jsons": [...]}, answered with {"event_ids": [...]}),
// either gzip-encoded. Every event is accounted in a Tally. Requests with a
// wrong intake key get 401, malformed ones 400; both are counted.
type HTTPSink struct {
	ln       net.Listener
	srv      *http.Server
	tally    *Tally
	key      string
	log      zerolog.Logger
	requests atomic.Int64
	rejected atomic.Int64
	parsers  fastjson.ParserPool
	bufs     sync.Pool
	done     chan struct{}
}

// NewHTTPSink listens on addr, with TLS when tlsConf is not nil, and serves
// until Close. An empty key accepts any intake key.
func NewHTTPSink(addr string, tlsConf *tls.Config, key string, tally *Tally, log zerolog.Logger) (*HTTPSink, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	s := &HTTPSink{ln: ln, tally: tally, key: key, log: log, done: make(chan struct{})}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	if tlsConf != nil {
		tlsConf = tlsConf.Clone()
		tlsConf.NextProtos = []string{"http/1.1"}
		ln = tls.NewListener(ln, tlsConf)
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("https sink stopped")
		}
	}()
	return s, nil
}

// URL returns the sink's base URL (https unless it was started without TLS).
func (s *HTTPSink) URL(tlsOn bool) string {
	scheme := "https"
	if !tlsOn {
		scheme = "http"
	}
	return scheme + "://" + s.ln.Addr().String()
}

// Addr returns the address the sink listens on.
func (s *HTTPSink) Addr() string { return s.ln.Addr().String() }

// Requests returns the number of requests served; Rejected those answered
// with a 4xx status.
func (s *HTTPSink) Requests() int { return int(s.requests.Load()) }

// Rejected returns the number of requests answered with a 4xx status.
func (s *HTTPSink) Rejected() int { return int(s.rejected.Load()) }

// Close stops the server and waits for it.
func (s *HTTPSink) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = s.srv.Close()
	}
	<-s.done
	return err
}

// ServeHTTP implements http.Handler.
func (s *HTTPSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	plain := strings.HasSuffix(r.URL.Path, "/plain/batch")
	if r.Method != http.MethodPost || !(plain || strings.HasSuffix(r.URL.Path, "/batch")) {
		s.reject(w, http.StatusNotFound, "not found")
		return
	}
	if plain && s.key != "" && r.Header.Get("X-SEKOIAIO-INTAKE-KEY") != s.key {
		s.reject(w, http.StatusUnauthorized, "invalid intake key")
		return
	}
	bp, _ := s.bufs.Get().(*bytes.Buffer)
	if bp == nil {
		bp = new(bytes.Buffer)
	}
	defer s.bufs.Put(bp)
	bp.Reset()
	if err := readBody(bp, r); err != nil {
		s.reject(w, http.StatusBadRequest, err.Error())
		return
	}
	now := time.Now().UnixNano()
	if plain {
		accountLines(bp.Bytes(), s.tally, now)
		w.WriteHeader(http.StatusOK)
		return
	}
	n, status, err := s.accountJSONBatch(bp.Bytes(), now)
	if err != nil {
		s.reject(w, status, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	out := make([]byte, 0, 16+n*8)
	out = append(out, `{"event_ids":[`...)
	for i := 0; i < n; i++ {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, '"', 'e')
		out = strconv.AppendInt(out, int64(i), 10)
		out = append(out, '"')
	}
	out = append(out, "]}"...)
	w.Write(out)
}

func (s *HTTPSink) reject(w http.ResponseWriter, status int, msg string) {
	s.rejected.Add(1)
	http.Error(w, msg, status)
}

// readBody reads r's body, gunzipped when Content-Encoding says gzip, into
// dst, up to MaxRequestBody.
func readBody(dst *bytes.Buffer, r *http.Request) error {
	var body io.Reader = r.Body
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return fmt.Errorf("cannot read gzip body: %w", err)
		}
		defer zr.Close()
		body = zr
	default:
		return fmt.Errorf("unsupported Content-Encoding %q", enc)
	}
	n, err := dst.ReadFrom(io.LimitReader(body, MaxRequestBody+1))
	if err != nil {
		return fmt.Errorf("cannot read body: %w", err)
	}
	if n > MaxRequestBody {
		return fmt.Errorf("body over %d bytes", MaxRequestBody)
	}
	return nil
}

// accountLines accounts each non-empty LF-separated line of body.
func accountLines(body []byte, tally *Tally, now int64) {
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		if k := len(line); k > 0 && line[k-1] == '\r' {
			line = line[:k-1]
		}
		if len(line) > 0 {
			tally.Account(line, now)
		}
	}
}

// accountJSONBatch parses a /batch body, checks its intake key and accounts
// each string of "jsons". It returns the number of events, or an HTTP status
// and error.
func (s *HTTPSink) accountJSONBatch(body []byte, now int64) (int, int, error) {
	p := s.parsers.Get()
	defer s.parsers.Put(p)
	v, err := p.ParseBytes(body)
	if err != nil {
		return 0, http.StatusBadRequest, fmt.Errorf("cannot parse batch: %w", err)
	}
	if s.key != "" && string(v.GetStringBytes("intake_key")) != s.key {
		return 0, http.StatusUnauthorized, errors.New("invalid intake key")
	}
	events := v.GetArray("jsons")
	if events == nil {
		return 0, http.StatusBadRequest, errors.New(`batch has no "jsons" array`)
	}
	for _, e := range events {
		b, err := e.StringBytes()
		if err != nil {
			s.tally.AddMalformed(len(e.MarshalTo(nil)))
			continue
		}
		s.tally.Account(b, now)
	}
	return len(events), 0, nil
}
