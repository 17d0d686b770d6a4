package relay

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/config"
	"github.com/dtrelay/dtrelay/internal/intaketest"
)

// payload returns a unique model-breach alert of about size bytes.
func payload(i, size int) string {
	p := fmt.Sprintf(`{"pbid":%d,"time":1700000000000,"score":0.87,"model":{"name":"Anomalous Connection::Data Sent to Rare Domain"},"triggeredComponents":[{"cid":%d}],"device":{"ip":"10.1.2.3","hostname":"ws-%d"},"pad":"`, i, i, i)
	return p + strings.Repeat("x", max(size-len(p)-2, 0)) + `"}`
}

type intake interface {
	Count() int
	KeepEvents(bool)
}

// startRelay runs an in-process relay from one TCP input on a free port to
// the output described by outYAML.
func startRelay(tb testing.TB, outYAML string) *Relay {
	tb.Helper()
	cfg, _, err := config.Parse([]byte(`
inputs: [{name: bench, protocol: tcp, address: "127.0.0.1:0"}]
outputs:
`+outYAML), "bench.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	r, err := Start(cfg, metrics.NewSet(), zerolog.Nop())
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// benchRelay runs an in-process relay from one TCP input to the output
// described by outYAML, sends b.N alerts over conns connections and waits
// until the intake has them all.
func benchRelay(b *testing.B, size, conns int, outYAML string, in intake) {
	in.KeepEvents(false)
	r := startRelay(b, outYAML)
	defer r.Stop(context.Background())
	addr := r.Addrs()[0].String()
	// Pre-build each connection's stream: the sender must not be the bottleneck.
	per := (b.N + conns - 1) / conns
	streams := make([][]byte, conns)
	var total int64
	for c := range streams {
		var sb strings.Builder
		for i := c * per; i < min((c+1)*per, b.N); i++ {
			fmt.Fprintf(&sb, "<165>Aug  5 03:34:46 dt-master darktrace %s\n", payload(i, size))
		}
		streams[c] = []byte(sb.String())
		total += int64(sb.Len())
	}
	b.SetBytes(total / int64(max(b.N, 1)))
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for _, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Error(err)
				return
			}
			defer c.Close()
			c.Write(s)
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(2 * time.Minute)
	for in.Count() < b.N {
		if time.Now().After(deadline) {
			b.Fatalf("intake got %d of %d", in.Count(), b.N)
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "alerts/s")
}

// BenchmarkRelayTLSSyslog: TCP in → scan, classify → TLS syslog (RFC 5424,
// octet-counted) out to a mock intake, all in one process on loopback.
func BenchmarkRelayTLSSyslog(b *testing.B) {
	for _, size := range []int{1500, 4000} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			in := intaketest.NewSyslog(b, "", true)
			benchRelay(b, size, 4, fmt.Sprintf(`
  - {name: out, type: syslog, address: "%s", tls: true, ca_file: %s, format: rfc5424}
`, in.Addr(), in.CAFile()), in)
		})
	}
}

// BenchmarkRelaySekoiaHTTPS: TCP in → HTTPS /plain/batch (gzip) to a mock intake.
func BenchmarkRelaySekoiaHTTPS(b *testing.B) {
	for _, size := range []int{1500, 4000} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			in := intaketest.NewSekoiaHTTP(b, "bench-intake-key-0123456789")
			benchRelay(b, size, 4, fmt.Sprintf(`
  - {name: out, type: sekoia-http, url: "%s", ca_file: %s, intake_key: bench-intake-key-0123456789}
`, in.URL(), in.CAFile()), in)
		})
	}
}
