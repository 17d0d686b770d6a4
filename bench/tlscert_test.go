package bench

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"testing"
)

// TestCertIsWhatThePeersLoad: the files NewCert writes are what the peers'
// configurations expect. The certificate verifies against the CA file for
// the names they use, for server and client use. The key is an ECDSA
// P-256 key in PKCS#8 PEM, mode 0600. TestPeersTLSShortRun checks that
// rsyslog and syslog-ng accept them.
func TestCertIsWhatThePeersLoad(t *testing.T) {
	c := testCert(t)
	caPEM, err := os.ReadFile(c.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("CA file holds no certificate")
	}
	pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	// The names the configurations use: "localhost" (rsyslog's permitted
	// peer, the Go clients' server name) and 127.0.0.1 (the sink URL).
	for _, name := range []string{"localhost", "127.0.0.1"} {
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				t.Errorf("%s, usage %v: %v", name, usage, err)
			}
		}
	}
	if k, ok := pair.PrivateKey.(*ecdsa.PrivateKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("key is %T, want ECDSA P-256", pair.PrivateKey)
	}
	keyPEM, _ := os.ReadFile(c.KeyFile)
	if b, _ := pem.Decode(keyPEM); b == nil || b.Type != "PRIVATE KEY" {
		t.Error("key file is not PKCS#8 PEM")
	}
	if fi, err := os.Stat(c.KeyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
}
