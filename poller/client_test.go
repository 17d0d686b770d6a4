package poller

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/internal/retry"
)

func TestClientErrors(t *testing.T) {
	tests := []struct {
		name     string
		fault    *mockFault
		mod      func(*Config)
		static   []byte
		want     error
		reason   string
		contains string
		status   int
	}{
		{name: "ok", static: []byte(`[{"pbid":1}]`), status: 200},
		{name: "400 API SIGNATURE ERROR", fault: &mockFault{status: 400, body: `{"error":"API SIGNATURE ERROR"}`},
			want: ErrSignature, reason: "signature", contains: "private_token", status: 400},
		{name: "400 API DATE ERROR hints at the clock", fault: &mockFault{status: 400, body: "API DATE ERROR"},
			want: ErrDate, reason: "date", contains: "clock", status: 400},
		{name: "302 to /login", fault: &mockFault{status: 302, location: "/login?returnTo=%2Fmodelbreaches"},
			want: ErrLogin, reason: "login_redirect", contains: "not a Darktrace API endpoint", status: 302},
		{name: "302 to /403", fault: &mockFault{status: 302, location: "https://dt.example.com/403"},
			want: ErrForbidden, reason: "forbidden", contains: "permission", status: 302},
		{name: "302 elsewhere", fault: &mockFault{status: 302, location: "/maintenance"},
			want: ErrRedirect, reason: "redirect", contains: "/maintenance", status: 302},
		{name: "401", fault: &mockFault{status: 401}, want: ErrUnauthorized, reason: "unauthorized", status: 401},
		{name: "403", fault: &mockFault{status: 403}, want: ErrForbidden, reason: "forbidden", status: 403},
		{name: "500 quotes the body, tokens redacted", fault: &mockFault{status: 500, body: "internal error for token " + testPublic},
			want: ErrStatus, reason: "http_status", contains: `500 from GET /modelbreaches: "internal error for token [redacted]"`, status: 500},
		{name: "hang times out", fault: &mockFault{hang: true}, mod: func(c *Config) { c.Timeout = 200 * time.Millisecond },
			want: ErrTimeout, reason: "timeout"},
		{name: "body over MaxResponseSize", static: bytes.Repeat([]byte(" "), 2000), mod: func(c *Config) { c.MaxResponseSize = 1000 },
			want: ErrTooLarge, reason: "too_large", status: 200},
		{name: "genuine signature error: wrong private token", mod: func(c *Config) { c.PrivateToken = "not-the-private-token" },
			want: ErrSignature, reason: "signature", status: 400},
		{name: "genuine date error: clock an hour ahead", mod: func(c *Config) { c.now = func() time.Time { return time.Now().Add(time.Hour) } },
			want: ErrDate, reason: "date", contains: "DTAPI-Date was", status: 400},
		{name: "unknown public token", mod: func(c *Config) { c.PublicToken = "pub-unknown" },
			want: ErrUnauthorized, reason: "unauthorized", status: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMockAPI(t, testPublic, testPrivate)
			m.allowProblems()
			if tt.fault != nil {
				m.failNext(1, *tt.fault)
			}
			if tt.static != nil {
				m.setStatic(breachesEP, tt.static)
			}
			cfg := testConfig(m)
			if tt.mod != nil {
				tt.mod(&cfg)
			}
			if err := cfg.complete(); err != nil {
				t.Fatal(err)
			}
			c, err := newClient(&cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.close()
			var buf bytes.Buffer
			q := url.Values{"starttime": {"1"}, "endtime": {"2"}}
			status, err := c.get(context.Background(), breachesEP, q, &buf)
			if status != tt.status {
				t.Errorf("status %d, want %d", status, tt.status)
			}
			if tt.want == nil {
				if err != nil || buf.String() != string(tt.static) {
					t.Fatalf("err %v, body %q", err, buf.String())
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if r := reason(err); r != tt.reason {
				t.Errorf("reason %q, want %q", r, tt.reason)
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error %q does not contain %q", err, tt.contains)
			}
			for _, r := range m.requests() {
				if r.path != breachesEP {
					t.Errorf("a redirect was followed to %s", r.path)
				}
			}
		})
	}
}

func TestClientRetryAfter(t *testing.T) {
	m := newMockAPI(t, testPublic, testPrivate)
	m.failNext(1, mockFault{status: 429, retryAfter: "7"})
	m.failNext(1, mockFault{status: 503, retryAfter: time.Now().Add(30 * time.Second).UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT")})
	// Seconds that overflow a time.Duration: capped, not wrapped negative.
	m.failNext(1, mockFault{status: 429, retryAfter: "99999999999999"})
	cfg := testConfig(m)
	if err := cfg.complete(); err != nil {
		t.Fatal(err)
	}
	c, err := newClient(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	for i, want := range []time.Duration{7 * time.Second, 30 * time.Second, retry.MaxAfter} {
		var buf bytes.Buffer
		_, err := c.get(context.Background(), breachesEP, url.Values{"starttime": {"1"}, "endtime": {"2"}}, &buf)
		var ra *retryAfterError
		if !errors.As(err, &ra) || !(errors.Is(err, ErrStatus) || errors.Is(err, ErrRateLimited)) {
			t.Fatalf("request %d: err = %v, want a retryAfterError", i, err)
		}
		if ra.after > want || ra.after < want-2*time.Second {
			t.Errorf("request %d: retry after %s, want about %s", i, ra.after, want)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	ok := Config{Name: "c", URL: "https://dt.example.com", PublicToken: "p", PrivateToken: "s"}
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no name", func(c *Config) { c.Name = "" }, "name"},
		{"no token", func(c *Config) { c.PrivateToken = "" }, "private_token"},
		{"not a URL", func(c *Config) { c.URL = "dt.example.com" }, "https://"},
		{"ftp URL", func(c *Config) { c.URL = "ftp://dt.example.com" }, "https://"},
		{"credentials in the URL", func(c *Config) { c.URL = "https://u:secret@dt.example.com" }, "user"},
		{"query in the URL", func(c *Config) { c.URL = "https://dt.example.com/?a=b" }, "query"},
		{"overlap not below max window", func(c *Config) { c.Overlap, c.MaxWindow = time.Hour, time.Hour }, "must exceed overlap"},
		{"negative interval", func(c *Config) { c.Interval = -time.Second }, "positive"},
		{"missing CA file", func(c *Config) { c.CAFile = "/nonexistent/ca.pem" }, "cannot read CA file"},
		{"CA file without PEM", func(c *Config) { c.CAFile = "testdata/README.md" }, "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mod(&cfg)
			_, err := New(cfg, &fakeSink{}, nil, zeroLogger())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error shows the URL's password: %v", err)
			}
		})
	}
}
