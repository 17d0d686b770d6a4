package relay

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/internal/intaketest"
)

// TestRelayInProcess runs the assembled relay on a port-0 input to a TLS
// syslog mock and checks every alert arrives, in order, and Stop reports
// nothing undelivered.
func TestRelayInProcess(t *testing.T) {
	in := intaketest.NewSyslog(t, "key-0123456789abcdef", true)
	r := startRelay(t, fmt.Sprintf(`
  - {name: out, type: syslog, address: "%s", tls: true, ca_file: %s, format: sekoia, intake_key: key-0123456789abcdef}
`, in.Addr(), in.CAFile()))
	c, err := net.Dial("tcp", r.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	for i := range n {
		fmt.Fprintf(c, "<165>Aug  5 03:34:46 dt-master darktrace %s\n", payload(i, 1500))
	}
	c.Close()
	if !in.WaitEvents(n, 10*time.Second) {
		t.Fatalf("intake got %d of %d", in.Count(), n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if lost := r.Stop(ctx); lost != 0 {
		t.Fatalf("Stop: %d undelivered", lost)
	}
	for i, e := range in.Events() {
		if string(e) != payload(i, 1500) {
			t.Fatalf("event %d differs from what was sent", i)
		}
	}
}

// TestStopReportsUndelivered: an intake that never comes up makes Stop give
// up at its deadline and report every queued alert.
func TestStopReportsUndelivered(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	r := startRelay(t, fmt.Sprintf(`
  - {name: out, type: syslog, address: "%s", tls: false, format: rfc5424}
`, dead))
	c, err := net.Dial("tcp", r.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		fmt.Fprintf(c, "<165>Aug  5 03:34:46 dt-master darktrace %s\n", payload(i, 500))
	}
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(promText(r), `dtrelay_input_alerts_total{input="bench",kind="model_breach"} 10`) {
		if time.Now().After(deadline) {
			t.Fatal("the relay did not read the 10 alerts")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if lost := r.Stop(ctx); lost != 10 {
		t.Fatalf("Stop reported %d undelivered, want 10", lost)
	}
}

func promText(r *Relay) string {
	var b strings.Builder
	r.set.WritePrometheus(&b)
	return b.String()
}
