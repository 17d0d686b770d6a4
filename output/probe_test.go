package output

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/internal/intaketest"
)

// freeAddr returns a 127.0.0.1 address nothing listens on (a port just
// closed).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func probeCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSyslogProbe(t *testing.T) {
	in := intaketest.NewSyslog(t, testKey, true)
	cfg := SyslogConfig{Address: in.Addr(), TLS: true, TLSClientConfig: TLSClientConfig{CAFile: in.CAFile()},
		SyslogEncoderConfig: SyslogEncoderConfig{Format: FormatSekoia, IntakeKey: testKey}}
	probe := func(cfg SyslogConfig) (string, error) {
		s, err := NewSyslogSender(cfg, nil, "s", zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		return s.Probe(probeCtx(t))
	}
	what, err := probe(cfg)
	if err != nil || !strings.Contains(what, "TLS 1.3 handshake") {
		t.Fatalf("trusted TLS intake: %q, %v", what, err)
	}
	waitConns(t, in, 1)
	if n := len(in.Lines()); n != 0 {
		t.Errorf("the probe sent %d lines", n)
	}
	bad := cfg
	bad.CAFile = ""
	if _, err := probe(bad); err == nil || !isCertError(err) {
		t.Errorf("untrusted CA: %v, want a certificate error", err)
	}
	plain := intaketest.NewSyslog(t, "", false)
	if what, err := probe(SyslogConfig{Address: plain.Addr()}); err != nil || what != "TCP connect" {
		t.Errorf("TCP intake: %q, %v", what, err)
	}
	if _, err := probe(SyslogConfig{Address: freeAddr(t)}); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("nothing listening: %v, want connection refused", err)
	}
}

func waitConns(t *testing.T, in *intaketest.SyslogIntake, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); in.Conns() < n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections, want %d", in.Conns(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRelpProbe(t *testing.T) {
	in := newRELPIntake(t, true)
	s, _ := newTestRELP(t, in, RelpConfig{TLS: true})
	what, err := s.Probe(probeCtx(t))
	if err != nil || what != "TCP connect, TLS 1.3 handshake, RELP open and close" {
		t.Fatalf("probe: %q, %v", what, err)
	}
	if in.Opens() != 1 || len(in.Txnrs()) != 0 {
		t.Errorf("%d opens and %d messages, want 1 open and no message", in.Opens(), len(in.Txnrs()))
	}
	in.OpenStatus(500, false)
	s2, _ := newTestRELP(t, in, RelpConfig{TLS: true})
	if _, err := s2.Probe(probeCtx(t)); err == nil || !strings.Contains(err.Error(), "refused the session") {
		t.Errorf("open refused: %v", err)
	}
}

func TestHTTPProbe(t *testing.T) {
	in := intaketest.NewSekoiaHTTP(t, testKey)
	in.AllowProblems() // the mock takes a GET for a client's mistake
	s, err := NewSekoiaHTTPSender(SekoiaHTTPConfig{URL: in.URL(), IntakeKey: testKey,
		TLSClientConfig: TLSClientConfig{CAFile: in.CAFile()}}, nil, "sekoia", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	what, err := s.Probe(probeCtx(t))
	if err != nil || !strings.Contains(what, "HTTP 405") || !strings.Contains(what, "TLS") {
		t.Fatalf("probe: %q, %v", what, err)
	}
	reqs := in.Requests()
	if len(reqs) != 1 || reqs[0].Header.Get(SekoiaKeyHeader) != "" || in.Count() != 0 {
		t.Fatalf("requests %+v, %d events: want one request without the key and no event", reqs, in.Count())
	}
	untrusted, err := NewHTTPSender(HTTPConfig{URL: in.URL() + "/x?token=" + testKey}, nil, "http", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer untrusted.Close()
	_, err = untrusted.Probe(probeCtx(t))
	if err == nil || !isCertError(err) {
		t.Fatalf("untrusted CA: %v, want a certificate error", err)
	}
	if strings.Contains(err.Error(), testKey) {
		t.Errorf("the error shows the URL's token: %v", err)
	}
}

func TestProbeFile(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "out.ndjson")
	if err := os.WriteFile(existing, []byte("x\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := ProbeFile(existing); err != nil {
		t.Errorf("existing file: %v", err)
	}
	if b, _ := os.ReadFile(existing); string(b) != "x\n" {
		t.Errorf("the probe changed the file: %q", b)
	}
	if _, err := ProbeFile(filepath.Join(dir, "new.ndjson")); err != nil {
		t.Errorf("new file in a writable directory: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("the probe left %d entries in the directory, want the 1 file", len(ents))
	}
	if _, err := ProbeFile(filepath.Join(dir, "missing", "out.ndjson")); err == nil {
		t.Error("a file in a missing directory passed")
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(existing, link); err != nil {
		t.Fatal(err)
	}
	if _, err := ProbeFile(link); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("symbolic link: %v", err)
	}
	if os.Geteuid() != 0 {
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		if _, err := ProbeFile(filepath.Join(ro, "out.ndjson")); err == nil {
			t.Error("a file in a read-only directory passed")
		}
	}
}
