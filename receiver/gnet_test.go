package receiver

import (
	"net"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/panjf2000/gnet/v2"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/internal/alloctest"
)

// fakeConn stands in for gnet's connection: buf is what gnet read and would
// keep in its inbound buffer if the handler did not discard it. Methods the
// handler must not use are left to the nil embedded interface (they panic).
type fakeConn struct {
	gnet.Conn
	buf    []byte
	ctx    any
	remote net.Addr
}

func (f *fakeConn) Peek(n int) ([]byte, error) {
	if n <= 0 || n > len(f.buf) {
		return f.buf, nil
	}
	return f.buf[:n], nil
}

func (f *fakeConn) Discard(n int) (int, error) {
	if n <= 0 || n >= len(f.buf) {
		k := len(f.buf)
		f.buf = f.buf[:0]
		return k, nil
	}
	f.buf = f.buf[n:]
	return n, nil
}

func (f *fakeConn) InboundBuffered() int                                       { return len(f.buf) }
func (f *fakeConn) Context() any                                               { return f.ctx }
func (f *fakeConn) SetContext(c any)                                           { f.ctx = c }
func (f *fakeConn) RemoteAddr() net.Addr                                       { return f.remote }
func (f *fakeConn) SetKeepAlive(bool, time.Duration, time.Duration, int) error { return nil }
func (f *fakeConn) Fd() int                                                    { return -1 }

// countPool hands out one counting sink (pointer-shaped, so Get does not
// allocate).
type countPool struct{ sink countSink }

func (p *countPool) Get() FrameSink { return &p.sink }
func (p *countPool) Put(FrameSink)  {}

func newTestGnetServer(t testing.TB, cfg Config, pool SinkPool) (*gnetServer, *Metrics) {
	t.Helper()
	cfg.Address = "127.0.0.1:0"
	if err := cfg.normalize(); err != nil {
		t.Fatal(err)
	}
	m := NewMetrics(metrics.NewSet(), "unit")
	return newGnetServer(newCommon(cfg, pool, m, zerolog.Nop())), m
}

// TestOnTrafficConsumesEverything checks that after every OnTraffic the
// connection's inbound buffer is empty (gnet never has to keep bytes for
// us, so its buffer cannot grow) and that a TCP read and a UDP datagram
// cost zero allocations in the handler.
func TestOnTrafficConsumesEverything(t *testing.T) {
	stream := benchStream(40, 1500, false)
	stream = append(stream, benchStream(40, 1500, true)...)
	pool := &countPool{}
	s, m := newTestGnetServer(t, Config{Protocol: ProtocolTCP}, pool)
	fc := &fakeConn{remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}}
	if _, act := s.OnOpen(fc); act != gnet.None {
		t.Fatalf("OnOpen action %v", act)
	}
	read := func() {
		for i := 0; i < len(stream); i += 4093 {
			fc.buf = append(fc.buf[:0], stream[i:min(i+4093, len(stream))]...)
			if act := s.OnTraffic(fc); act != gnet.None {
				t.Fatalf("OnTraffic action %v", act)
			}
			if n := fc.InboundBuffered(); n != 0 {
				t.Fatalf("%d bytes left in gnet's inbound buffer", n)
			}
		}
	}
	read()
	if pool.sink.frames != 80 || m.frames.Get() != 80 || m.bytes.Get() != uint64(len(stream)) {
		t.Fatalf("frames %d (metric %d), bytes %d", pool.sink.frames, m.frames.Get(), m.bytes.Get())
	}
	if a := alloctest.PerRun(20, read); a != 0 {
		t.Fatalf("TCP reads: %v allocations per run, want 0", a)
	}
	s.OnClose(fc, nil)
	if m.connections.Get() != 0 || s.slots.count() != 0 {
		t.Fatal("connection not released on close")
	}

	u, um := newTestGnetServer(t, Config{Protocol: ProtocolUDP}, pool)
	dg := &fakeConn{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5001}}
	alert := benchAlert(1500)
	datagram := func() {
		dg.buf = append(dg.buf[:0], alert...)
		u.OnTraffic(dg)
	}
	if a := alloctest.PerRun(100, datagram); a != 0 {
		t.Fatalf("UDP datagram: %v allocations, want 0", a)
	}
	if um.frames.Get() != 101 || dg.InboundBuffered() != 0 {
		t.Fatalf("udp frames %d, left %d", um.frames.Get(), dg.InboundBuffered())
	}
}
