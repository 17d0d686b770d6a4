package relay

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/config"
)

// TestUDPFloodEveryDatagramAccounted is issue 10 item 11 end to end: a UDP
// flood into an input whose output is stalled. What the output's queue
// cannot hold is dropped_full, what the kernel could not queue is
// kernel_drop, and once the output recovers every datagram sent is
// delivered or counted under one of the two. The queue holds datagrams by
// their size, not a 16 KiB block each.
func TestUDPFloodEveryDatagramAccounted(t *testing.T) {
	const sent, size, queue = 5000, 1500, 256 << 10
	stalled := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(stalled) }) }
	var delivered atomic.Int64
	intake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-stalled
		b, _ := io.ReadAll(r.Body)
		delivered.Add(int64(bytes.Count(b, []byte("\n"))))
	}))
	defer intake.Close()
	defer release()
	cfg, _, err := config.Parse([]byte(fmt.Sprintf(`
inputs: [{name: flood, protocol: udp, address: "127.0.0.1:0"}]
outputs: [{name: out, type: http, url: %q, compression: none, queue_size: %d, batch: {max_events: 1000, max_wait: 10ms}}]
`, intake.URL, queue)), "flood.yaml")
	if err != nil {
		t.Fatal(err)
	}
	set := metrics.NewSet()
	r, err := Start(cfg, set, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.Stop(ctx)
	}()
	var conns []net.Conn
	for range 4 {
		c, err := net.Dial("udp", r.Addrs()[0].String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	for i := range sent {
		msg := "<165>Aug  5 03:34:46 dt-master darktrace " + payload(i, size)
		if _, err := conns[i%len(conns)].Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	value := func(name string) int64 {
		v, _ := strconv.ParseFloat(scrapeValue(set, name), 64)
		return int64(v)
	}
	full := `dtrelay_input_discarded_total{input="flood",reason="dropped_full"}`
	kernel := `dtrelay_input_discarded_total{input="flood",reason="kernel_drop"}`
	alerts := `dtrelay_input_alerts_total{input="flood",kind="model_breach"}`
	deadline := time.Now().Add(10 * time.Second)
	for value(alerts)+value(kernel) != sent { // every datagram read or dropped by the kernel
		if time.Now().After(deadline) {
			t.Fatalf("read %d + kernel_drop %d != sent %d", value(alerts), value(kernel), sent)
		}
		time.Sleep(5 * time.Millisecond)
	}
	queued := value(alerts) - value(full)
	// The queue held about queue_size bytes of datagrams (the one in
	// flight in the stalled request included); 16 KiB blocks held 16.
	if min := int64(queue / (size + 64) * 8 / 10); queued < min {
		t.Fatalf("the %d-byte queue held %d datagrams of %d bytes, want at least %d", queue, queued, size, min)
	}
	release()
	deadline = time.Now().Add(10 * time.Second)
	for delivered.Load()+value(full)+value(kernel) != sent {
		if time.Now().After(deadline) {
			t.Fatalf("delivered %d + dropped_full %d + kernel_drop %d != sent %d", delivered.Load(), value(full), value(kernel), sent)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("%d datagrams of %d bytes sent: %d delivered (the %d KiB queue held %d), %d dropped_full, %d kernel_drop",
		sent, size, delivered.Load(), queue>>10, queued, value(full), value(kernel))
}

func scrapeValue(set *metrics.Set, name string) string {
	var b strings.Builder
	set.WritePrometheus(&b)
	for _, l := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			return v
		}
	}
	return ""
}
