// Package pki makes throw-away certificate authorities and certificates in
// memory, for tests and for the dtbench harness's local TLS peers. Keys are
// ECDSA P-256; certificates are valid from an hour ago for Validity.
// Nothing here is for production certificates.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Validity is how long the CAs and certificates made here are valid: longer
// than the 14 days before expiry at which dtrelay check warns, so test
// configurations load without warnings. IssueFor sets another period.
const Validity = 30 * 24 * time.Hour

// CA is a certificate authority. It is safe for concurrent use.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	PEM  []byte         // the CA certificate, PEM: what a peer loads as ca_file
	Pool *x509.CertPool // a pool trusting only this CA
}

// NewCA generates a CA named name.
func NewCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("cannot generate key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(Validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("cannot create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("cannot parse CA certificate: %w", err)
	}
	ca := &CA{Cert: cert, Key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), Pool: x509.NewCertPool()}
	ca.Pool.AddCert(cert)
	return ca, nil
}

// Issue returns a certificate signed by ca for hosts (DNS names or IP
// addresses), for server or client authentication or both.
func (ca *CA) Issue(usage []x509.ExtKeyUsage, hosts ...string) (tls.Certificate, error) {
	now := time.Now()
	return ca.IssueFor(usage, now.Add(-time.Hour), now.Add(Validity), hosts...)
}

// IssueFor is Issue for the validity period notBefore to notAfter (an
// expired certificate, one about to expire).
func (ca *CA) IssueFor(usage []x509.ExtKeyUsage, notBefore, notAfter time.Time, hosts ...string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cannot generate key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "dtrelay test"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usage,
	}
	if len(hosts) > 0 {
		tmpl.Subject.CommonName = hosts[0]
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cannot create certificate: %w", err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// Server and Client are the usual usages for Issue.
var (
	Server = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	Client = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
)

// Loopback names a local server answers to.
var Loopback = []string{"localhost", "127.0.0.1", "::1"}

// PEM returns c's certificate chain and private key (PKCS#8) as PEM.
func PEM(c tls.Certificate) (certPEM, keyPEM []byte, err error) {
	for _, der := range c.Certificate {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot marshal key: %w", err)
	}
	return certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// WritePair writes c's certificate and key as PEM files (the key 0600).
func WritePair(c tls.Certificate, certFile, keyFile string) error {
	certPEM, keyPEM, err := PEM(c)
	if err != nil {
		return err
	}
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return fmt.Errorf("cannot write certificate: %w", err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return fmt.Errorf("cannot write key: %w", err)
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}

// RotateServerPair issues a server certificate for the loopback names from
// a new CA called name and writes it over dir/cert.pem and dir/key.pem the
// way certificate tools do (written aside, then renamed), so that a reader
// sees the old pair or the new one, never half of each file. It returns
// the CA.
func RotateServerPair(dir, name string) (*CA, error) {
	ca, err := NewCA(name)
	if err != nil {
		return nil, err
	}
	c, err := ca.Issue(Server, Loopback...)
	if err != nil {
		return nil, err
	}
	tmpC, tmpK := filepath.Join(dir, "cert.tmp"), filepath.Join(dir, "key.tmp")
	if err := WritePair(c, tmpC, tmpK); err != nil {
		return nil, err
	}
	if err := os.Rename(tmpC, filepath.Join(dir, "cert.pem")); err != nil {
		return nil, err
	}
	if err := os.Rename(tmpK, filepath.Join(dir, "key.pem")); err != nil {
		return nil, err
	}
	return ca, nil
}
