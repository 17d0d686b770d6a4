package receiver

import (
	"context"
	"testing"
	"time"
)

// TestRunning: an input runs from Start to Stop, whatever it receives; a
// gnet engine that ends by itself (not through Stop) stops ticking, and
// the input reports it stopped once the ticks are overdue.
func TestRunning(t *testing.T) {
	pki := newTestPKI(t)
	for _, p := range []string{ProtocolTCP, ProtocolUDP, ProtocolTLS} {
		cfg := Config{Protocol: p}
		if p == ProtocolTLS {
			cfg.TLS = pki.serverConfig(false)
		}
		l, _ := startInput(t, cfg, newRecPool(false))
		if !l.Running() {
			t.Fatalf("%s: a started input does not run", p)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := l.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		if l.Running() {
			t.Fatalf("%s: a stopped input runs", p)
		}
	}
	// The engine stopped from inside: its ticker ends with it.
	l, _ := startInput(t, Config{Protocol: ProtocolTCP, IdleTimeout: 40 * time.Millisecond}, newRecPool(false)) // ticks every 10ms
	gs := l.gnet
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := gs.engine.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// A tick under way as the engine stopped may still land: wait for
	// three tick periods without one.
	waitFor(t, 2*time.Second, "the ticks to stop", func() bool {
		last := gs.beat.Load()
		time.Sleep(3 * gs.tick)
		return gs.beat.Load() == last
	})
	gs.beat.Store(monoNow() - int64(engineStaleAfter) - 1) // as if engineStaleAfter had passed
	if l.Running() {
		t.Fatal("an input whose engine ended runs")
	}
}
