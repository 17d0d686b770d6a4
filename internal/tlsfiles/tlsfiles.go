// Package tlsfiles loads the certificate files that dtrelay's TLS clients
// and servers are configured with, so that every ca_file means the same
// thing: the CAs in it are trusted in addition to the system roots, unless
// the system roots are excluded (system_roots: false). The functions read
// files and return fresh values; they are safe for concurrent use.
package tlsfiles

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// RootCAs returns the pool a TLS client verifies servers against: the
// system roots (when systemRoots) plus the CAs in the PEM file caFile (when
// set). It returns nil, meaning the system roots, when caFile is empty and
// systemRoots is true; a client cannot trust nothing, so caFile empty with
// systemRoots false is an error.
func RootCAs(caFile string, systemRoots bool) (*x509.CertPool, error) {
	if caFile == "" {
		if !systemRoots {
			return nil, errors.New("tlsfiles: without the system roots a ca_file is required")
		}
		return nil, nil
	}
	var pool *x509.CertPool
	if systemRoots {
		// An error (no roots on this platform) leaves the file's CAs alone.
		pool, _ = x509.SystemCertPool()
	}
	if pool == nil {
		pool = x509.NewCertPool()
	}
	return pool, appendFile(pool, caFile)
}

// CAPool returns a pool of the CAs in the PEM file file and nothing else:
// the CAs a server accepts client certificates from (client_ca_file).
func CAPool(file string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	return pool, appendFile(pool, file)
}

func appendFile(pool *x509.CertPool, file string) error {
	pem, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("cannot read CA file: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("cannot use CA file %s: no PEM certificate in it", file)
	}
	return nil
}
