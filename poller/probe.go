package poller

import (
	"bytes"
	"context"
	"maps"
	"net/http"
	"strconv"
	"time"
)

// ProbeWindow is the window each of Probe's requests asks for: the last
// minute, so that the answer is small.
const ProbeWindow = time.Minute

// ProbeResult is what Probe learned of a Darktrace instance.
type ProbeResult struct {
	// Answered lists the endpoints that answered 200 with a JSON array,
	// in the order asked.
	Answered []string
	// Events counts the events of those answers.
	Events int
	// Path is the endpoint whose request failed; "" when none did.
	Path string
	// Err is why it failed, nil when every endpoint answered: one of the
	// package's errors (ErrSignature, ErrDate, ErrLogin, ErrForbidden,
	// ErrUntrusted, ErrUnauthorized, ErrTimeout...), wrapped, tokens and
	// signatures never in its text.
	Err error
	// Skew is Darktrace's clock minus this host's, measured on the last
	// answer that had a Date header (which has a resolution of a second:
	// Skew is right within about a second plus the round trip); HaveSkew
	// says whether one had.
	Skew     time.Duration
	HaveSkew bool
}

// Probe makes, through the client the Poller uses (the same TLS trust,
// signature and error diagnosis), one signed request to each endpoint a
// Poller polls, with the Poller's parameters and a window of the last
// ProbeWindow, and stops at the first that fails. It tests the url, the CA,
// the tokens and their permission for each endpoint, and this host's
// clock. Nothing is forwarded; no checkpoint is read or written (cfg's
// StateDir is ignored). Each request is bounded by cfg.Timeout, all of
// them by ctx.
func Probe(ctx context.Context, cfg Config) ProbeResult {
	cfg.StateDir = ""
	if err := cfg.complete(); err != nil {
		return ProbeResult{Err: err}
	}
	c, err := newClient(&cfg)
	if err != nil {
		return ProbeResult{Err: err}
	}
	defer c.close()
	var res ProbeResult
	var body bytes.Buffer
	for _, ep := range endpoints() {
		end := cfg.now()
		q := maps.Clone(ep.params)
		q.Set("starttime", strconv.FormatInt(end.Add(-ProbeWindow).UnixMilli(), 10))
		q.Set("endtime", strconv.FormatInt(end.UnixMilli(), 10))
		var hdr http.Header
		sent := cfg.now()
		_, err := c.getHeader(ctx, ep.path, q, &body, &hdr)
		got := cfg.now()
		if d, err := http.ParseTime(hdr.Get("Date")); err == nil {
			// The Date header is Darktrace's clock cut to the second: its
			// middle is half a second later. This host's clock is taken
			// half way through the exchange.
			mid := sent.Add(got.Sub(sent) / 2)
			res.Skew, res.HaveSkew = d.Add(500*time.Millisecond).Sub(mid), true
		}
		if err == nil {
			n := 0
			err = splitArray(body.Bytes(), &c.secrets, func(int, int) { n++ })
			res.Events += n
		}
		if err != nil {
			res.Path, res.Err = ep.path, redact(err, &c.secrets)
			return res
		}
		res.Answered = append(res.Answered, ep.path)
	}
	return res
}
