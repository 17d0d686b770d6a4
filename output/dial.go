package output

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"syscall"
	"time"
)

// dialed is a connection to an intake, TLS handshake done when asked for.
type dialed struct {
	conn    net.Conn        // *net.TCPConn, or *tls.Conn over it
	tcp     *net.TCPConn    // the TCP connection under conn
	raw     syscall.RawConn // its socket
	asked   bool            // the TLS server asked for a client certificate
	version uint16          // the TLS version; 0 without TLS
}

// dialIntake connects to address over TCP, without keep-alive probes,
// and, when tlsCfg is not nil, shakes hands within timeout: the TCP
// connect and the handshake are bounded by timeout each. A client
// certificate is presented only when the server asks for one (none
// configured: an empty one, and the server decides). sessions, when not
// nil, is the TLS session cache (SyslogSender's verdict signal). Failures
// are counted in m (connect, tls_handshake, tls_certificate) and returned
// wrapped with the address.
func dialIntake(ctx context.Context, address string, tlsCfg *tls.Config, timeout time.Duration, sessions tls.ClientSessionCache, m *sendMetrics) (*dialed, error) {
	d := net.Dialer{Timeout: timeout, KeepAlive: -1}
	nc, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		if ctx.Err() == nil {
			m.failure("connect")
		}
		return nil, fmt.Errorf("cannot connect to %s: %w", address, err)
	}
	tcp := nc.(*net.TCPConn)
	raw, err := tcp.SyscallConn()
	if err != nil {
		tcp.Close()
		return nil, fmt.Errorf("cannot reach socket of %s: %w", address, err)
	}
	out := &dialed{conn: tcp, tcp: tcp, raw: raw}
	if tlsCfg == nil {
		return out, nil
	}
	cfg := tlsCfg.Clone()
	if sessions != nil {
		cfg.ClientSessionCache = sessions
	}
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		out.asked = true
		if len(tlsCfg.Certificates) > 0 {
			return &tlsCfg.Certificates[0], nil
		}
		return &tls.Certificate{}, nil // none: the server decides
	}
	tc := tls.Client(tcp, cfg)
	hctx, cancel := context.WithTimeout(ctx, timeout)
	err = tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		tcp.Close()
		return nil, m.tlsFailure(ctx, address, err)
	}
	out.conn, out.version = tc, tc.ConnectionState().Version
	return out, nil
}

// tlsFailure counts and wraps a failed TLS handshake with address.
func (m *sendMetrics) tlsFailure(ctx context.Context, address string, err error) error {
	err = fmt.Errorf("cannot establish TLS with %s: %w", address, err)
	if isCertError(err) || isCertAlert(err) {
		// Retried like any failure (and logged at each backoff step): a
		// certificate gets fixed or renewed, and dropping alerts meanwhile
		// would lose them. Without a spool this stalls intake once the queue
		// is full; with one, the spool holds them.
		m.failure("tls_certificate")
		return err
	}
	if ctx.Err() == nil {
		m.failure("tls_handshake")
	}
	return err
}
