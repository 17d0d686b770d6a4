package receiver

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestSampledLogsPerReason: each warning reason has its own sampler. A
// burst of one reason (here 20 connections refused by allow) is cut to
// logBurst lines, and a warning of another reason (an oversize frame)
// right after it is still logged; with one sampler for all, the burst had
// used the budget up (issue 10 item 14).
func TestSampledLogsPerReason(t *testing.T) {
	cfg := Config{Protocol: ProtocolTCP, MaxMessageSize: 1024,
		Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}
	pool := newRecPool(false)
	l, m, logs := startLogged(t, cfg, pool)
	for range 20 {
		c, err := net.DialTimeout("tcp", l.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		waitClosedByPeer(t, c, 5*time.Second)
		c.Close()
	}
	waitFor(t, 5*time.Second, "20 allow rejections", func() bool { return m.rejectAllow.Get() == 20 })

	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	c, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sendLine(t, c, strings.Repeat("x", 2000))
	sendLine(t, c, "fits")
	waitFor(t, 5*time.Second, "the oversize frame and the next", func() bool {
		return m.oversize.Get() == 1 && pool.count.Load() == 1
	})
	// The counters are published before the warning is written: wait for it.
	waitFor(t, 5*time.Second, "the oversize warning (suppressed by the allow burst?)", func() bool {
		return strings.Contains(logs.String(), "frame over max_message_size skipped")
	})
	out := logs.String()
	if n := strings.Count(out, "connection rejected: source not in allow"); n != logBurst {
		t.Fatalf("%d allow warnings logged, want the burst of %d:\n%s", n, logBurst, out)
	}

}
