package forward

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"
)

// TestRetryDelayHonoursRetryAfter: an intake's Retry-After delays a retry
// up to maxRetryAfter, never sooner than the backoff; without one the
// delay is the capped, jittered backoff.
func TestRetryDelayHonoursRetryAfter(t *testing.T) {
	errIntake := errors.New("HTTP 503")
	for _, tc := range []struct {
		err      error
		min, max time.Duration
	}{
		{RetryAfter(time.Hour, errIntake), maxRetryAfter, maxRetryAfter},
		{RetryAfter(90*time.Second, errIntake), 90 * time.Second, 90 * time.Second},
		{RetryAfter(time.Millisecond, errIntake), backoffMin / 2, backoffMin}, // never sooner than the backoff
		{errIntake, backoffMax / 2, backoffMax},                               // attempt 30: the capped backoff
	} {
		attempt := 0
		if !errors.As(tc.err, new(*RetryAfterError)) {
			attempt = 30
		}
		if d := retryDelay(attempt, tc.err); d < tc.min || d > tc.max {
			t.Errorf("retryDelay(%d, %v) = %v, want %v to %v", attempt, tc.err, d, tc.min, tc.max)
		}
	}

}

// TestConnectTimeoutDoesNotShrinkRequests: a timeout while connecting says
// nothing about the request's size; one while sending does.
func TestConnectTimeoutDoesNotShrinkRequests(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}
	write := &net.OpError{Op: "write", Net: "tcp", Err: os.ErrDeadlineExceeded}
	for _, tc := range []struct {
		err  error
		slow bool
	}{
		{fmt.Errorf("cannot connect to x: %w", dial), false},
		{fmt.Errorf("cannot deliver batch to x: %w", write), true},
		{fmt.Errorf("cannot deliver batch to x: %w", context.DeadlineExceeded), true},
		{errors.New("connection refused"), false},
	} {
		if got := isSlowSend(tc.err); got != tc.slow {
			t.Errorf("isSlowSend(%v) = %v, want %v", tc.err, got, tc.slow)
		}
	}
}
