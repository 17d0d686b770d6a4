package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestWatchdogPingsOnlyWhileAlive: no ping while the liveness check
// fails, pings again once it answers, none after ctx ends.
func TestWatchdogPingsOnlyWhileAlive(t *testing.T) {
	var healthy atomic.Bool
	var checks, pings atomic.Int64
	alive := func(context.Context) error {
		checks.Add(1)
		if !healthy.Load() {
			return errors.New("wedged")
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		watchdog(ctx, time.Millisecond, alive, func() { pings.Add(1) }, zerolog.Nop())
	}()
	waitFor(t, "ten failed checks", func() bool { return checks.Load() >= 10 })
	if n := pings.Load(); n != 0 {
		t.Fatalf("%d pings while the check failed", n)
	}
	healthy.Store(true)
	waitFor(t, "pings once alive", func() bool { return pings.Load() >= 3 })
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("watchdog did not return after its context ended")
	}
	n := pings.Load()
	time.Sleep(20 * time.Millisecond)
	if pings.Load() != n {
		t.Fatal("pings after the context ended")
	}
}

// TestWatchdogCheckIsBounded: a check that hangs is given half a period,
// then counts as failed.
func TestWatchdogCheckIsBounded(t *testing.T) {
	var failed atomic.Int64
	hang := func(ctx context.Context) error { <-ctx.Done(); failed.Add(1); return ctx.Err() }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var pings atomic.Int64
	go watchdog(ctx, 2*time.Millisecond, hang, func() { pings.Add(1) }, zerolog.Nop())
	waitFor(t, "three timed-out checks", func() bool { return failed.Load() >= 3 })
	if pings.Load() != 0 {
		t.Fatal("a ping after a hung check")
	}
}

func TestHTTPLiveness(t *testing.T) {
	var status atomic.Int64
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(int(status.Load()))
	}))
	addr := srv.Listener.Addr()
	check := httpLiveness(addr)
	ctx := context.Background()
	if err := check(ctx); err != nil {
		t.Fatalf("healthy relay: %v", err)
	}
	status.Store(http.StatusServiceUnavailable)
	if err := check(ctx); err == nil {
		t.Fatal("503 from /healthz passed the check")
	}
	srv.Close()
	if err := check(ctx); err == nil {
		t.Fatal("a closed metrics listener passed the check")
	}
	if err := httpLiveness(nil)(ctx); err != nil {
		t.Fatalf("no metrics listener: %v", err)
	}
}

func TestLoopbackFor(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"0.0.0.0:9514", "127.0.0.1:9514"},
		{"[::]:9514", "[::1]:9514"},
		{"127.0.0.2:9514", "127.0.0.2:9514"},
		{"[::1]:1", "[::1]:1"},
	} {
		a, err := net.ResolveTCPAddr("tcp", c.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := loopbackFor(a); got != c.want {
			t.Errorf("loopbackFor(%s) = %s, want %s", c.in, got, c.want)
		}
	}
}
