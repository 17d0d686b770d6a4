package bench

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/rs/zerolog"
)

func TestSplitFrames(t *testing.T) {
	f := func(name, in string, wantFrames []string, wantUsed int, wantErr bool) {
		t.Helper()
		var got []string
		used, err := SplitFrames([]byte(in), 64, func(fr []byte) { got = append(got, string(fr)) })
		if (err != nil) != wantErr || used != wantUsed || strings.Join(got, "|") != strings.Join(wantFrames, "|") {
			t.Errorf("%s: frames %q used %d err %v; want %q %d err=%v", name, got, used, err, wantFrames, wantUsed, wantErr)
		}
	}
	f("lf", "a\nbb\n", []string{"a", "bb"}, 5, false)
	f("crlf", "a\r\nb\n", []string{"a", "b"}, 5, false)
	f("partial lf", "a\nbc", []string{"a"}, 2, false)
	f("octet", "3 abc2 de", []string{"abc", "de"}, 9, false)
	f("octet holding LF", "3 a\nc", []string{"a\nc"}, 5, false)
	f("partial octet body", "5 abc", nil, 0, false)
	f("partial octet header", "12", nil, 0, false)
	f("mixed", "3 abc\nx y\n2 zz", []string{"abc", "x y", "zz"}, 14, false)
	f("blank lines", "\n\r\n\na\n", []string{"a"}, 6, false)
	f("leading zero is not a count", "0 a\n", []string{"0 a"}, 4, false)
	f("digits without space", "12ab\n", []string{"12ab"}, 5, false)
	f("ten digits is not a count", "1234567890 x\n", []string{"1234567890 x"}, 13, false)
	f("count over limit", "a\n65 x", []string{"a"}, 2, true)
	f("line over limit", strings.Repeat("x", 70), nil, 0, true)
}

// FuzzSplitFrames checks that framing never panics, never reads past the
// buffer, and gives the same frames however the input is split in two.
func FuzzSplitFrames(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "frames", "*"))
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint16(len(b)/2))
	}
	f.Fuzz(func(t *testing.T, in []byte, cut uint16) {
		whole := framesOf(t, [][]byte{in})
		k := int(cut) % (len(in) + 1)
		split := framesOf(t, [][]byte{in[:k], in[k:]})
		if whole != split {
			t.Fatalf("split at %d changes frames:\n%q\n%q", k, whole, split)
		}
	})
}

// framesOf feeds parts to SplitFrames as a stream would and returns the
// frames joined, or "error" after a framing error.
func framesOf(t *testing.T, parts [][]byte) string {
	var buf, out []byte
	for _, p := range parts {
		buf = append(buf, p...)
		used, err := SplitFrames(buf, 1024, func(fr []byte) {
			out = append(out, fr...)
			out = append(out, 0)
		})
		if used < 0 || used > len(buf) {
			t.Fatalf("used %d of %d", used, len(buf))
		}
		if err != nil {
			return string(out) + "error"
		}
		buf = buf[used:]
	}
	return string(out)
}

func testCert(t *testing.T) *Cert {
	t.Helper()
	c, err := NewCert(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitFor polls cond every 5 ms for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSyslogSink(t *testing.T) {
	cert := testCert(t)
	g, _ := NewGenerator(DefaultMix(), 3000, 3000)
	for _, tc := range []struct {
		name    string
		tls     bool
		framing Framing
	}{
		{"tcp lf", false, FramingLF},
		{"tcp octet", false, FramingOctet},
		{"tls octet", true, FramingOctet},
		{"tls lf", true, FramingLF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tally Tally
			var sc *tls.Config
			if tc.tls {
				sc = cert.ServerConfig()
			}
			s, err := NewSyslogSink("127.0.0.1:0", sc, &tally, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var c net.Conn
			if tc.tls {
				c, err = tls.Dial("tcp", s.Addr(), cert.ClientConfig())
			} else {
				c, err = net.Dial("tcp", s.Addr())
			}
			if err != nil {
				t.Fatal(err)
			}
			b := NewMessageBuilder(g, Header5424, tc.framing)
			var buf []byte
			for seq := uint64(0); seq < 500; seq++ {
				buf = b.AppendFramed(buf, seq%400, time.Now()) // 100 duplicates
			}
			buf = append(buf, "garbage line\n"...)
			// Dribble the stream in uneven writes to split frames.
			for len(buf) > 0 {
				n := min(len(buf), 1+len(buf)%7777)
				if _, err := c.Write(buf[:n]); err != nil {
					t.Fatal(err)
				}
				buf = buf[n:]
			}
			c.Close()
			waitFor(t, "all frames", func() bool { return tally.Counts().Received+tally.Counts().Malformed >= 501 })
			cnt := tally.Counts()
			if cnt.Unique() != 400 || cnt.Duplicates != 100 || cnt.Malformed != 1 {
				t.Errorf("counts %+v", cnt)
			}
			if n, _ := tally.Missing(400, 1); n != 0 {
				t.Errorf("%d missing", n)
			}
			if s.Conns() != 1 || s.Errors() != 0 {
				t.Errorf("conns %d errors %d", s.Conns(), s.Errors())
			}
		})
	}
}

func TestSyslogSinkFrameTooLarge(t *testing.T) {
	var tally Tally
	err := ReadFrames(strings.NewReader(fmt.Sprintf("%d x", MaxFrame+1)), &tally)
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("ReadFrames error %v, want ErrFrameTooLarge", err)
	}
	if err := ReadFrames(strings.NewReader("5 abc"), &tally); err != nil || tally.Counts().Malformed != 1 {
		t.Fatalf("truncated frame: err %v counts %+v", err, tally.Counts())
	}
}

func TestHTTPSink(t *testing.T) {
	cert := testCert(t)
	var tally Tally
	s, err := NewHTTPSink("127.0.0.1:0", cert.ServerConfig(), "KEY", &tally, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: cert.ClientConfig()}, Timeout: 5 * time.Second}
	g, _ := NewGenerator(DefaultMix(), 1000, 1000)
	alert := func(seq uint64) []byte { return g.Append(nil, seq, time.Now().UnixNano()) }
	plain := func(seqs ...uint64) []byte {
		var b []byte
		for _, s := range seqs {
			b = append(append(b, alert(s)...), '\n')
		}
		return b
	}
	jsonBatch := func(key string, seqs ...uint64) []byte {
		b := []byte(`{"intake_key":"` + key + `","jsons":[`)
		for i, s := range seqs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = append(b, bytes.ReplaceAll(alert(s), []byte(`"`), []byte(`\"`))...)
			b = append(b, '"')
		}
		return append(b, "]}"...)
	}
	gz := func(b []byte) []byte {
		var out bytes.Buffer
		w := gzip.NewWriter(&out)
		w.Write(b)
		w.Close()
		return out.Bytes()
	}
	for _, tc := range []struct {
		name, path, key string
		body            []byte
		gzip            bool
		status          int
		wantBody        string
	}{
		{"plain", "/plain/batch", "KEY", plain(0, 1, 2), false, 200, ""},
		{"plain gzip, region prefix", "/api/v1/intake-http/plain/batch", "KEY", gz(plain(3, 4)), true, 200, ""},
		{"json batch", "/batch", "", jsonBatch("KEY", 5, 6, 7), false, 200, `{"event_ids":["e0","e1","e2"]}`},
		{"json batch gzip", "/batch", "", gz(jsonBatch("KEY", 8, 1)), true, 200, `{"event_ids":["e0","e1"]}`},
		{"plain wrong key", "/plain/batch", "nope", plain(9), false, 401, ""},
		{"json wrong key", "/batch", "", jsonBatch("nope", 9), false, 401, ""},
		{"json malformed", "/batch", "", []byte(`{"jsons":[`), false, 400, ""},
		{"json without jsons", "/batch", "", []byte(`{"intake_key":"KEY"}`), false, 400, ""},
		{"bad gzip", "/plain/batch", "KEY", []byte("not gzip"), true, 400, ""},
		{"unknown path", "/other", "KEY", plain(9), false, 404, ""},
	} {
		req, _ := http.NewRequest(http.MethodPost, s.URL(true)+tc.path, bytes.NewReader(tc.body))
		if tc.key != "" {
			req.Header.Set("X-SEKOIAIO-INTAKE-KEY", tc.key)
		}
		if tc.gzip {
			req.Header.Set("Content-Encoding", "gzip")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || (tc.wantBody != "" && string(body) != tc.wantBody) {
			t.Errorf("%s: %d %q, want %d %q", tc.name, resp.StatusCode, body, tc.status, tc.wantBody)
		}
	}
	c := tally.Counts()
	if c.Unique() != 9 || c.Duplicates != 1 || c.Malformed != 0 {
		t.Errorf("counts %+v", c)
	}
	if n, ids := tally.Missing(10, 5); n != 1 || ids[0] != 9 {
		t.Errorf("missing %d %v, want 1 [9]", n, ids)
	}
	if s.Requests() != 10 || s.Rejected() != 6 {
		t.Errorf("requests %d rejected %d", s.Requests(), s.Rejected())
	}
}

func BenchmarkReadFrames(b *testing.B) {
	g, _ := NewGenerator(DefaultMix(), 1500, 1500)
	mb := NewMessageBuilder(g, Header5424, FramingOctet)
	var stream []byte
	for seq := uint64(0); seq < 1000; seq++ {
		stream = mb.AppendFramed(stream, seq, time.Now())
	}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	var tally Tally
	for b.Loop() {
		ReadFrames(bytes.NewReader(stream), &tally)
	}
}
