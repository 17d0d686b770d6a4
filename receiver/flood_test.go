package receiver

import (
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestSilentFloodRealSenderDelivers measures issue 9's promise: with 1000
// silent connects in flight against an input at its default
// max_connections (1000), a real sender still connects and delivers within
// 1s. "held": 1000 silent connections stay open; "churn": an attacker keeps
// dialing new silent connections as fast as it can, closing its oldest,
// so 1000 are in flight all along. Each round a new real sender connects
// (tcp, or tls with a full handshake), sends one frame and stays connected;
// the time to the frame's delivery is measured.
//
//	go test -run TestSilentFloodRealSenderDelivers -v ./receiver
func TestSilentFloodRealSenderDelivers(t *testing.T) {
	const inFlight, rounds = 1000, 20
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < 3*inFlight {
		t.Skipf("needs %d file descriptors (ulimit -n), have %d", 3*inFlight, lim.Cur)
	}
	p := newTestPKI(t)
	for _, proto := range []string{ProtocolTCP, ProtocolTLS} {
		for _, mode := range []string{"held", "churn"} {
			t.Run(proto+"/"+mode, func(t *testing.T) {
				cfg := Config{Protocol: proto, TLS: p.serverConfig(false), MaxConnections: inFlight}
				pool := newRecPool(false)
				l, m := startInput(t, cfg, pool)
				a := newAttacker(t, l.Addr().String(), inFlight)
				defer a.stop()
				waitFor(t, 10*time.Second, "1000 silent connections held", func() bool {
					return l.cm.slots.count() == inFlight
				})
				if mode == "churn" {
					a.churn()
				}
				var lat []time.Duration
				for i := range rounds {
					start := time.Now()
					c := sender(t, l, p, "")
					defer c.Close()
					sendLine(t, c, "real alert")
					want := int64(i + 1)
					waitFor(t, 5*time.Second, "the real sender's frame", func() bool { return pool.count.Load() == want })
					lat = append(lat, time.Since(start))
				}
				slices.Sort(lat)
				t.Logf("%s %s: %d silent in flight (%d attacker connects, %d evicted, %d refused): real sender connect+deliver median %v, max %v over %d rounds",
					proto, mode, inFlight, a.dials.Load(), m.evicted.Get(), m.rejectMax.Get(), lat[rounds/2], lat[rounds-1], rounds)
				if lat[rounds-1] > time.Second {
					t.Fatalf("a real sender took %v to deliver", lat[rounds-1])
				}
			})
		}
	}
}

// attacker holds n silent connections to addr; churn starts a goroutine
// that keeps replacing the oldest with a new one until stop (bounded by
// 30s).
type attacker struct {
	t     *testing.T
	addr  string
	mu    sync.Mutex
	conns []net.Conn // oldest first
	dials atomic.Int64
	quit  chan struct{}
	done  chan struct{}
}

func newAttacker(t *testing.T, addr string, n int) *attacker {
	a := &attacker{t: t, addr: addr, quit: make(chan struct{}), done: make(chan struct{})}
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			a.stop()
			t.Fatalf("attacker dial: %v", err)
		}
		a.dials.Add(1)
		a.conns = append(a.conns, c)
	}
	close(a.done)
	return a
}

func (a *attacker) churn() {
	a.done = make(chan struct{})
	go func() {
		defer close(a.done)
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-a.quit:
				return
			default:
			}
			c, err := net.DialTimeout("tcp", a.addr, time.Second)
			if err != nil {
				continue
			}
			a.dials.Add(1)
			a.mu.Lock()
			a.conns[0].Close()
			a.conns = append(a.conns[1:], c)
			a.mu.Unlock()
		}
	}()
}

func (a *attacker) stop() {
	select {
	case <-a.quit:
	default:
		close(a.quit)
	}
	<-a.done
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.conns {
		c.Close()
	}
	a.conns = nil
}
