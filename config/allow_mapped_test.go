package config_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/config"
	"github.com/dtrelay/dtrelay/receiver"
)

type countPool struct{ n atomic.Int64 }
type countSink struct{ p *countPool }

func (p *countPool) Get() receiver.FrameSink { return countSink{p} }
func (p *countPool) Put(receiver.FrameSink)  {}
func (s countSink) Frame([]byte)             { s.p.n.Add(1) }
func (s countSink) Flush()                   {}

// TestMappedAllowNeverMatches backs check's warning with real sockets: an
// input whose allow is the IPv4-mapped ::ffff:127.0.0.0/104 refuses a
// client on 127.0.0.1, on an IPv4 socket and on a dual-stack one (where the
// kernel gives the peer as ::ffff:127.0.0.1), while the IPv4 form the warning
// suggests, 127.0.0.0/8, lets it in.
func TestMappedAllowNeverMatches(t *testing.T) {
	cfg, warnings, err := config.Parse([]byte(`inputs:
  - {name: in, protocol: tcp, address: "127.0.0.1:1514", allow: ["::ffff:127.0.0.0/104"]}
outputs:
  - {name: out, type: file, path: "-"}
`), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.HasSuffix(warnings[0].Msg, "write 127.0.0.0/8") {
		t.Fatalf("warnings %v", warnings)
	}
	mapped := cfg.Inputs[0].Allow
	cfg, _, err = config.Parse([]byte(`inputs:
  - {name: in, protocol: tcp, address: "127.0.0.1:1514", allow: ["127.0.0.0/8"]}
outputs:
  - {name: out, type: file, path: "-"}
`), "")
	if err != nil {
		t.Fatal(err)
	}
	v4 := cfg.Inputs[0].Allow

	// ":0" is a dual-stack socket (gnet takes "[::]:0" as IPv6 only).
	for _, addr := range []string{"127.0.0.1:0", ":0"} {
		if addr == ":0" {
			ln, err := net.Listen("tcp6", "[::]:0")
			if err != nil {
				t.Logf("no IPv6 socket here (%v): dual-stack case skipped", err)
				continue
			}
			ln.Close()
		}
		for _, tc := range []struct {
			name   string
			allow  []netip.Prefix
			admits bool
		}{{"mapped", mapped, false}, {"ipv4", v4, true}} {
			t.Run(addr+"/"+tc.name, func(t *testing.T) {
				set := metrics.NewSet()
				pool := &countPool{}
				l, err := receiver.Start(receiver.Config{Name: "in", Protocol: receiver.ProtocolTCP, Address: addr,
					Allow: tc.allow, EventLoops: 1}, pool, receiver.NewMetrics(set, "in"), zerolog.Nop())
				if err != nil {
					t.Fatal(err)
				}
				defer l.Stop(context.Background())
				_, port, _ := net.SplitHostPort(l.Addr().String())
				c, err := net.Dial("tcp4", net.JoinHostPort("127.0.0.1", port))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				_, _ = c.Write([]byte("<165>Aug  5 03:34:46 dt darktrace {\"pbid\":1}\n"))
				rejected := set.GetOrCreateCounter(`dtrelay_input_rejected_connections_total{input="in",reason="allow"}`)
				if tc.admits {
					wait(t, "the frame", func() bool { return pool.n.Load() == 1 })
				} else {
					wait(t, "the rejection", func() bool { return rejected.Get() == 1 })
				}
				if got := rejected.Get(); got != map[bool]uint64{true: 0, false: 1}[tc.admits] || (pool.n.Load() == 1) != tc.admits {
					t.Fatalf("allow %v: %d rejected, %d frames", tc.allow, got, pool.n.Load())
				}
			})
		}
	}
}

// wait polls cond for up to 5 seconds.
func wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
