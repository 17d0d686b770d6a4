package intaketest

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"github.com/dtrelay/dtrelay/internal/pki"
)

// SekoiaHost is the name the mocks' certificates carry besides 127.0.0.1,
// ::1 and localhost, so that a sender can verify the name it would verify
// in production.
const SekoiaHost = "intake.sekoia.io"

// testPKI is a throw-away CA and a server certificate signed by it.
type testPKI struct {
	ca     *pki.CA
	caPEM  []byte
	server tls.Certificate
	pool   *x509.CertPool
}

func newPKI(tb testing.TB) *testPKI {
	tb.Helper()
	ca, err := pki.NewCA("intaketest CA")
	if err != nil {
		tb.Fatal(err)
	}
	server, err := ca.Issue(pki.Server, append([]string{SekoiaHost}, pki.Loopback...)...)
	if err != nil {
		tb.Fatal(err)
	}
	return &testPKI{ca: ca, caPEM: ca.PEM, server: server, pool: ca.Pool}
}

// writeFile writes data to a new file in the test's temporary directory.
func writeFile(tb testing.TB, name string, data []byte) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatalf("cannot write %s: %v", name, err)
	}
	return path
}

// clientFiles writes a client certificate signed by the CA and its key as
// PEM files and returns their paths.
func (p *testPKI) clientFiles(tb testing.TB) (certFile, keyFile string) {
	tb.Helper()
	c, err := p.ca.Issue(pki.Client, "dtrelay client")
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	certFile, keyFile = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	if err := pki.WritePair(c, certFile, keyFile); err != nil {
		tb.Fatal(err)
	}
	return certFile, keyFile
}
