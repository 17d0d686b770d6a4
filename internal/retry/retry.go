// Package retry holds the delay arithmetic that forward's batcher and the
// Darktrace API poller share: capped exponential backoff with jitter, and
// the parsing of an HTTP Retry-After header. Everything here is a pure
// function, safe for concurrent use.
package retry

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxAfter caps the delay a Retry-After may ask for: a peer that says
// "come back tomorrow" is asked again in ten minutes.
const MaxAfter = 10 * time.Minute

// Backoff returns the delay before retry number attempt (from 0): first,
// doubled at each attempt, capped at max, then jittered over its upper half
// (between d/2 and d). It never overflows, whatever attempt is; first and
// max must be positive, with first at most max.
func Backoff(attempt int, first, max time.Duration) time.Duration {
	d := first
	for i := 0; i < attempt && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	if half := d / 2; half > 0 {
		d = half + rand.N(half+1)
	}
	return d
}

// ParseAfter parses a Retry-After value (RFC 9110 10.2.3): delay-seconds or
// an HTTP date, relative to now. The delay is capped at MaxAfter; ok is
// false for an empty, negative or unparsable value.
func ParseAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(min(secs, int64(MaxAfter/time.Second))) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return min(max(t.Sub(now), 0), MaxAfter), true
}
