package retry

import (
	"math"
	"net/http"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	f := func(attempt int, want time.Duration) {
		t.Helper()
		for range 50 {
			if d := Backoff(attempt, 100*time.Millisecond, 30*time.Second); d < want/2 || d > want {
				t.Fatalf("Backoff(%d) = %v, want within [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
	f(0, 100*time.Millisecond)
	f(1, 200*time.Millisecond)
	f(3, 800*time.Millisecond)
	f(9, 30*time.Second)
	f(64, 30*time.Second) // a shift would have overflowed here
	f(math.MaxInt, 30*time.Second)
	if d := Backoff(5, time.Nanosecond, time.Nanosecond); d != time.Nanosecond {
		t.Errorf("Backoff with a 1ns cap = %v", d)
	}
}

func TestParseAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{" 7 ", 7 * time.Second, true},
		{"599", 599 * time.Second, true},
		{"3600", MaxAfter, true},
		{"99999999999999", MaxAfter, true},
		{"9223372036854775807", MaxAfter, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), MaxAfter, true},
	} {
		if got, ok := ParseAfter(tc.in, now); got != tc.want || ok != tc.ok {
			t.Errorf("ParseAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
