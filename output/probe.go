package output

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"path/filepath"
)

// The Probe methods check that an output can be reached, the way its Send
// would reach it (same address, trust, client certificate, proxy), without
// sending an event: what `dtrelay check --online` runs. Each returns what it
// checked, or why it failed; the error's text never holds a key, a header
// value or a URL's secret. A Sender that was probed is closed by its
// caller as usual.

// Probe connects to the intake, shakes hands when TLS is on (with TLS 1.3
// and a client certificate asked for, it also waits for the server's
// verdict on it, as Send does), and closes the connection with nothing
// sent.
func (s *SyslogSender) Probe(ctx context.Context) (string, error) {
	if err := s.connect(ctx); err != nil {
		return "", err
	}
	what := "TCP connect" + tlsDetail(s.conn.nc)
	s.Close()
	return what, nil
}

// Probe connects, shakes hands when TLS is on, opens a RELP session (the
// intake must answer 200 with a relp_version and the syslog command among
// its offers) and closes it with "close", with no message sent.
func (s *RelpSender) Probe(ctx context.Context) (string, error) {
	if err := s.open(ctx); err != nil {
		return "", err
	}
	what := "TCP connect" + tlsDetail(s.sess.d.conn) + ", RELP open"
	if s.closeSession() {
		what += " and close"
	} else {
		what += " (no answer to close)"
	}
	return what, nil
}

// Probe sends one GET to the intake's endpoint, without the intake key
// and without a body: Sekoia.io documents no request that checks a key
// without creating an event (an empty POST is not documented to be
// refused, and could be taken as an empty event), so the key is not
// tested. Any HTTP answer proves the connection, the TLS trust and that an
// HTTP server answers there.
func (s *SekoiaHTTPSender) Probe(ctx context.Context) (string, error) {
	return s.core.probe(ctx)
}

// Probe sends one GET to the output's URL, without the configured headers
// (they may hold credentials, and the request is not the one Send makes)
// and without a body. Any HTTP answer proves the connection, the TLS trust
// and that an HTTP server answers there.
func (s *HTTPSender) Probe(ctx context.Context) (string, error) {
	return s.core.probe(ctx)
}

func (c *httpCore) probe(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return "", fmt.Errorf("cannot build request to %s: %w", c.where, err)
	}
	req.Header.Set("User-Agent", "dtrelay")
	var tlsVersion uint16 // the connection's, when it is a tlsBodyConn (resp.TLS is nil then)
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if tc, ok := info.Conn.(tlsBodyConn); ok {
			tlsVersion = tc.ConnectionState().Version
		}
	}}))
	resp, err := c.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the URL, which may hold a secret
		}
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return "", fmt.Errorf("cannot reach %s: %w", c.where, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody))
	resp.Body.Close()
	c.client.CloseIdleConnections()
	what := "TCP connect"
	if resp.TLS != nil {
		tlsVersion = resp.TLS.Version
	}
	if tlsVersion != 0 {
		what += ", " + tls.VersionName(tlsVersion) + " handshake"
	}
	return fmt.Sprintf("%s, HTTP %d to a GET without key or body", what, resp.StatusCode), nil
}

// ProbeFile checks that a file output's path can be written without
// writing to it: an existing file is opened for appending (a symbolic
// link is refused, as NewFileSender refuses it) and closed; for a new one,
// a temporary file is created in its directory and removed, so that the
// check leaves nothing behind. "-" (standard output) always passes.
func ProbeFile(path string) (string, error) {
	if path == "-" {
		return "standard output", nil
	}
	if isSymlink(path) {
		return "", symlinkError(path)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|oNoFollow, 0)
	if err == nil {
		f.Close()
		return "the file is writable", nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("cannot open output file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".dtrelay-check-*")
	if err != nil {
		return "", fmt.Errorf("cannot create output file %s: %w", path, err)
	}
	tmp.Close()
	os.Remove(tmp.Name())
	return "the file does not exist yet; its directory is writable", nil
}

// tlsDetail says which TLS version c negotiated, if it is a TLS connection.
func tlsDetail(c net.Conn) string {
	if tc, ok := c.(*tls.Conn); ok {
		return ", " + tls.VersionName(tc.ConnectionState().Version) + " handshake"
	}
	return ""
}
