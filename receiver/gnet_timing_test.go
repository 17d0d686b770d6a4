package receiver

import (
	"net"
	"testing"

	"github.com/panjf2000/gnet/v2"
)

// BenchmarkOnTraffic measures the gnet handler alone (no sockets): a
// stream of 1.5 KB alerts in 4093-byte reads, so most reads end inside a
// frame. It is the per-read cost of the connection bookkeeping (partial
// frame budget, first-frame tracking) on top of the Framer.
func BenchmarkOnTraffic(b *testing.B) {
	stream := benchStream(40, 1500, false)
	stream = append(stream, benchStream(40, 1500, true)...)
	pool := &countPool{}
	s, _ := newTestGnetServer(b, Config{Protocol: ProtocolTCP}, pool)
	fc := &fakeConn{remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}}
	if _, act := s.OnOpen(fc); act != gnet.None {
		b.Fatalf("OnOpen action %v", act)
	}
	const step = 4093
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		for i := 0; i < len(stream); i += step {
			fc.buf = append(fc.buf[:0], stream[i:min(i+step, len(stream))]...)
			s.OnTraffic(fc)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(pool.sink.frames), "ns/frame")
}
