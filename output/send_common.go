package output

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/VictoriaMetrics/metrics"

	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/internal/tlsfiles"
)

// TLSClientConfig is the client side of an output's TLS connection.
type TLSClientConfig struct {
	// CAFile is a PEM bundle of CAs to trust in addition to the system
	// roots (private PKI, tests); see tlsfiles.RootCAs.
	CAFile string
	// NoSystemRoots trusts CAFile's CAs alone (system_roots: false); it
	// requires CAFile.
	NoSystemRoots bool
	// ServerName is the name the server certificate must carry; empty: the
	// host of the output's address or URL.
	ServerName string
	// ClientCertFile and ClientKeyFile (PEM) present a client certificate
	// (mutual TLS). Both or neither.
	ClientCertFile string
	ClientKeyFile  string
}

// build returns the tls.Config for c; host is the default server name.
func (c TLSClientConfig) build(host string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	pool, err := tlsfiles.RootCAs(c.CAFile, !c.NoSystemRoots)
	if err != nil {
		return nil, err
	}
	cfg.RootCAs = pool
	if (c.ClientCertFile == "") != (c.ClientKeyFile == "") {
		return nil, errors.New("forward: client_cert_file and client_key_file go together")
	}
	if c.ClientCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.ClientCertFile, c.ClientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("cannot load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// sendMetrics are the counters a Sender keeps for its output. The batcher
// counts events, bytes, batches, retries and latency; these count what only
// the sender can see. All are safe for concurrent use.
//
//	dtrelay_output_failures_total{output,reason}      failed delivery attempts
//	dtrelay_output_rejected_total{output,reason}      events an intake dropped without saying which (missing_event_id)
//	dtrelay_output_reconnects_total{output}           connections opened after the first
//	dtrelay_output_possible_duplicates_total{output}  events that may reach the intake twice
type sendMetrics struct {
	set        *metrics.Set
	output     string
	reconnects *metrics.Counter
	duplicates *metrics.Counter
}

func newSendMetrics(set *metrics.Set, output string) *sendMetrics {
	l := fmt.Sprintf(`{output=%q}`, output)
	return &sendMetrics{
		set:        set,
		output:     output,
		reconnects: set.GetOrCreateCounter("dtrelay_output_reconnects_total" + l),
		duplicates: set.GetOrCreateCounter("dtrelay_output_possible_duplicates_total" + l),
	}
}

// failure counts one failed delivery attempt.
func (m *sendMetrics) failure(reason string) {
	m.set.GetOrCreateCounter(fmt.Sprintf(`dtrelay_output_failures_total{output=%q,reason=%q}`, m.output, reason)).Inc()
}

// rejected counts n events the intake dropped without saying which: they
// cannot be kept in the dead-letter file.
func (m *sendMetrics) rejected(reason string, n int) {
	m.set.GetOrCreateCounter(fmt.Sprintf(`dtrelay_output_rejected_total{output=%q,reason=%q}`, m.output, reason)).Add(n)
}

// isCertError reports whether err is a rejected server certificate.
func isCertError(err error) bool {
	var (
		cv *tls.CertificateVerificationError
		ua x509.UnknownAuthorityError
		hn x509.HostnameError
		ci x509.CertificateInvalidError
	)
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci)
}

// isTimeout reports whether err is a deadline or a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// failureReason is the metric label for a transport error.
func failureReason(err error) string {
	switch {
	case isCertError(err):
		return "tls_certificate"
	case isTimeout(err):
		return "timeout"
	}
	return "connection"
}

// eventsBefore returns how many events of b start before offset off: those
// of which at least one byte was handed to the kernel.
func eventsBefore(b *forward.Batch, off int) int {
	n := 0
	for i := range b.Ends {
		start := 0
		if i > 0 {
			start = b.Ends[i-1]
		}
		if start >= off {
			break
		}
		n++
	}
	return n
}
