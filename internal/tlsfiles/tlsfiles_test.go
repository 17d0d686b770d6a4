package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dtrelay/dtrelay/internal/pki"
)

// publicCA stands in for a public CA: TestMain makes it this test binary's
// only system root (SSL_CERT_FILE, with an empty SSL_CERT_DIR), before
// anything loads the system pool.
var publicCA *pki.CA

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "tlsfiles")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if publicCA, err = pki.NewCA("tlsfiles public CA"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		file := filepath.Join(dir, "system.pem")
		if err := os.WriteFile(file, publicCA.PEM, 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		os.Setenv("SSL_CERT_FILE", file)
		os.Setenv("SSL_CERT_DIR", dir)
		return m.Run()
	}())
}

// serve starts a TLS server on 127.0.0.1 with a certificate that ca signed
// and returns its address.
func serve(t *testing.T, ca *pki.CA) string {
	t.Helper()
	cert, err := ca.Issue([]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	return ln.Addr().String()
}

func handshake(addr string, pool *x509.CertPool) error {
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if err != nil {
		return err
	}
	return c.Close()
}

// TestRootCAs checks, over real handshakes, that a ca_file adds to the
// system roots and that system_roots: false leaves the file's CAs alone.
func TestRootCAs(t *testing.T) {
	private, err := pki.NewCA("tlsfiles private CA")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, private.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	publicAddr, privateAddr := serve(t, publicCA), serve(t, private)

	added, err := RootCAs(caFile, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(publicAddr, added); err != nil {
		t.Errorf("ca_file with the system roots: a server the system trusts is refused: %v", err)
	}
	if err := handshake(privateAddr, added); err != nil {
		t.Errorf("ca_file with the system roots: a server the ca_file signed is refused: %v", err)
	}

	only, err := RootCAs(caFile, false)
	if err != nil {
		t.Fatal(err)
	}
	var unknown x509.UnknownAuthorityError
	if err := handshake(publicAddr, only); !errors.As(err, &unknown) {
		t.Errorf("system_roots false: a server only the system trusts: err = %v, want unknown authority", err)
	}
	if err := handshake(privateAddr, only); err != nil {
		t.Errorf("system_roots false: a server the ca_file signed is refused: %v", err)
	}

	if p, err := RootCAs("", true); p != nil || err != nil {
		t.Errorf(`RootCAs("", true) = %v, %v; want nil (the system roots), nil`, p, err)
	}
	if _, err := RootCAs("", false); err == nil {
		t.Error(`RootCAs("", false) trusts nothing and did not fail`)
	}
}

func TestCAPool(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := CAPool(filepath.Join(dir, "missing.pem")); err == nil || !strings.HasPrefix(err.Error(), "cannot read CA file") {
		t.Errorf("missing file: err = %v", err)
	}
	if _, err := CAPool(empty); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("file without a certificate: err = %v", err)
	}
	if _, err := RootCAs(empty, true); err == nil {
		t.Error("RootCAs accepted a file without a certificate")
	}
	file := filepath.Join(dir, "public.pem")
	if err := os.WriteFile(file, publicCA.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	pool, err := CAPool(file)
	if err != nil {
		t.Fatal(err)
	}
	if !pool.Equal(publicCA.Pool) {
		t.Error("CAPool holds more than the file's CAs")
	}
}
