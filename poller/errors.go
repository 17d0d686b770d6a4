package poller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/dtrelay/dtrelay/internal/secret"
)

// Errors a poll can end with. Each is returned wrapped, with the endpoint
// and details (never a token); test with errors.Is.
var (
	// ErrSignature: HTTP 400 "API SIGNATURE ERROR". Darktrace recomputed
	// the signature and got another one: the private token does not belong
	// to the public token (or something rewrote the request on the way).
	ErrSignature = errors.New("poller: API SIGNATURE ERROR: Darktrace rejected the request signature; check that private_token belongs to public_token")
	// ErrDate: HTTP 400 "API DATE ERROR". The DTAPI-Date header is too far
	// from Darktrace's clock: this host's clock is probably wrong.
	ErrDate = errors.New("poller: API DATE ERROR: Darktrace rejected the request date; this host's clock is probably off (check NTP)")
	// ErrLogin: a redirect to /login. The URL does not lead to the API
	// (a wrong path or host), or the token was not accepted.
	ErrLogin = errors.New("poller: redirected to /login: url is not a Darktrace API endpoint, or the API token was not accepted")
	// ErrForbidden: a redirect to /403, or HTTP 403. The token lacks the
	// permission the endpoint needs.
	ErrForbidden = errors.New("poller: permission denied: the API token lacks the permission this endpoint needs")
	// ErrUnauthorized: HTTP 401, Darktrace's "invalid signature, token or
	// date".
	ErrUnauthorized = errors.New("poller: HTTP 401: Darktrace did not accept the token, signature or date")
	// ErrRedirect: a redirect elsewhere (redirects are not followed).
	ErrRedirect = errors.New("poller: unexpected redirect")
	// ErrStatus: any other HTTP status than 200.
	ErrStatus = errors.New("poller: unexpected HTTP status")
	// ErrBadResponse: a 200 whose body is not a JSON array.
	ErrBadResponse = errors.New("poller: response is not a JSON array")
	// ErrTooLarge: a response body over Config.MaxResponseSize. The window
	// is halved for the next attempt.
	ErrTooLarge = errors.New("poller: response too large")
	// ErrRateLimited: HTTP 429. Retried no earlier than its Retry-After.
	ErrRateLimited = errors.New("poller: HTTP 429: Darktrace is rate limiting this token")
	// ErrUntrusted: the API's certificate is not signed by a CA this host
	// trusts (a private CA, or a TLS-inspecting proxy): ca_file is the fix.
	ErrUntrusted = errors.New("poller: the API's TLS certificate is not signed by a trusted CA; set the input's ca_file to the CA (PEM) that signed it")
	// ErrTimeout: no complete answer within Config.Timeout.
	ErrTimeout = errors.New("poller: request timed out")
)

// retryAfterError carries the delay an HTTP 429 or 503 asked for.
type retryAfterError struct {
	after time.Duration
	err   error
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// reason returns the errors_total label for a poll error.
func reason(err error) string {
	switch {
	case errors.Is(err, ErrSignature):
		return "signature"
	case errors.Is(err, ErrDate):
		return "date"
	case errors.Is(err, ErrLogin):
		return "login_redirect"
	case errors.Is(err, ErrForbidden):
		return "forbidden"
	case errors.Is(err, ErrUnauthorized):
		return "unauthorized"
	case errors.Is(err, ErrRedirect):
		return "redirect"
	case errors.Is(err, ErrRateLimited):
		return "rate_limited"
	case errors.Is(err, ErrUntrusted):
		return "tls"
	case errors.Is(err, ErrStatus):
		return "http_status"
	case errors.Is(err, ErrBadResponse):
		return "bad_response"
	case errors.Is(err, ErrTooLarge):
		return "too_large"
	case errors.Is(err, ErrTimeout):
		return "timeout"
	case errors.Is(err, errDelivery):
		return "delivery"
	}
	return "transport"
}

// errDelivery wraps a FlushWait failure.
var errDelivery = errors.New("poller: the pipeline did not confirm delivery")

// isTimeout reports whether err is a client-side timeout (not the caller's
// cancellation).
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// snippet returns at most max bytes of b for an error message: printable
// ASCII only, with the secrets redacted (before the cut), since an error
// page might echo them.
func snippet(b []byte, max int, secrets *secret.Set) string {
	s, cut := secrets.CutBytes(b, max)
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '.'
		}
		return r
	}, s)
	if cut {
		s += "..."
	}
	return fmt.Sprintf("%q", s)
}

// redactedError is err with the tokens masked in its message; errors.Is
// and errors.As still see err.
type redactedError struct {
	err error
	msg string
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact masks the secrets in err's message, which may quote answers
// from the API.
func redact(err error, secrets *secret.Set) error {
	msg := err.Error()
	masked := secrets.Redact(msg)
	if masked == msg {
		return err
	}
	return &redactedError{err: err, msg: masked}
}
