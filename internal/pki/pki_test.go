package pki

import (
	"crypto/tls"
	"path/filepath"
	"testing"
)

// TestIssuedCertificateVerifies: a TLS handshake on 127.0.0.1 succeeds with
// the issued pair written to files and the CA's pool, and fails for a name
// the certificate does not carry.
func TestIssuedCertificateVerifies(t *testing.T) {
	ca, err := NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(Server, Loopback...)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if err := WritePair(leaf, certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	loaded, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{loaded}})
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
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	f := func(name string, ok bool) {
		t.Helper()
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool, ServerName: name})
		if c != nil {
			c.Close()
		}
		if (err == nil) != ok {
			t.Errorf("dial with server name %q: err = %v, want ok=%v", name, err, ok)
		}
	}
	f("localhost", true)
	f("127.0.0.1", true)
	f("intake.example.org", false)
}
