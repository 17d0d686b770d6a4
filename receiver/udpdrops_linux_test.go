package receiver

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// procUDPDrops is the test's own reading of the kernel's count: the sum of
// the drops column of /proc/net/udp rows whose local port is port.
func procUDPDrops(t *testing.T, port uint16) (drops uint64, sockets int) {
	t.Helper()
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		t.Skipf("cannot read /proc/net/udp: %v", err)
	}
	suffix := fmt.Sprintf(":%04X", port)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 13 || !strings.HasSuffix(f[1], suffix) {
			continue
		}
		n, err := strconv.ParseUint(f[12], 10, 64)
		if err != nil {
			t.Fatalf("drops column %q: %v", f[12], err)
		}
		drops += n
		sockets++
	}
	return drops, sockets
}

// TestUDPKernelDropsCounted is issue 10 item 11: a flood the kernel cannot
// queue (small SO_RCVBUF, the event loop held by a blocked sink) loses
// datagrams before dtrelay sees them. kernel_drop must equal the kernel's
// own count for the input's sockets (/proc/net/udp), and every datagram
// sent is either delivered or counted there.
func TestUDPKernelDropsCounted(t *testing.T) {
	for _, loops := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d_event_loops", loops), func(t *testing.T) {
			const sent = 2000
			pool := newRecPool(false)
			set := metrics.NewSet()
			cfg := Config{Name: "udp", Protocol: ProtocolUDP, Address: "127.0.0.1:0", EventLoops: loops, UDPRecvBuffer: 32 << 10}
			m := NewMetrics(set, cfg.Name)
			l, err := Start(cfg, pool, m, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			defer stopInput(t, l)
			port := addrPortOf(l.Addr()).Port()
			if _, n := procUDPDrops(t, port); n != loops {
				t.Fatalf("/proc/net/udp lists %d sockets on port %d, want %d", n, port, loops)
			}
			pool.block()
			msg := bytes.Repeat([]byte("x"), 1000)
			conns := make([]interface{ Write([]byte) (int, error) }, 4) // several source ports: both sockets get some
			for i := range conns {
				c := dial(t, l, nil, false)
				defer c.Close()
				conns[i] = c
			}
			for i := range sent {
				if _, err := conns[i%len(conns)].Write(msg); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, 5*time.Second, "kernel drops", func() bool { d, _ := procUDPDrops(t, port); return d > 0 })
			pool.unblock()
			var kernel, delivered uint64
			waitFor(t, 10*time.Second, "delivered + kernel_drop == sent", func() bool {
				kernel, delivered = m.KernelDrops(), uint64(pool.count.Load())
				return kernel+delivered == sent
			})
			if own, _ := procUDPDrops(t, port); own != kernel {
				t.Fatalf("kernel_drop %d, /proc/net/udp drops %d", kernel, own)
			}
			if got := scrape(set, `dtrelay_input_discarded_total{input="udp",reason="kernel_drop"}`); got != strconv.FormatUint(kernel, 10) {
				t.Fatalf("scraped kernel_drop %q, want %d", got, kernel)
			}
			t.Logf("%d sent: %d delivered, %d dropped by the kernel (SO_RCVBUF 32 KiB)", sent, delivered, kernel)
		})
	}
}

// scrape returns the value of the series named name in set, or "".
func scrape(set *metrics.Set, name string) string {
	var b bytes.Buffer
	set.WritePrometheus(&b)
	for _, l := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			return v
		}
	}
	return ""
}
