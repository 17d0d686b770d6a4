package receiver

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkInput measures one connection end to end over loopback: the
// client writes 64 alerts per op, the input frames them into a counting
// sink. Allocations include the client's and gnet's.
func BenchmarkInput(b *testing.B) {
	pki := newTestPKI(b)
	for _, proto := range []string{ProtocolTCP, ProtocolTLS} {
		for _, size := range []int{1500, 4096} {
			b.Run(proto+"/"+strconv.Itoa(size), func(b *testing.B) {
				cfg := Config{Protocol: proto, TLS: pki.serverConfig(false)}
				pool := newRecPool(false)
				l, m := startInput(b, cfg, pool)
				conn := dial(b, l, pki, false)
				defer conn.Close()
				const perOp = 64
				stream := benchStream(perOp, size, true)
				b.SetBytes(int64(len(stream)))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if _, err := conn.Write(stream); err != nil {
						b.Fatal(err)
					}
				}
				want := int64(b.N * perOp)
				waitFor(b, 60*time.Second, "all frames", func() bool { return pool.count.Load() == want })
				b.StopTimer()
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(want), "ns/frame")
				if m.oversize.Get() != 0 {
					b.Fatal("oversize frames")
				}
			})
		}
	}
}
