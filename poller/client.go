package poller

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dtrelay/dtrelay/internal/retry"
	"github.com/dtrelay/dtrelay/internal/secret"
	"github.com/dtrelay/dtrelay/internal/tlsfiles"
)

// client makes signed GET requests to one Darktrace instance. It is safe for
// concurrent use (each endpoint's goroutine).
type client struct {
	http            *http.Client
	base            url.URL // scheme, host and path prefix, no trailing slash
	public, private string
	secrets         secret.Set // the tokens; each request's signature is added to a copy
	maxBody         int64
	now             func() time.Time
}

func newClient(cfg *Config) (*client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("poller: url is not an https:// (or http://) URL with a host")
	}
	if u.User != nil || u.RawQuery != "" {
		return nil, errors.New("poller: url must not carry a user, password or query")
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	pool, err := tlsfiles.RootCAs(cfg.CAFile, !cfg.NoSystemRoots)
	if err != nil {
		return nil, err
	}
	tlsConf.RootCAs = pool
	dialer := &net.Dialer{Timeout: min(cfg.Timeout, 10*time.Second), KeepAlive: 30 * time.Second}
	c := &client{
		base:    url.URL{Scheme: u.Scheme, Host: u.Host, Path: strings.TrimRight(u.Path, "/")},
		public:  cfg.PublicToken,
		private: cfg.PrivateToken,
		maxBody: cfg.MaxResponseSize,
		now:     cfg.now,
	}
	c.secrets.Add(cfg.PublicToken)
	c.secrets.Add(cfg.PrivateToken)
	c.http = &http.Client{
		Timeout: cfg.Timeout,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			TLSClientConfig:       tlsConf,
			TLSHandshakeTimeout:   min(cfg.Timeout, 10*time.Second),
			ResponseHeaderTimeout: cfg.Timeout,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		},
		// Never follow: where Darktrace redirects to is the diagnosis.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// get requests path (below the base URL) with query, and reads a 200 answer
// into buf (reset first). It returns the HTTP status (0 without an answer)
// and an error for anything but a 200 whose body fits in maxBody.
func (c *client) get(ctx context.Context, path string, query url.Values, buf *bytes.Buffer) (int, error) {
	u := c.base
	u.Path += path
	var date, sig string
	u.RawQuery, date, sig = Sign(u.EscapedPath(), query, c.public, c.private, c.now())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, fmt.Errorf("cannot build request for %s: %w", path, err)
	}
	req.Header.Set("DTAPI-Token", c.public)
	req.Header.Set("DTAPI-Date", date)
	req.Header.Set("DTAPI-Signature", sig)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "dtrelay")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, c.transportError(ctx, path, err)
	}
	defer resp.Body.Close()
	buf.Reset()
	if resp.StatusCode != http.StatusOK {
		// A short read of the body for the diagnosis; the rest is drained
		// (bounded) so that the connection can be reused.
		_, _ = io.Copy(buf, io.LimitReader(resp.Body, 4096))
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		// The signature is a secret too: replayed within the date's
		// tolerance, it authenticates the same request.
		return resp.StatusCode, c.statusError(path, date, resp, buf.Bytes(), c.secrets.With(sig))
	}
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		return resp.StatusCode, c.transportError(ctx, path, err)
	}
	if n > c.maxBody {
		return resp.StatusCode, fmt.Errorf("%w: GET %s returned more than %d bytes", ErrTooLarge, path, c.maxBody)
	}
	return resp.StatusCode, nil
}

func (c *client) transportError(ctx context.Context, path string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if isTimeout(err) {
		return fmt.Errorf("%w: GET %s: %w", ErrTimeout, path, err)
	}
	var unknown x509.UnknownAuthorityError
	if errors.As(err, &unknown) {
		return fmt.Errorf("%w: GET %s: %w", ErrUntrusted, path, err)
	}
	return fmt.Errorf("cannot GET %s: %w", path, err)
}

// statusError explains a non-200 answer.
func (c *client) statusError(path, date string, resp *http.Response, body []byte, secrets *secret.Set) error {
	code := resp.StatusCode
	switch {
	case code >= 300 && code < 400:
		loc := resp.Header.Get("Location")
		lu, err := url.Parse(loc)
		if err != nil {
			return fmt.Errorf("%w (HTTP %d) from %s to an unparsable location", ErrRedirect, code, path)
		}
		p := strings.TrimSuffix(lu.Path, "/")
		switch {
		case p == "/login" || strings.HasSuffix(p, "/login"):
			return fmt.Errorf("%w (GET %s, HTTP %d)", ErrLogin, path, code)
		case p == "/403" || strings.HasSuffix(p, "/403"):
			return fmt.Errorf("%w (GET %s redirected to /403)", ErrForbidden, path)
		}
		return fmt.Errorf("%w (HTTP %d) from %s to %s", ErrRedirect, code, path, snippet([]byte(lu.Path), 120, secrets))
	case code == http.StatusBadRequest && bytes.Contains(body, []byte("API SIGNATURE ERROR")):
		return fmt.Errorf("%w (GET %s)", ErrSignature, path)
	case code == http.StatusBadRequest && bytes.Contains(body, []byte("API DATE ERROR")):
		return fmt.Errorf("%w (GET %s; DTAPI-Date was %s UTC, from this host's clock)", ErrDate, path, date)
	case code == http.StatusUnauthorized:
		return fmt.Errorf("%w (GET %s)", ErrUnauthorized, path)
	case code == http.StatusForbidden:
		return fmt.Errorf("%w (GET %s, HTTP 403)", ErrForbidden, path)
	}
	err := fmt.Errorf("%w %d from GET %s: %s", ErrStatus, code, path, snippet(body, 120, secrets))
	if code == http.StatusTooManyRequests {
		err = fmt.Errorf("%w (GET %s): %s", ErrRateLimited, path, snippet(body, 120, secrets))
	}
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		if d, ok := retry.ParseAfter(resp.Header.Get("Retry-After"), c.now()); ok {
			return &retryAfterError{after: d, err: err}
		}
	}
	return err
}

func (c *client) close() { c.http.CloseIdleConnections() }
