package output

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/internal/alloctest"
	"github.com/dtrelay/dtrelay/internal/pki"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client *net.TCPConn, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s
}

// TestBodyConnWritesBuffersAsIs: an httpBody under net/http's
// LimitedReader goes out whole, with the limit accounted; other readers,
// and a body longer than its limit, take the ordinary path, which stops at
// the limit.
func TestBodyConnWritesBuffersAsIs(t *testing.T) {
	parts := [][]byte{[]byte(`{"a":`), bytes.Repeat([]byte("x"), 100_000), []byte("}")}
	want := bytes.Join(parts, nil)
	for _, tc := range []struct {
		name  string
		r     func() io.Reader
		limit int64
		want  []byte
	}{
		{"body", func() io.Reader { return &httpBody{append([][]byte(nil), parts...)} }, int64(len(want)), want},
		{"body over the limit", func() io.Reader { return &httpBody{append([][]byte(nil), parts...)} }, 1000, want[:1000]},
		{"other reader", func() io.Reader { return strings.NewReader(string(want)) }, int64(len(want)), want},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := tcpPair(t)
			var got []byte
			var wg sync.WaitGroup
			wg.Go(func() { got, _ = io.ReadAll(s) })
			lr := &io.LimitedReader{R: tc.r(), N: tc.limit}
			n, err := bodyConn{c}.ReadFrom(lr)
			if err != nil || n != int64(len(tc.want)) || lr.N != tc.limit-n {
				t.Fatalf("ReadFrom = %d, %v; limit left %d", n, err, lr.N)
			}
			_ = c.CloseWrite()
			wg.Wait()
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("peer got %d bytes, want %d", len(got), len(tc.want))
			}
		})
	}
}

// TestSekoiaHTTPBodies: over http:// (the bodyConn path) and https:// (the
// tlsBodyConn path), each endpoint's request body is exactly prefix,
// events and suffix, for a batch far larger than net/http's buffers, on
// one connection, over TLS for https://; over http:// a Send allocates no
// body (TestSekoiaHTTPReusesBuffers bounds what an https:// Send does).
func TestSekoiaHTTPBodies(t *testing.T) {
	ca, err := pki.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue(pki.Server, pki.Loopback...)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, withTLS := range []bool{false, true} {
		for _, ep := range []string{SekoiaEndpointPlain, SekoiaEndpointBatch} {
			t.Run(map[bool]string{false: "http/", true: "https/"}[withTLS]+ep, func(t *testing.T) {
				var mu sync.Mutex
				var bodies [][]byte
				conns := map[string]bool{} // remote address: over TLS
				srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					b, _ := io.ReadAll(r.Body)
					mu.Lock()
					bodies = append(bodies, b)
					conns[r.RemoteAddr] = r.TLS != nil
					mu.Unlock()
				}))
				cfg := SekoiaHTTPConfig{IntakeKey: testKey, Endpoint: ep, Compression: CompressionNone}
				if withTLS {
					srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
					srv.StartTLS()
					cfg.TLSClientConfig = TLSClientConfig{CAFile: caFile}
				} else {
					srv.Start()
				}
				defer srv.Close()
				cfg.URL = srv.URL
				s, err := NewSekoiaHTTPSender(cfg, nil, "sek", zerolog.Nop())
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				b := outBatch(t, s.Encoder(), outAlerts(300, 4000)...)
				want := append(append(append([]byte(nil), s.core.prefix...), b.Data[:len(b.Data)-s.core.trim]...), s.core.suffix...)
				for range 3 {
					if err := s.Send(context.Background(), b); err != nil {
						t.Fatal(err)
					}
				}
				mu.Lock()
				got, nconns := bodies, len(conns)
				for _, isTLS := range conns {
					if isTLS != withTLS {
						t.Errorf("a request came with TLS %v", isTLS)
					}
				}
				mu.Unlock()
				if len(got) != 3 || nconns != 1 {
					t.Fatalf("%d requests on %d connections, want 3 on 1", len(got), nconns)
				}
				for i, body := range got {
					if !bytes.Equal(body, want) {
						t.Fatalf("body %d: %d bytes, want %d", i, len(body), len(want))
					}
				}
				if !withTLS && !alloctest.Race {
					if a := alloctest.PerRun(5, func() { _ = s.Send(context.Background(), b) }); a > 200 {
						t.Fatalf("%v allocations per Send", a)
					}
				}
			})
		}
	}
}

// BenchmarkSekoiaPlainHTTP measures a sekoia-http output over http://
// (no TLS, no gzip, endpoint plain) sending batches of 1000 4 KB events to
// a server that only reads the body, one op per batch, encoding included.
func BenchmarkSekoiaPlainHTTP(b *testing.B) {
	const events, size = 1000, 4000
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	s, err := NewSekoiaHTTPSender(SekoiaHTTPConfig{URL: srv.URL, IntakeKey: testKey, Endpoint: SekoiaEndpointPlain,
		Compression: CompressionNone}, nil, "bench", zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	enc := s.Encoder()
	recs := make([]*forward.Record, events)
	for i, p := range outAlerts(events, size) {
		recs[i] = outRecord(p)
	}
	batch := &forward.Batch{}
	fill := func() {
		batch.Reset()
		for _, r := range recs {
			batch.Data, _ = enc.Append(batch.Data, r)
			batch.Ends = append(batch.Ends, len(batch.Data))
		}
	}
	fill()
	b.SetBytes(int64(len(batch.Data)))
	b.ReportAllocs()
	for b.Loop() {
		fill()
		if err := s.Send(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
}
