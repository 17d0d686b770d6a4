package relay

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/config"
)

// TestStallVisibleWhileItLasts is issue 10 item 6 over real sockets: an
// intake that hangs fills its output's queue, the TCP input's event loop
// waits (backpressure), and /metrics shows it while it lasts:
// dtrelay_input_blocked is 1 and dtrelay_input_backpressure_seconds_total
// grows; once the intake answers, the gauge is back to 0. Before, the
// seconds moved only when the stall ended.
func TestStallVisibleWhileItLasts(t *testing.T) {
	stalled := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(stalled) }) }
	intake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-stalled
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer intake.Close()
	defer release()
	cfg, _, err := config.Parse([]byte(fmt.Sprintf(`
inputs: [{name: dt, protocol: tcp, address: "127.0.0.1:0", max_message_size: 16KiB}]
outputs: [{name: out, type: http, url: %q, compression: none, queue_size: 16KiB, batch: {max_events: 10, max_wait: 10ms}}]
metrics: {address: "127.0.0.1:0"}
`, intake.URL)), "stall.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Start(cfg, metrics.NewSet(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.Stop(ctx)
	}()
	scrape := func(name string) float64 {
		t.Helper()
		resp, err := http.Get("http://" + r.MetricsAddr().String() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, name+" "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				return f
			}
		}
		t.Fatalf("/metrics has no %s", name)
		return 0
	}
	const blocked, seconds = `dtrelay_input_blocked{input="dt"}`, `dtrelay_input_backpressure_seconds_total{input="dt"}`
	if v := scrape(blocked); v != 0 {
		t.Fatalf("blocked = %v before the stall", v)
	}
	c, err := net.Dial("tcp", r.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var sb strings.Builder
	for i := range 200 { // ~300 KiB: many times the queue, less than the socket buffers
		fmt.Fprintf(&sb, "<165>Aug  5 03:34:46 dt-master darktrace %s\n", payload(i, 1500))
	}
	go func() { _, _ = c.Write([]byte(sb.String())) }()

	poll := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	poll("the input shown blocked", func() bool { return scrape(blocked) == 1 })
	first := scrape(seconds)
	poll("the seconds growing during the stall", func() bool { return scrape(seconds) >= first+0.1 })
	during := scrape(seconds)
	release()
	poll("the stall over", func() bool { return scrape(blocked) == 0 })
	if after := scrape(seconds); after < during {
		t.Fatalf("seconds went back from %v to %v", during, after)
	}
	t.Logf("blocked 1 while stalled, backpressure seconds %.3f → %.3f during the stall", first, during)
}
