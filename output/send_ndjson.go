package output

import (
	"context"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/forward"
)

// HTTPConfig configures a generic http output: NDJSON batches POSTed to URL.
type HTTPConfig struct {
	URL string
	// Headers are added to every request (e.g. Authorization). Their values
	// are treated as secrets: never logged.
	Headers map[string]string
	// Compression is CompressionGzip (the default) or CompressionNone.
	Compression string
	TLSClientConfig
	// Timeout bounds each request; 0: DefaultHTTPTimeout.
	Timeout time.Duration
	// MaxBodyBytes bounds each request's uncompressed body; 0:
	// DefaultMaxBodyBytes.
	MaxBodyBytes int
}

// HTTPSender POSTs batches as NDJSON (Content-Type application/x-ndjson),
// one JSON payload per line, with the status handling of SekoiaHTTPSender.
// Send and Close are called by one goroutine at a time.
type HTTPSender struct {
	core *httpCore
}

// NewHTTPSender returns a sender for cfg. It does not connect: the first
// Send does.
func NewHTTPSender(cfg HTTPConfig, set *metrics.Set, name string, log zerolog.Logger) (*HTTPSender, error) {
	if set == nil {
		set = metrics.NewSet()
	}
	log = log.With().Str("output", name).Logger()
	c, err := newHTTPCore(httpCoreConfig{
		url: cfg.URL, compression: cfg.Compression, tls: cfg.TLSClientConfig,
		timeout: cfg.Timeout, maxBody: cfg.MaxBodyBytes,
	}, newSendMetrics(set, name), log)
	if err != nil {
		return nil, err
	}
	c.header.Set("Content-Type", "application/x-ndjson")
	c.hints = map[int]string{
		401: "intake refused the credentials (401): check the output's headers",
		403: "credentials lack permission (403): check the output's headers and the intake's settings",
		404: "nothing at this url (404): check url",
	}
	for k, v := range cfg.Headers {
		c.header.Set(k, v)
		c.secrets.Add(v) // the whole value, and a credential's parts
	}
	return &HTTPSender{core: c}, nil
}

// Encoder returns a new NDJSONEncoder (no size limit).
func (s *HTTPSender) Encoder() forward.Encoder { return NDJSONEncoder{} }

// Send implements Sender.
func (s *HTTPSender) Send(ctx context.Context, b *forward.Batch) error { return s.core.send(ctx, b) }

// Close implements Sender.
func (s *HTTPSender) Close() error {
	s.core.close()
	return nil
}
