package bench

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dtrelay/dtrelay/internal/pki"
)

// Cert is the harness's TLS material, made with internal/pki: a throw-away
// CA and a certificate it issued for localhost, 127.0.0.1 and ::1, for
// server and client authentication. The sink and the relays' TLS inputs
// present it, and every TLS client (the sender, the relays' TLS and HTTPS
// outputs) trusts it through the CA file. The key is ECDSA P-256, which the
// peers' TLS stacks accept: rsyslog's ossl driver (OpenSSL) as server and
// as client, syslog-ng's tls() (OpenSSL) and its http() (libcurl).
// TestPeersTLSShortRun checks each of these with the real peers.
// A Cert is not changed after NewCert and is safe for concurrent use.
type Cert struct {
	CACertFile string // PEM CA certificate: what a peer loads to trust CertFile
	CertFile   string // PEM certificate
	KeyFile    string // PEM PKCS#8 private key (mode 0600)
	TLS        tls.Certificate
	Pool       *x509.CertPool // trusts only the CA
}

// CAFile returns the file a peer loads to trust the certificate.
func (c *Cert) CAFile() string { return c.CACertFile }

// ServerConfig returns a TLS server configuration presenting the certificate.
func (c *Cert) ServerConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{c.TLS}, MinVersion: tls.VersionTLS12}
}

// ClientConfig returns a TLS client configuration that trusts only the CA
// and checks the name "localhost".
func (c *Cert) ClientConfig() *tls.Config {
	return &tls.Config{RootCAs: c.Pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
}

// NewCert makes a fresh CA and certificate (valid for pki.Validity) and
// writes them to dir as ca.pem, cert.pem and key.pem.
func NewCert(dir string) (*Cert, error) {
	ca, err := pki.NewCA("dtbench CA")
	if err != nil {
		return nil, err
	}
	leaf, err := ca.Issue([]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, pki.Loopback...)
	if err != nil {
		return nil, err
	}
	c := &Cert{CACertFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "cert.pem"),
		KeyFile: filepath.Join(dir, "key.pem"), TLS: leaf, Pool: ca.Pool}
	if err := os.WriteFile(c.CACertFile, ca.PEM, 0o644); err != nil {
		return nil, fmt.Errorf("cannot write CA certificate: %w", err)
	}
	if err := pki.WritePair(leaf, c.CertFile, c.KeyFile); err != nil {
		return nil, err
	}
	return c, nil
}
