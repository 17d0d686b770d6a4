package forward

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
)

// Sekoia HTTPS intake endpoints (SekoiaHTTPConfig.Endpoint).
const (
	SekoiaEndpointPlain = "plain" // POST <url>/plain/batch, LF-separated events, key in a header
	SekoiaEndpointBatch = "batch" // POST <url>/batch, {"intake_key":K,"jsons":[...]}
)

// DefaultSekoiaURL is the Sekoia.io HTTPS intake of the FRA1 region. Other
// regions: https://intake.<region>.sekoia.io/api/v1/intake-http.
const DefaultSekoiaURL = "https://intake.sekoia.io"

// SekoiaKeyHeader carries the intake key on the /plain/batch endpoint.
const SekoiaKeyHeader = "X-SEKOIAIO-INTAKE-KEY"

// SekoiaHTTPConfig configures a sekoia-http output.
type SekoiaHTTPConfig struct {
	// URL is the intake's base URL; empty: DefaultSekoiaURL.
	URL string
	// IntakeKey is the Sekoia intake key. It is sent in a header or in the
	// body, and never appears in logs, metrics or errors.
	IntakeKey string
	// Endpoint is SekoiaEndpointPlain (the default) or SekoiaEndpointBatch.
	// Plain is the default: the body is the payloads themselves, where batch
	// escapes each one as a JSON string, which costs CPU on both ends and
	// makes the body larger (see BenchmarkSekoiaHTTP).
	Endpoint string
	// Compression is CompressionGzip (the default) or CompressionNone.
	Compression string
	// TLSClientConfig: CAFile for a private CA (tests); the other fields as
	// needed.
	TLSClientConfig
	// Timeout bounds each request, connection included; 0: DefaultHTTPTimeout.
	Timeout time.Duration
	// MaxBodyBytes bounds each request's uncompressed body; a larger batch
	// is sent in several requests. 0: DefaultMaxBodyBytes (under 10 MiB).
	MaxBodyBytes int
}

// SekoiaHTTPSender delivers batches to Sekoia.io's HTTPS intake. Its events
// are encoded by the Encoder it returns (one per batcher).
//
// Status handling (every sender of this package that speaks HTTP): 2xx
// accepted; 3xx is never followed: a redirect means the url is wrong, so it
// is logged once (with its Location, redacted) and retried like 429 and
// 503, which are retried after their Retry-After (seconds or HTTP date, at
// most 10 minutes; without one, with backoff); 400, 401, 403 and 404 are
// Permanent ("http_401", ...); 413 halves the request and sends each half,
// down to one event, which is then dropped and counted (rejected,
// "rejected_413"); any other status, a timeout or a broken connection is
// retried with backoff. A 2xx answer listing fewer "event_ids" than events
// sent is counted (rejected, "missing_event_id") and not retried: Sekoia's
// own SDK takes a 2xx batch as accepted, the ids do not say which events are
// missing, and re-sending would duplicate the others.
//
// Send and Close are called by one goroutine at a time.
type SekoiaHTTPSender struct {
	core     *httpCore
	endpoint string
}

// NewSekoiaHTTPSender returns a sender for cfg. It does not connect: the
// first Send does. set receives the output's metrics (label output=name).
func NewSekoiaHTTPSender(cfg SekoiaHTTPConfig, set *metrics.Set, name string, log zerolog.Logger) (*SekoiaHTTPSender, error) {
	if cfg.IntakeKey == "" {
		return nil, errors.New("forward: sekoia-http needs an intake_key")
	}
	if cfg.URL == "" {
		cfg.URL = DefaultSekoiaURL
	}
	if set == nil {
		set = metrics.NewSet()
	}
	base := strings.TrimRight(cfg.URL, "/")
	ep := cfg.Endpoint
	var url string
	switch ep {
	case "", SekoiaEndpointPlain:
		ep, url = SekoiaEndpointPlain, base+"/plain/batch"
	case SekoiaEndpointBatch:
		url = base + "/batch"
	default:
		return nil, fmt.Errorf("forward: unknown sekoia-http endpoint %q (want plain or batch)", cfg.Endpoint)
	}
	log = log.With().Str("output", name).Logger()
	c, err := newHTTPCore(httpCoreConfig{
		url: url, compression: cfg.Compression, tls: cfg.TLSClientConfig,
		timeout: cfg.Timeout, maxBody: cfg.MaxBodyBytes,
	}, newSendMetrics(set, name), log)
	if err != nil {
		return nil, err
	}
	c.checkIDs = true
	c.secrets.Add(cfg.IntakeKey)
	if ep == SekoiaEndpointPlain {
		c.header.Set(SekoiaKeyHeader, cfg.IntakeKey)
		c.header.Set("Content-Type", "text/plain")
		c.trim = 1 // the last LF: events are joined with LF
	} else {
		c.header.Set("Content-Type", "application/json")
		c.prefix = append(append([]byte(`{"intake_key":`), appendJSONString(nil, []byte(cfg.IntakeKey))...), `,"jsons":[`...)
		c.suffix = []byte("]}")
		c.trim = 1 // the last comma
	}
	return &SekoiaHTTPSender{core: c, endpoint: ep}, nil
}

// Encoder returns a new encoder for this sender's endpoint: NDJSONEncoder
// (MaxPayload SekoiaMaxEvent) for plain, SekoiaBatchEncoder for batch.
func (s *SekoiaHTTPSender) Encoder() Encoder {
	if s.endpoint == SekoiaEndpointBatch {
		return SekoiaBatchEncoder{}
	}
	return NDJSONEncoder{MaxPayload: SekoiaMaxEvent}
}

// Send implements Sender: one delivery attempt of b, in as many requests as
// its size and the intake's 413 answers require.
func (s *SekoiaHTTPSender) Send(ctx context.Context, b *Batch) error {
	return s.core.send(ctx, b)
}

// Close implements Sender.
func (s *SekoiaHTTPSender) Close() error {
	s.core.close()
	return nil
}
