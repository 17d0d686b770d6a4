package bench

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestSenderToSink(t *testing.T) {
	cert := testCert(t)
	g, _ := NewGenerator(DefaultMix(), 500, 14000)
	for _, tc := range []struct {
		name    string
		network string
		framing Framing
		header  HeaderStyle
	}{
		{"tcp lf rfc3164", "tcp", FramingLF, Header3164},
		{"tcp octet rfc5424", "tcp", FramingOctet, Header5424},
		{"tls octet rfc3164", "tls", FramingOctet, Header3164},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tally Tally
			var sc = cert.ServerConfig()
			if tc.network != "tls" {
				sc = nil
			}
			sink, err := NewSyslogSink("127.0.0.1:0", sc, &tally, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			defer sink.Close()
			const count = 3000
			s, err := NewSender(SendConfig{Network: tc.network, Addr: sink.Addr(), TLS: cert.ClientConfig(), Conns: 3,
				Framing: tc.framing, Header: tc.header, Count: count}, g)
			if err != nil {
				t.Fatal(err)
			}
			st, err := s.Run(context.Background())
			if err != nil || st.Sent != count || st.WriteErrors != 0 || st.Bytes == 0 {
				t.Fatalf("Run = %+v, %v", st, err)
			}
			waitFor(t, "every alert", func() bool { return tally.Counts().Unique() == count })
			if c := tally.Counts(); c.Duplicates != 0 || c.Malformed != 0 || c.Bytes == 0 {
				t.Errorf("counts %+v", c)
			}
			if sink.Conns() != 3 {
				t.Errorf("%d connections, want 3", sink.Conns())
			}
		})
	}
}

func TestSenderRateAndDuration(t *testing.T) {
	var tally Tally
	sink, err := NewSyslogSink("127.0.0.1:0", nil, &tally, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	g, _ := NewGenerator(DefaultMix(), 1000, 1000)
	s, _ := NewSender(SendConfig{Network: "tcp", Addr: sink.Addr(), Conns: 2, Rate: 4000, Duration: 500 * time.Millisecond}, g)
	st, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Sent < 1500 || st.Sent > 2100 || st.Elapsed < 500*time.Millisecond || st.Elapsed > 2*time.Second {
		t.Errorf("sent %d in %v, want about 2000 in 0.5 s", st.Sent, st.Elapsed)
	}
	waitFor(t, "every alert", func() bool { return tally.Counts().Unique() == st.Sent })
}

func TestSenderUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	// Room for every datagram, where net.core.rmem_max allows: a reader
	// descheduled for a while under a loaded machine must not make the
	// kernel drop what the sender sent.
	_ = pc.(*net.UDPConn).SetReadBuffer(4 << 20)
	var tally Tally
	go func() {
		buf := make([]byte, 65536)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			tally.Account(buf[:n], time.Now().UnixNano())
		}
	}()
	g, _ := NewGenerator(DefaultMix(), 2000, 2000)
	// Paced, so the loopback socket buffer does not overflow.
	s, _ := NewSender(SendConfig{Network: "udp", Addr: pc.LocalAddr().String(), Conns: 1, Rate: 5000, Count: 500}, g)
	st, err := s.Run(context.Background())
	if err != nil || st.Sent != 500 {
		t.Fatalf("Run = %+v, %v", st, err)
	}
	// UDP over loopback may still drop under load (rmem_max caps the
	// buffer): wait for all 500, else until nothing more arrives, and
	// then take a few lost datagrams, not a malformed or repeated one.
	last, quiet := uint64(0), time.Now()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		c := tally.Counts()
		if c.Unique() == 500 {
			break
		}
		if c.Received != last {
			last, quiet = c.Received, time.Now()
		} else if time.Since(quiet) > time.Second {
			break
		}
	}
	c := tally.Counts()
	if c.Malformed != 0 || c.Duplicates != 0 || c.OutOfRange != 0 || c.Unique() < 475 {
		t.Fatalf("received %+v (%d unique), want the 500 datagrams sent, a few lost at most", c, c.Unique())
	}
	if c.Unique() < 500 {
		t.Logf("%d of 500 datagrams lost on loopback", 500-c.Unique())
	}
}

func TestSenderConfigErrors(t *testing.T) {
	g, _ := NewGenerator(DefaultMix(), 1000, 1000)
	for _, cfg := range []SendConfig{
		{Network: "sctp", Count: 1},
		{Network: "tls", Count: 1},
		{Network: "tcp"},
	} {
		if _, err := NewSender(cfg, g); err == nil {
			t.Errorf("NewSender(%+v) succeeded", cfg)
		}
	}
	s, _ := NewSender(SendConfig{Network: "tcp", Addr: "127.0.0.1:1", Count: 1}, g)
	if _, err := s.Run(context.Background()); err == nil {
		t.Error("Run to a closed port succeeded")
	}
}

// TestSenderStalledRelay: a relay that accepts but never reads must not hang
// the sender, in count or duration mode, and the run reports the failure.
func TestSenderStalledRelay(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never read
		}
	}()
	g, _ := NewGenerator(DefaultMix(), 14000, 14000)
	for _, cfg := range []SendConfig{
		{Network: "tcp", Addr: ln.Addr().String(), Conns: 1, Duration: 200 * time.Millisecond, Stall: 300 * time.Millisecond},
		{Network: "tcp", Addr: ln.Addr().String(), Conns: 2, Count: 1 << 30, Stall: 300 * time.Millisecond},
	} {
		s, _ := NewSender(cfg, g)
		start := time.Now()
		_, err = s.Run(context.Background())
		if err == nil || !strings.Contains(err.Error(), "took nothing") {
			t.Errorf("stalled relay: Run error %v", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Run took %v", d)
		}
	}
}

func BenchmarkMessageBuilder(b *testing.B) {
	g, _ := NewGenerator(DefaultMix(), 1500, 1500)
	mb := NewMessageBuilder(g, Header3164, FramingLF)
	buf := make([]byte, 0, 64<<10)
	now := time.Now()
	b.ReportAllocs()
	b.SetBytes(1550)
	for i := uint64(0); b.Loop(); i++ {
		buf = mb.AppendFramed(buf[:0], i, now)
	}
}
