package receiver

import (
	"bytes"
	"encoding/json"
	"net"
	"strconv"
	"testing"
	"time"
)

// tailPool is a recPool whose sinks are TailSinks judging a last line as
// forward.Producer does: complete when its payload (from the first '{') is
// valid JSON.
type tailPool struct{ *recPool }

func (p tailPool) Get() FrameSink { return tailSink{recSink{p.recPool}} }

type tailSink struct{ recSink }

func (s tailSink) Tail(b []byte) bool {
	i := bytes.IndexByte(b, '{')
	if i < 0 || !json.Valid(b[i:]) {
		return false
	}
	s.Frame(b)
	return true
}

const tailAlert = `<165>Aug  5 03:34:46 dt-master darktrace {"pbid":7,"model":{"name":"last line"}}`

// TestFramerFinish: at a clean end of stream, a last line missing only its
// terminator is delivered when the sink takes it as complete; a line cut
// mid-JSON, a non-JSON line, an octet frame short of its count and a bare
// count are truncated; a sink that cannot judge (not a TailSink) gets
// nothing, as with End.
func TestFramerFinish(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		judge     bool
		want      []string
		truncated uint64
	}{
		{"complete last line", "<13>first\n" + tailAlert, true, []string{"<13>first", tailAlert}, 0},
		{"complete last line with CR and blanks", tailAlert + " \r", true, []string{tailAlert}, 0},
		{"last line cut mid-JSON", tailAlert[:len(tailAlert)-5], true, nil, 1},
		{"last line not JSON", "<13>Aug  5 03:34:46 host app plain text", true, nil, 1},
		{"octet frame short of its count", "200 " + tailAlert, true, nil, 1},
		{"octet count alone", "123", true, nil, 1},
		{"no judge", tailAlert, false, nil, 1},
		{"nothing pending", tailAlert + "\n", true, []string{tailAlert}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := newRecPool(true)
			var sink FrameSink = recSink{pool}
			if tt.judge {
				sink = tailSink{recSink{pool}}
			}
			f := NewFramer(0)
			in := []byte(tt.in)
			f.Feed(in[:len(in)/2], sink) // the last line split across reads
			f.Feed(in[len(in)/2:], sink)
			f.Finish(sink)
			if f.Pending() {
				t.Fatal("Finish left a pending frame")
			}
			var want [][]byte
			for _, w := range tt.want {
				want = append(want, []byte(w))
			}
			if d := diffFrames(pool.snapshot(), want); d != "" {
				t.Fatal(d)
			}
			st := f.TakeStats()
			if st.Truncated != tt.truncated || st.Frames != uint64(len(tt.want)) {
				t.Fatalf("stats %+v, want %d frames, %d truncated", st, len(tt.want), tt.truncated)
			}
		})
	}
}

// TestLastLineAtCleanEOF is issue 10 item 13 over real sockets: a sender
// that closes after a final line without LF (`printf '<165>… {json}' | nc`)
// has it delivered, on tcp and tls; truly partial frames are still counted
// truncated; and a connection we close ourselves (idle_timeout) is not a
// clean end of file: its pending line is counted truncated, not delivered.
func TestLastLineAtCleanEOF(t *testing.T) {
	octet := strconv.Itoa(len(tailAlert)+10) + " " + tailAlert
	cases := []struct {
		name      string
		send      string
		frames    int64
		truncated uint64
	}{
		{"complete line without LF", "<13>first\n" + tailAlert, 2, 0},
		{"line cut mid-JSON", tailAlert[:len(tailAlert)-3], 0, 1},
		{"octet frame shorter than its count", octet, 0, 1},
	}
	for name, cfg := range streamConfigs(t) {
		t.Run(name, func(t *testing.T) {
			pki := newTestPKI(t)
			if cfg.TLS != nil {
				cfg.TLS = pki.serverConfig(false)
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					pool := newRecPool(true)
					l, m := startInput(t, cfg, tailPool{pool})
					c := dial(t, l, pki, false)
					if _, err := c.Write([]byte(tc.send)); err != nil {
						t.Fatal(err)
					}
					c.Close() // TLS: close_notify, then FIN
					waitFor(t, 5*time.Second, "the connection's end", func() bool {
						return pool.count.Load() == tc.frames && m.truncated.Get() == tc.truncated &&
							l.cm.slots.count() == 0
					})
					if m.frames.Get() != uint64(tc.frames) {
						t.Fatalf("frames_total %d, want %d", m.frames.Get(), tc.frames)
					}
					if tc.frames == 2 && !bytes.Equal(pool.snapshot()[1], []byte(tailAlert)) {
						t.Fatalf("last frame %q", pool.snapshot()[1])
					}
				})
			}
			t.Run("closed by idle_timeout", func(t *testing.T) {
				cfg := cfg
				cfg.IdleTimeout = 100 * time.Millisecond
				pool := newRecPool(true)
				l, m := startInput(t, cfg, tailPool{pool})
				c := dial(t, l, pki, false)
				defer c.Close()
				if _, err := c.Write([]byte(tailAlert)); err != nil {
					t.Fatal(err)
				}
				waitClosedByPeer(t, c, 5*time.Second)
				waitFor(t, 5*time.Second, "the idle close", func() bool {
					return m.idleClosed.Get() == 1 && m.truncated.Get() == 1
				})
				if n := pool.count.Load(); n != 0 {
					t.Fatalf("%d frames delivered from a connection we closed", n)
				}
			})
		})
	}
}

// TestLastLineAfterHalfClose: a sender that only shuts down its writing
// side (nc -N) gets the same treatment as one that closes.
func TestLastLineAfterHalfClose(t *testing.T) {
	pool := newRecPool(true)
	l, m := startInput(t, Config{Protocol: ProtocolTCP}, tailPool{pool})
	c := dial(t, l, nil, false)
	defer c.Close()
	if _, err := c.Write([]byte(tailAlert)); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the last line", func() bool { return pool.count.Load() == 1 })
	if m.truncated.Get() != 0 {
		t.Fatalf("truncated %d", m.truncated.Get())
	}
}
