package receiver

import (
	"bytes"
	"testing"
	"time"
)

// TestBackpressure blocks the sink: the sender's writes must stall (its TCP
// window closes, nothing is dropped or buffered without bound) and resume
// when the sink is released, with every frame delivered.
func TestBackpressure(t *testing.T) {
	const limit = 48 << 20 // the sender stops here; kernel buffers are far smaller
	frame := append(benchAlert(1000), '\n')
	chunk := bytes.Repeat(frame, 64)
	total := limit / len(chunk) * len(chunk)
	for name, cfg := range streamConfigs(t) {
		t.Run(name, func(t *testing.T) {
			pki := newTestPKI(t)
			if cfg.TLS != nil {
				cfg.TLS = pki.serverConfig(false)
			}
			pool := newRecPool(false)
			l, m := startInput(t, cfg, pool)
			defer pool.unblock()
			c := dial(t, l, pki, false)
			defer c.Close()
			pool.block()

			written := make(chan int, 1024)
			go func() {
				defer close(written)
				for sent := 0; sent < total; {
					n, err := c.Write(chunk)
					sent += n
					written <- n
					if err != nil {
						return
					}
				}
			}()

			// Wait until no write completes for 300 ms.
			sent, last := 0, time.Now()
			deadline := time.Now().Add(15 * time.Second)
			for time.Since(last) < 300*time.Millisecond {
				if time.Now().After(deadline) {
					t.Fatalf("writes never stalled (%d bytes sent)", sent)
				}
				select {
				case n, ok := <-written:
					if !ok {
						t.Fatalf("sender finished all %d bytes while the sink was blocked", sent)
					}
					sent += n
					last = time.Now()
				case <-time.After(20 * time.Millisecond):
				}
			}
			if sent >= total {
				t.Fatalf("sent everything (%d bytes) while blocked", sent)
			}
			if pool.count.Load() != 0 || pool.waiting.Load() != 1 {
				t.Fatalf("while blocked: %d frames delivered, %d sinks waiting", pool.count.Load(), pool.waiting.Load())
			}
			t.Logf("stalled after %d KiB in flight", sent>>10)

			pool.unblock()
			for n := range written {
				sent += n
			}
			if sent != total {
				t.Fatalf("sender stopped at %d of %d bytes", sent, total)
			}
			want := int64(total / len(frame))
			waitFor(t, 20*time.Second, "every frame", func() bool { return pool.count.Load() == want })
			if m.oversize.Get() != 0 || m.bytes.Get() != uint64(total) {
				t.Fatalf("oversize %d, bytes %d (want 0, %d)", m.oversize.Get(), m.bytes.Get(), total)
			}
		})
	}
}

// TestIdleTimeoutIgnoresBackpressure: connections held back because the
// sink blocks are not idle, whatever the idle timeout, and lose nothing.
func TestIdleTimeoutIgnoresBackpressure(t *testing.T) {
	const idle = 150 * time.Millisecond
	for name, cfg := range streamConfigs(t) {
		t.Run(name, func(t *testing.T) {
			pki := newTestPKI(t)
			if cfg.TLS != nil {
				cfg.TLS = pki.serverConfig(false)
			}
			cfg.IdleTimeout = idle
			cfg.EventLoops = 1 // both connections on the blocked loop
			pool := newRecPool(false)
			l, m := startInput(t, cfg, pool)
			defer pool.unblock()
			a, b := dial(t, l, pki, false), dial(t, l, pki, false)
			defer a.Close()
			defer b.Close()
			pool.block()
			sendLine(t, a, "held by the sink")
			waitFor(t, 5*time.Second, "sink blocked", func() bool { return pool.waiting.Load() == 1 })
			sendLine(t, b, "waiting in the kernel or the sink")
			// Four idle timeouts pass while the sink blocks.
			if !stillOpen(b, 4*idle) {
				t.Fatal("connection closed while held back by the sink")
			}
			pool.unblock()
			waitFor(t, 5*time.Second, "both frames", func() bool { return pool.count.Load() == 2 })
			if got := m.idleClosed.Get(); got != 0 {
				t.Fatalf("%d idle closes during backpressure", got)
			}
		})
	}
}
