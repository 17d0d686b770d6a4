package receiver

import (
	"bytes"
	"net"
	"strconv"
	"testing"
	"time"
)

func TestPartialBudgetAccounting(t *testing.T) {
	b := NewPartialBudget(1000)
	var closed []int64
	h := make([]*partialHold, 3)
	for i := range h {
		h[i] = &partialHold{over: func(n int64) { closed = append(closed, int64(i)*1e6+n) }}
		b.register(h[i])
	}
	b.set(h[0], 400)
	b.set(h[1], 500)
	if b.Held() != 900 || len(closed) != 0 {
		t.Fatalf("held %d, closed %v", b.Held(), closed)
	}
	b.set(h[2], 300) // 1200 > 1000: the largest (h1, 500) goes
	if len(closed) != 1 || closed[0] != 1e6+500 {
		t.Fatalf("closed %v, want h1 holding 500", closed)
	}
	b.set(h[2], 600) // 1500 - 500 doomed = 1000: at the cap, not above
	if len(closed) != 1 {
		t.Fatalf("closed %v at the cap", closed)
	}
	b.set(h[0], 401) // 1001 above: h2 (600) is now the largest not doomed
	if len(closed) != 2 || closed[1] != 2e6+600 {
		t.Fatalf("closed %v, want h2 holding 600", closed)
	}
	b.set(h[0], 0) // shrinking never closes
	b.release(h[1])
	b.release(h[2])
	if b.Held() != 0 || b.doomed.Load() != 0 || len(b.holds) != 1 {
		t.Fatalf("held %d, doomed %d, holds %d after release", b.Held(), b.doomed.Load(), len(b.holds))
	}
	b.release(h[0])
	if NewPartialBudget(0).Max() != DefaultMaxPartialBytes {
		t.Fatal("default cap")
	}
}

// TestPartialFrameCap: two inputs (tcp and tls) share one budget. When the
// partial frames held across their connections go above it, the connection
// holding the largest is closed and counted on its input; the others keep
// their partial frames and complete them.
func TestPartialFrameCap(t *testing.T) {
	p := newTestPKI(t)
	budget := NewPartialBudget(1 << 20)
	pool := newRecPool(false)
	tcpL, tcpM := startInput(t, Config{Protocol: ProtocolTCP, Partial: budget}, pool)
	tlsL, tlsM := startInput(t, Config{Protocol: ProtocolTLS, TLS: p.serverConfig(false), Partial: budget}, pool)
	frames := int64(0)
	// open connects, completes one frame, then starts an octet-counted frame
	// of size bytes and sends its first KiB.
	open := func(l *Listener, size int) net.Conn {
		c := dial(t, l, p, false)
		sendLine(t, c, "first")
		frames++
		want := frames
		waitFor(t, 5*time.Second, "the first frame", func() bool { return pool.count.Load() == want })
		if _, err := c.Write([]byte(strconv.Itoa(size) + " " + string(bytes.Repeat([]byte{'x'}, 1024)))); err != nil {
			t.Fatal(err)
		}
		return c
	}
	var held int64
	var keep []net.Conn
	var sizes []int
	for range 3 {
		keep = append(keep, open(tcpL, 200000))
		sizes = append(sizes, 200000)
		held += 200000
		want := held
		waitFor(t, 5*time.Second, "the partial frame held", func() bool { return budget.Held() == want })
	}
	defer func() {
		for _, c := range keep {
			c.Close()
		}
	}()
	big := open(tlsL, 260000) // 860000: under the cap
	defer big.Close()
	waitFor(t, 5*time.Second, "860000 held", func() bool { return budget.Held() == 860000 })
	last := open(tcpL, 240000) // 1100000 > 1 MiB: the tls connection goes
	keep, sizes = append(keep, last), append(sizes, 240000)
	waitClosedByPeer(t, big, 5*time.Second)
	waitFor(t, 5*time.Second, "the largest released", func() bool { return budget.Held() == 840000 })
	// The close is counted after it is made: the close can be seen first.
	waitFor(t, 5*time.Second, "the close counted", func() bool { return tlsM.partialCap.Get() == 1 })
	if tlsM.partialCap.Get() != 1 || tcpM.partialCap.Get() != 0 {
		t.Fatalf("partial_frame_cap: tls %d, tcp %d; want 1, 0", tlsM.partialCap.Get(), tcpM.partialCap.Get())
	}
	waitFor(t, 5*time.Second, "the dropped frame counted", func() bool { return tlsM.truncated.Get() == 1 })
	for i, c := range keep {
		if _, err := c.Write(bytes.Repeat([]byte{'y'}, sizes[i]-1024)); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	want := frames + int64(len(keep))
	waitFor(t, 5*time.Second, "the partial frames completed", func() bool { return pool.count.Load() == want })
	waitFor(t, 5*time.Second, "nothing held", func() bool { return budget.Held() == 0 })
}
