package output

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/internal/jsonenc"
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
// Status handling (every sender of this package that speaks HTTP; DESIGN.md
// §4: nothing the operator can fix discards events): 2xx accepted. 401,
// 403 and 404 (the key, its rights, the url) and 3xx (never followed: a
// redirect means the url is wrong) refuse every request until the operator
// fixes the configuration: Fixable errors, logged once per episode at error
// level with what to fix (a redirect with its Location, redacted), retried
// with capped backoff while the events are kept; 3xx, 429 and 503 honour
// Retry-After (seconds or HTTP date, at most 10 minutes; without one,
// backoff). 413 and 400 halve the request and send each half, down to one
// event: that event is refused for its content and marked with
// Batch.Reject ("rejected_413", "rejected_400"), so it goes to the
// dead-letter file; but a 400 that the intake answers for every event alone
// while it takes none is the request's fault (a wrong endpoint or
// encoding): Fixable, retried. Any other status, a timeout or a broken
// connection is retried with backoff. On /batch, an accepted answer whose
// "event_ids" has an entry per event sent but not an id for some (null, an
// error object) refuses those events ("rejected_event", dead-lettered); a
// shorter list is counted (rejected, "missing_event_id") and not retried:
// Sekoia's own SDK takes a 2xx batch as accepted, the ids do not say which
// events are missing, and re-sending would duplicate the others.
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
	c.hints = map[int]string{
		401: "intake key rejected (401): check intake_key",
		403: "intake key lacks permission (403): check intake_key and the intake's settings",
		404: "no intake at this address (404): check url (the region's intake URL) and endpoint",
	}
	if ep == SekoiaEndpointPlain {
		c.header.Set(SekoiaKeyHeader, cfg.IntakeKey)
		c.header.Set("Content-Type", "text/plain")
		c.trim = 1 // the last LF: events are joined with LF
	} else {
		c.header.Set("Content-Type", "application/json")
		c.prefix = append(append([]byte(`{"intake_key":`), jsonenc.AppendString(nil, []byte(cfg.IntakeKey))...), `,"jsons":[`...)
		c.suffix = []byte("]}")
		c.trim = 1 // the last comma
	}
	return &SekoiaHTTPSender{core: c, endpoint: ep}, nil
}

// Encoder returns a new encoder for this sender's endpoint: NDJSONEncoder
// (MaxPayload SekoiaMaxEvent) for plain, SekoiaBatchEncoder for batch.
func (s *SekoiaHTTPSender) Encoder() forward.Encoder {
	if s.endpoint == SekoiaEndpointBatch {
		return SekoiaBatchEncoder{}
	}
	return NDJSONEncoder{MaxPayload: SekoiaMaxEvent}
}

// Send implements Sender: one delivery attempt of b, in as many requests as
// its size and the intake's 413 answers require.
func (s *SekoiaHTTPSender) Send(ctx context.Context, b *forward.Batch) error {
	return s.core.send(ctx, b)
}

// Close implements Sender.
func (s *SekoiaHTTPSender) Close() error {
	s.core.close()
	return nil
}
