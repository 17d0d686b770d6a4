package output

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/rs/zerolog"
	"github.com/valyala/fastjson"

	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/internal/retry"
	"github.com/dtrelay/dtrelay/internal/secret"
)

// Defaults of the HTTP senders.
const (
	DefaultHTTPTimeout  = 30 * time.Second
	DefaultMaxBodyBytes = 10<<20 - 1 // Sekoia: requests under 10 MiB
	maxResponseBody     = 1 << 20    // read at most this much of a response
	maxLoggedLocation   = 256        // bytes of a redirect's Location logged
)

// Compression settings of the HTTP senders.
const (
	CompressionGzip = "gzip" // the default
	CompressionNone = "none"
)

// httpCore is what the HTTP senders share: one keep-alive client, the body
// assembly (with gzip), status classification, 413 splitting and metrics.
// It is used by one goroutine at a time (the output's batcher).
type httpCore struct {
	url    string      // the endpoint
	where  string      // url without user info, query or path tokens: safe in errors and logs
	header http.Header // fixed request headers (may hold secrets: never logged)
	client *http.Client
	gzip   bool

	maxBody  int    // largest uncompressed body
	prefix   []byte // body = prefix + events[lo:hi] minus trim bytes + suffix
	suffix   []byte
	trim     int  // separator bytes dropped from the end of the last event
	checkIDs bool // count events missing from {"event_ids": [...]}

	zw     *gzip.Writer
	zbuf   bytes.Buffer
	bufs   net.Buffers
	resp   []byte
	loc    string // the Location header of the last response
	parser fastjson.Parser
	trace  *httptrace.ClientTrace
	wrote  atomic.Bool // the last request was written in full
	conns  int         // connections opened

	m       *sendMetrics
	log     zerolog.Logger
	sampled zerolog.Logger // per-event refusals: a few lines per period
	secrets secret.Set     // the URL's, key's and headers' secrets: redacted from what the intake says

	// hints says what to fix for a status that refuses every request (401,
	// 403, 404), in the output's own terms (logFix).
	hints map[int]string
	// logged is the status last logged by logFix or logRedirect: the next
	// one is logged only if it differs, or once a request is accepted (0).
	logged int

	// A 400 is for one event's content when the intake takes other events,
	// and for the request when it takes none (see refused400). trusted:
	// the last Send that reached the intake had events accepted. suspects:
	// the events of this Send refused with 400 while none was accepted.
	trusted  bool
	suspects []int
}

// httpCoreConfig is what an HTTP sender gives newHTTPCore.
type httpCoreConfig struct {
	url, compression string
	tls              TLSClientConfig
	timeout          time.Duration
	maxBody          int
}

func newHTTPCore(cfg httpCoreConfig, m *sendMetrics, log zerolog.Logger) (*httpCore, error) {
	u, err := url.Parse(cfg.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// Not quoted: a URL may carry a token.
		return nil, errors.New("forward: url is not an http:// or https:// URL with a host")
	}
	c := &httpCore{
		url:     cfg.url,
		header:  http.Header{"User-Agent": {"dtrelay"}},
		maxBody: cfg.maxBody,
		m:       m,
		log:     log,
		sampled: log.Sample(&zerolog.BurstSampler{Burst: 5, Period: 10 * time.Second}),
	}
	// A path can carry a token (a Rapid7 webhook's /v1/noformat/<token>).
	c.secrets.AddURL(cfg.url)
	c.where = secret.ShowURL(u)
	switch cfg.compression {
	case "", CompressionGzip:
		c.gzip = true
		c.zw, _ = gzip.NewWriterLevel(&c.zbuf, gzip.BestSpeed) // a valid level: no error
	case CompressionNone:
	default:
		return nil, fmt.Errorf("forward: unknown compression %q (want gzip or none)", cfg.compression)
	}
	if c.maxBody <= 0 {
		c.maxBody = DefaultMaxBodyBytes
	}
	timeout := cfg.timeout
	if timeout <= 0 {
		timeout = DefaultHTTPTimeout
	}
	tlsConf, err := cfg.tls.build(u.Hostname())
	if err != nil {
		return nil, err
	}
	c.client = &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, // HTTPS_PROXY, NO_PROXY
			// HTTP/1.1 keep-alive: one batcher sends one request at a time.
			// No TCP keep-alive probes: an idle output costs nothing; the
			// pool drops idle connections after IdleConnTimeout.
			DialContext:         dialBodyConn,
			DialTLSContext:      dialTLSBodyConn(tlsConf), // https:// without a proxy
			TLSClientConfig:     tlsConf,                  // https:// through a proxy
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	c.trace = &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			if !info.Reused {
				c.conns++
				if c.conns > 1 {
					c.m.reconnects.Inc()
				}
			}
		},
		WroteRequest: func(info httptrace.WroteRequestInfo) { c.wrote.Store(info.Err == nil) },
	}
	return c, nil
}

// send delivers b in requests of at most maxBody bytes, each split further
// on 413 and 400. It returns nil when every request was accepted; events
// the intake refused one by one are marked with b.Reject.
func (c *httpCore) send(ctx context.Context, b *forward.Batch) error {
	c.suspects = c.suspects[:0]
	accepted := 0 // events accepted by the intake during this call
	for lo := 0; lo < b.Len(); {
		hi := c.chunkEnd(b, lo)
		if err := c.sendRange(ctx, b, lo, hi, &accepted); err != nil {
			// The batcher will send the whole batch again.
			c.m.duplicates.Add(accepted)
			return err
		}
		lo = hi
	}
	if len(c.suspects) > 0 && accepted == 0 && !c.trusted {
		return c.refusesAll()
	}
	for _, i := range c.suspects {
		c.reject(b, i, http.StatusBadRequest)
	}
	if accepted > 0 {
		c.trusted = true
	} else if len(c.suspects) > 0 {
		c.trusted = false
	}
	return nil
}

// chunkEnd returns the end of the longest run of events from lo whose body
// fits in maxBody (at least one event).
func (c *httpCore) chunkEnd(b *forward.Batch, lo int) int {
	limit := b.Start(lo) + c.maxBody - len(c.prefix) - len(c.suffix) + c.trim
	hi := lo + sort.SearchInts(b.Ends[lo:], limit+1)
	return max(hi, lo+1)
}

// sendRange posts events [lo, hi) of b, halving the range on 413 and 400,
// which an intake answers for a request holding an event it refuses: down
// to one event, which is then refused for its content (marked with
// b.Reject; for 400, see refused400).
func (c *httpCore) sendRange(ctx context.Context, b *forward.Batch, lo, hi int, accepted *int) error {
	status, retryAfter, err := c.post(ctx, b, lo, hi)
	if err != nil {
		if c.wrote.Load() {
			c.m.duplicates.Add(hi - lo) // the intake may have taken it before failing
		}
		return err
	}
	switch {
	case status >= 200 && status < 300:
		c.logged = 0
		if c.checkIDs {
			c.checkEventIDs(b, lo, hi)
		}
		*accepted += hi - lo
		return nil
	case status == http.StatusRequestEntityTooLarge || status == http.StatusBadRequest:
		if hi-lo > 1 {
			mid := lo + (hi-lo)/2
			if err := c.sendRange(ctx, b, lo, mid, accepted); err != nil {
				return err
			}
			return c.sendRange(ctx, b, mid, hi, accepted)
		}
		if status == http.StatusRequestEntityTooLarge {
			c.reject(b, lo, status)
			return nil
		}
		return c.refused400(lo, *accepted)
	}
	reason := "http_" + strconv.Itoa(status)
	c.m.failure(reason)
	if status/100 == 3 {
		// Not followed (CheckRedirect): a configuration error, never a
		// reason to drop events. Retried with backoff or after Retry-After.
		c.logRedirect(status)
		err = forward.Fixable(reason, fmt.Errorf("cannot deliver batch to %s: HTTP %d, a redirect, not followed: fix the output's url", c.where, status))
		if d, ok := retry.ParseAfter(retryAfter, time.Now()); ok {
			return forward.RetryAfter(d, err)
		}
		return err
	}
	err = fmt.Errorf("cannot deliver batch to %s: HTTP %d%s", c.where, status, c.snippet())
	switch status {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		if d, ok := retry.ParseAfter(retryAfter, time.Now()); ok {
			return forward.RetryAfter(d, err)
		}
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		// The key, its rights or the url: every request fails the same
		// way until the operator fixes it. The events are kept.
		c.logFix(status, c.hints[status])
		return forward.Fixable(reason, err)
	}
	return err
}

// refused400 handles a 400 for the single event i, with accepted events
// accepted so far in this Send. An intake answers 400 to a request it
// cannot take: for one event's content (invalid UTF-8 in a JSON string, a
// field it refuses), or for the request itself (a wrong url or endpoint, an
// encoding it does not speak). Halving tells them apart: once the intake
// takes other events, the event is refused for its content (marked at the
// end of send); while it takes none, a second event refused alone means
// the request is at fault, which the operator must fix: Fixable, retried,
// with no more requests spent on this batch. One refused event in a batch
// the intake took nothing else of counts as its content's when the last
// batch that reached the intake had events accepted (trusted).
func (c *httpCore) refused400(i, accepted int) error {
	c.suspects = append(c.suspects, i)
	if accepted == 0 && !c.trusted && len(c.suspects) >= 2 {
		return c.refusesAll()
	}
	return nil
}

// refusesAll is the error of an intake answering 400 to every request.
func (c *httpCore) refusesAll() error {
	c.m.failure("http_400")
	c.trusted = false
	c.logFix(http.StatusBadRequest, "intake refuses every request as malformed (400), even one event alone: check url, endpoint and compression")
	return forward.Fixable("http_400", fmt.Errorf("cannot deliver batch to %s: HTTP 400 for every event%s", c.where, c.snippet()))
}

// reject marks event i of b as refused for its content with status.
func (c *httpCore) reject(b *forward.Batch, i, status int) {
	b.Reject(i, "rejected_"+strconv.Itoa(status))
	c.sampled.Warn().Int("status", status).Int("bytes", b.Ends[i]-b.Start(i)).Str("intake", c.snippetText()).
		Msg("intake refused an event for its content; it goes to the dead-letter file")
}

// logFix logs, at error level, what the operator must fix for an intake
// that refuses every request with status: once, not once per retry; again
// only after a request went through, or for another status. The batcher
// retries with backoff meanwhile and keeps the events.
func (c *httpCore) logFix(status int, hint string) {
	if c.logged == status {
		return
	}
	c.logged = status
	if hint == "" {
		hint = "intake refuses every request (HTTP " + strconv.Itoa(status) + ")"
	}
	c.log.Error().Int("status", status).Str("url", c.where).Str("intake", c.snippetText()).
		Msg(hint + "; events are kept and retried")
}

// logRedirect logs a 3xx answer, which dtrelay never follows: the output's
// url is wrong (http:// for https://, a moved intake, a login page). It is
// a configuration error, so it is logged once at error level, not once per
// retry: again only after a request went through. The batcher retries with
// backoff meanwhile and keeps the events. The Location is redacted of the
// output's secrets, then cut to maxLoggedLocation bytes.
func (c *httpCore) logRedirect(status int) {
	if c.logged == status {
		return
	}
	c.logged = status
	loc, cut := c.secrets.Cut(c.loc, maxLoggedLocation)
	if cut {
		loc += "..."
	}
	c.log.Error().Int("status", status).Str("url", c.where).Str("location", loc).
		Msg("intake answered with a redirect, which dtrelay does not follow: set the output's url to the intake's address; events are kept and retried")
}

// httpDialer dials the intake (or the proxy) for the HTTP outputs.
var httpDialer = &net.Dialer{Timeout: 10 * time.Second, KeepAlive: -1}

// dialBodyConn dials with httpDialer and returns a TCP connection as a
// bodyConn.
func dialBodyConn(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := httpDialer.DialContext(ctx, network, addr)
	if tc, ok := c.(*net.TCPConn); ok && err == nil {
		return bodyConn{tc}, nil
	}
	return c, err
}

// bodyConn is the TCP connection under an HTTP output's client. net/http
// writes a request body through an io.LimitedReader, which hides
// net.Buffers' WriteTo: a *net.TCPConn's ReadFrom then copies the body
// through a 32 KiB buffer before writing it. For an http:// intake, where
// the transport writes the body to this connection, ReadFrom writes what is
// left of an httpBody (post's) with writev instead, straight from
// the batch: one copy of the body fewer. Over TLS the transport writes to
// its tls.Conn, which encrypts from that buffer, and this is not used.
type bodyConn struct{ *net.TCPConn }

// ReadFrom implements io.ReaderFrom.
func (c bodyConn) ReadFrom(r io.Reader) (int64, error) {
	if n, ok, err := writeBody(c.TCPConn, r); ok {
		return n, err
	}
	return c.TCPConn.ReadFrom(r)
}

// writeBody writes what is left of r to w straight from its slices when r
// is an httpBody under net/http's LimitedReader (ok), accounting the limit.
func writeBody(w io.Writer, r io.Reader) (n int64, ok bool, err error) {
	lr, ok := r.(*io.LimitedReader)
	if !ok {
		return 0, false, nil
	}
	hb, ok := lr.R.(*httpBody)
	if !ok || buffersLen(hb.Buffers) > lr.N {
		return 0, false, nil
	}
	n, err = hb.WriteTo(w)
	lr.N -= n
	return n, true, err
}

// httpTLSHandshakeTimeout bounds the TLS handshake with an https://
// intake (the transport's TLSHandshakeTimeout, which DialTLSContext
// replaces).
const httpTLSHandshakeTimeout = 10 * time.Second

// dialTLSBodyConn returns the transport's DialTLSContext for an https://
// intake: it dials with httpDialer, does the TLS handshake with conf as
// the transport would, and returns the connection as a tlsBodyConn.
func dialTLSBodyConn(conf *tls.Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		raw, err := httpDialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(raw, conf)
		hctx, cancel := context.WithTimeout(ctx, httpTLSHandshakeTimeout)
		defer cancel()
		if err := tc.HandshakeContext(hctx); err != nil {
			_ = raw.Close()
			return nil, err
		}
		return tlsBodyConn{tc}, nil
	}
}

// tlsBodyConn is bodyConn's counterpart for an https:// intake. Under a
// tls.Conn, which has no ReadFrom, the transport's io.Copy of a request
// body reads it through a fresh 32 KiB buffer per request and encrypts
// from there: a copy of every body and 32 KiB of garbage per batch (68
// MB in 10 s of a full-speed https run, the second allocator after the
// blocks). ReadFrom writes what is left of an httpBody straight from the
// batch instead: one Write, and TLS records of up to 16 KiB, per slice.
type tlsBodyConn struct{ *tls.Conn }

// ReadFrom implements io.ReaderFrom.
func (c tlsBodyConn) ReadFrom(r io.Reader) (int64, error) {
	if n, ok, err := writeBody(c.Conn, r); ok {
		return n, err
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r) // what the transport did
}

// httpBody is a request body of slices, the type bodyConn recognises. An
// io.ReadCloser itself, so that net/http does not wrap it in a NopCloser
// (which would hide it).
type httpBody struct{ net.Buffers }

// Close implements io.Closer.
func (*httpBody) Close() error { return nil }

// buffersLen returns the number of bytes in b.
func buffersLen(b net.Buffers) int64 {
	var n int64
	for _, s := range b {
		n += int64(len(s))
	}
	return n
}

// post sends one request with events [lo, hi) of b and reads the response
// into c.resp. err is a transport failure (counted); otherwise status is the
// intake's answer.
func (c *httpCore) post(ctx context.Context, b *forward.Batch, lo, hi int) (status int, retryAfter string, err error) {
	body := b.Data[b.Start(lo) : b.Ends[hi-1]-c.trim]
	size := len(c.prefix) + len(body) + len(c.suffix)
	if c.gzip {
		c.zbuf.Reset()
		c.zw.Reset(&c.zbuf)
		_, _ = c.zw.Write(c.prefix) // writes to a bytes.Buffer cannot fail
		_, _ = c.zw.Write(body)
		_, _ = c.zw.Write(c.suffix)
		_ = c.zw.Close()
		c.bufs = append(c.bufs[:0], c.zbuf.Bytes())
		size = c.zbuf.Len()
	} else {
		c.bufs = append(c.bufs[:0], c.prefix, body, c.suffix)
	}
	rd := &httpBody{c.bufs} // net.Buffers consumes its slice as it is read
	c.wrote.Store(false)
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, c.trace), http.MethodPost, c.url, rd)
	if err != nil {
		return 0, "", fmt.Errorf("cannot build request to %s: %w", c.where, err)
	}
	req.ContentLength = int64(size)
	for k, v := range c.header {
		req.Header[k] = v
	}
	if c.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the URL, which may hold a query
		}
		if ctx.Err() != nil {
			return 0, "", fmt.Errorf("cannot deliver batch to %s: %w", c.where, ctx.Err())
		}
		reason := failureReason(err)
		c.m.failure(reason)
		// A rejected certificate is retried too (see SyslogSender).
		return 0, "", fmt.Errorf("cannot deliver batch to %s: %w", c.where, err)
	}
	c.resp, err = readAtMost(c.resp[:0], resp.Body, maxResponseBody)
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody)) // drain for reuse
	resp.Body.Close()
	if err != nil && resp.StatusCode/100 != 2 {
		c.resp = c.resp[:0] // a cut error body is still worth its status
	}
	c.loc = ""
	if resp.StatusCode/100 == 3 {
		c.loc = resp.Header.Get("Location")
	}
	return resp.StatusCode, resp.Header.Get("Retry-After"), nil
}

// readAtMost appends up to limit bytes of r to dst.
func readAtMost(dst []byte, r io.Reader, limit int) ([]byte, error) {
	for len(dst) < limit {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := r.Read(dst[len(dst):min(cap(dst), limit)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// snippet is a short, printable, redacted quote of the last response body
// for error messages.
func (c *httpCore) snippet() string {
	if q := c.snippetText(); q != "" {
		return ": " + strconv.Quote(q)
	}
	return ""
}

// snippetText is the start of the last response body, redacted, for logs.
func (c *httpCore) snippetText() string {
	s := bytes.TrimSpace(c.resp)
	if len(s) == 0 {
		return ""
	}
	// Redacted before it is cut: a secret straddling the cut would not
	// match any more and show its first characters.
	q, _ := c.secrets.CutBytes(s, 160)
	return q
}

// checkEventIDs reads the "event_ids" of an accepted response to events
// [lo, hi) of b. Sekoia answers one id per accepted event. A list as long
// as the events sent whose entry i is not a non-empty string (null, an
// object with an error) is a per-event status: event lo+i was refused for
// its content, and is marked with b.Reject ("rejected_event"). A shorter
// list means the intake dropped some events without saying which: counted
// as rejected ("missing_event_id") and logged, not retried, as re-sending
// the batch would duplicate the others. A response without the list (or
// not JSON) is taken at its 2xx word.
func (c *httpCore) checkEventIDs(b *forward.Batch, lo, hi int) {
	v, err := c.parser.ParseBytes(c.resp)
	if err != nil {
		return
	}
	ids := v.Get("event_ids")
	if ids == nil || ids.Type() != fastjson.TypeArray {
		return
	}
	arr, _ := ids.Array()
	sent := hi - lo
	if len(arr) == sent {
		for i, id := range arr {
			if s, err := id.StringBytes(); err != nil || len(s) == 0 {
				b.Reject(lo+i, "rejected_event")
				st, _ := c.secrets.CutBytes(id.MarshalTo(nil), 160)
				c.sampled.Warn().Str("status", st).Int("bytes", b.Ends[lo+i]-b.Start(lo+i)).
					Msg("intake refused an event of the batch; it goes to the dead-letter file")
			}
		}
		return
	}
	if missing := sent - len(arr); missing > 0 {
		c.m.rejected("missing_event_id", missing)
		c.log.Warn().Int("sent", sent).Int("accepted", len(arr)).
			Msg("intake accepted fewer events than sent without saying which; the others are dropped")
	}
}

// close releases idle connections.
func (c *httpCore) close() {
	c.client.CloseIdleConnections()
}
