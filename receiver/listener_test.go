package receiver

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// parseStats reads a stats.txt ("frames N\noversize N\ntruncated N\n").
func parseStats(t testing.TB, s string) FramerStats {
	t.Helper()
	var st FramerStats
	if _, err := fmt.Sscanf(s, "frames %d\noversize %d\ntruncated %d\n", &st.Frames, &st.Oversize, &st.Truncated); err != nil {
		t.Fatalf("cannot parse stats %q: %v", s, err)
	}
	return st
}

// TestGoldenOverSockets sends every framing case over real TCP, TLS and
// UDP sockets and checks the frames and counters the input reports.
func TestGoldenOverSockets(t *testing.T) {
	pki := newTestPKI(t)
	cases := loadFramingCases(t)
	for _, proto := range []string{ProtocolTCP, ProtocolTLS, ProtocolUDP} {
		for _, c := range cases {
			t.Run(proto+"/"+c.name, func(t *testing.T) {
				want := parseStats(t, c.stats)
				if proto == ProtocolUDP && want.Truncated > 0 {
					t.Skip("a datagram's end ends its last frame; datagram semantics are in TestFramerDatagram")
				}
				cfg := Config{Protocol: proto, MaxMessageSize: c.max}
				if proto == ProtocolTLS {
					cfg.TLS = pki.serverConfig(false)
				}
				pool := newRecPool(true)
				l, m := startInput(t, cfg, pool)
				conn := dial(t, l, pki, false)
				if proto == ProtocolUDP {
					if _, err := conn.Write(c.in); err != nil {
						t.Fatal(err)
					}
				} else {
					third := len(c.in) / 3
					for _, part := range [][]byte{c.in[:third], c.in[third : 2*third], c.in[2*third:]} {
						if _, err := conn.Write(part); err != nil {
							t.Fatal(err)
						}
					}
				}
				_ = conn.Close()
				waitFor(t, 5*time.Second, "frames and counters", func() bool {
					return pool.count.Load() == int64(len(c.want)) &&
						m.oversize.Get() == want.Oversize && m.truncated.Get() == want.Truncated &&
						m.bytes.Get() == uint64(len(c.in))
				})
				if d := diffFrames(pool.snapshot(), c.want); d != "" {
					t.Fatal(d)
				}
				if got := m.frames.Get(); got != uint64(len(c.want)) {
					t.Fatalf("frames_total = %d, want %d", got, len(c.want))
				}
			})
		}
	}
}

// TestRealSamplesOverTCP sends the real Darktrace syslog lines (shared
// samples, not copied into the repo) LF-terminated and octet-counted on one
// connection.
func TestRealSamplesOverTCP(t *testing.T) {
	needSamples(t)
	files, _ := filepath.Glob(filepath.Join(sampleDir, "elastic", "deploy-sample_logs", "*.log"))
	if len(files) == 0 {
		t.Skip("no syslog-wrapped samples found")
	}
	var lines [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if l := bytes.TrimSpace(sc.Bytes()); len(l) > 0 {
				lines = append(lines, bytes.Clone(l))
			}
		}
	}
	var stream []byte
	for _, l := range lines {
		stream = append(stream, l...)
		stream = append(stream, '\n')
	}
	for _, l := range lines {
		stream = append(stream, fmt.Sprintf("%d ", len(l))...)
		stream = append(stream, l...)
	}
	pool := newRecPool(true)
	l, _ := startInput(t, Config{Protocol: ProtocolTCP}, pool)
	conn := dial(t, l, nil, false)
	for i := 0; i < len(stream); i += 1000 {
		if _, err := conn.Write(stream[i:min(i+1000, len(stream))]); err != nil {
			t.Fatal(err)
		}
	}
	_ = conn.Close()
	want := append(append([][]byte(nil), lines...), lines...)
	waitFor(t, 5*time.Second, "all sample frames", func() bool { return pool.count.Load() == int64(len(want)) })
	if d := diffFrames(pool.snapshot(), want); d != "" {
		t.Fatal(d)
	}
}

// TestManyFramesOneConnection pushes 8 MiB through one TCP connection in
// odd-sized writes; every frame must arrive intact and in order, which
// also shows gnet's inbound buffer is never relied upon.
func TestManyFramesOneConnection(t *testing.T) {
	pool := newRecPool(true)
	l, m := startInput(t, Config{Protocol: ProtocolTCP}, pool)
	conn := dial(t, l, nil, false)
	var stream []byte
	var want [][]byte
	for i := 0; len(stream) < 8<<20; i++ {
		f := benchAlert(500 + i%3000)
		f = append(f, fmt.Sprintf(" #%d", i)...)
		want = append(want, f)
		if i%2 == 0 {
			stream = append(stream, fmt.Sprintf("%d ", len(f))...)
			stream = append(stream, f...)
		} else {
			stream = append(stream, f...)
			stream = append(stream, '\r', '\n')
		}
	}
	go func() {
		defer conn.Close()
		for i, step := 0, 1; i < len(stream); i, step = i+step, step*7%65521+1 {
			if _, err := conn.Write(stream[i:min(i+step, len(stream))]); err != nil {
				return
			}
		}
	}()
	waitFor(t, 20*time.Second, "all frames", func() bool { return pool.count.Load() == int64(len(want)) })
	if d := diffFrames(pool.snapshot(), want); d != "" {
		t.Fatal(d)
	}
	if m.bytes.Get() != uint64(len(stream)) {
		t.Fatalf("bytes_total = %d, want %d", m.bytes.Get(), len(stream))
	}
}

func TestMetricsExposition(t *testing.T) {
	set := metrics.NewSet()
	m := NewMetrics(set, `dt"1`)
	m.publish(FramerStats{Frames: 2, Bytes: 10, Oversize: 1})
	m.rejectAllow.Inc()
	m.opened()
	var b bytes.Buffer
	set.WritePrometheus(&b)
	for _, want := range []string{
		`dtrelay_input_frames_total{input="dt\"1"} 2`,
		`dtrelay_input_bytes_total{input="dt\"1"} 10`,
		`dtrelay_input_errors_total{input="dt\"1",reason="oversize"} 1`,
		`dtrelay_input_errors_total{input="dt\"1",reason="truncated"} 0`,
		`dtrelay_input_rejected_connections_total{input="dt\"1",reason="allow"} 1`,
		`dtrelay_input_rejected_connections_total{input="dt\"1",reason="max_connections"} 0`,
		`dtrelay_input_rejected_connections_total{input="dt\"1",reason="tls_handshake"} 0`,
		`dtrelay_input_connections{input="dt\"1"} 1`,
		`dtrelay_input_connections_total{input="dt\"1"} 1`,
		`dtrelay_input_last_frame_timestamp_seconds{input="dt\"1"} `,
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %s in\n%s", want, b.String())
		}
	}
	if NewMetrics(set, `dt"1`).frames != m.frames {
		t.Error("NewMetrics for the same input did not return the registered counters")
	}
}

func TestStartRejectsBadConfig(t *testing.T) {
	m := NewMetrics(metrics.NewSet(), "x")
	tests := []struct {
		name string
		cfg  Config
	}{
		{"unknown protocol", Config{Protocol: "sctp", Address: "127.0.0.1:0"}},
		{"tls without config", Config{Protocol: ProtocolTLS, Address: "127.0.0.1:0"}},
		{"proxy on udp", Config{Protocol: ProtocolUDP, Address: "127.0.0.1:0", ProxyProtocol: true}},
		{"no address", Config{Protocol: ProtocolTCP}},
		{"bad address", Config{Protocol: ProtocolTCP, Address: "nowhere"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if l, err := Start(tt.cfg, newRecPool(false), m, testLogger(t)); err == nil {
				_ = l.Stop(context.Background())
				t.Fatal("Start accepted a bad config")
			}
		})
	}
}

// TestStartFailsOnBusyPort checks a bind error is returned, not hidden.
func TestStartFailsOnBusyPort(t *testing.T) {
	for _, proto := range []string{ProtocolTCP, ProtocolTLS, ProtocolUDP} {
		t.Run(proto, func(t *testing.T) {
			cfg := Config{Protocol: proto, TLS: newTestPKI(t).serverConfig(false)}
			l, _ := startInput(t, cfg, newRecPool(false))
			cfg.Address = l.Addr().String()
			l2, err := Start(cfg, newRecPool(false), NewMetrics(metrics.NewSet(), "x"), testLogger(t))
			if err == nil {
				_ = l2.Stop(context.Background())
				t.Fatalf("second %s listener on %s started", proto, cfg.Address)
			}
			if !strings.Contains(err.Error(), "address already in use") {
				t.Fatalf("error %q does not say the address is in use", err)
			}
		})
	}
}
