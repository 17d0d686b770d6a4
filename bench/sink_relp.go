package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/internal/rsyslogpeer"
)

// RELPSink is the intake of the OutputRELP scenario. No Go RELP server is
// trusted to judge a RELP client, so the relay under test talks to a real
// rsyslogd: imrelp over TLS (OpenSSL, presenting the harness's
// certificate), whose every acknowledged message is forwarded as received
// (%rawmsg%) with omfwd, octet-counted, to a plain SyslogSink on loopback,
// which accounts it in the Tally like any other scenario. The forwarding
// rsyslogd runs an in-memory queue (rsyslogpeer.QueueMemory) so that it is
// not the bottleneck of the relays it measures; it is not the process
// sampled for CPU. An alert it loses counts as lost against the relay.
type RELPSink struct {
	rs   *rsyslogpeer.Server
	sink *SyslogSink
}

// RELPPeer returns the rsyslog that plays the RELP intake: install when
// its Bin is set, else rsyslogpeer.Find's.
func RELPPeer(install rsyslogpeer.Install) (rsyslogpeer.Install, error) {
	if install.Bin != "" {
		if install.Modules == "" {
			install.Modules = rsyslogpeer.ModulesOf(install.Bin)
		}
		if !install.Has("imrelp") {
			return install, fmt.Errorf("%w: no imrelp.so in %s (bench/install-peers.sh unpacks rsyslog-relp)", ErrUnsupported, install.Modules)
		}
		return install, nil
	}
	in, err := rsyslogpeer.Find()
	if err != nil {
		return in, fmt.Errorf("%w: the relp scenario's intake: %v", ErrUnsupported, err)
	}
	return in, nil
}

// NewRELPSink starts the sink, rsyslogd's files under dir, accounting in
// tally.
func NewRELPSink(install rsyslogpeer.Install, dir string, cert *Cert, tally *Tally, log zerolog.Logger) (*RELPSink, error) {
	install, err := RELPPeer(install)
	if err != nil {
		return nil, err
	}
	sink, err := NewSyslogSink("127.0.0.1:0", nil, tally, log)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		sink.Close()
		return nil, fmt.Errorf("cannot create RELP sink directory: %w", err)
	}
	rs, err := rsyslogpeer.New(rsyslogpeer.Config{Install: install, Dir: dir, Input: rsyslogpeer.InputRELP,
		TLS:     &rsyslogpeer.TLS{CAFile: cert.CAFile(), CertFile: cert.CertFile, KeyFile: cert.KeyFile},
		Raw:     true,
		Forward: &rsyslogpeer.Forward{Type: "omfwd", Addr: sink.Addr()},
		Queue:   rsyslogpeer.QueueMemory})
	if err == nil {
		err = rs.Start()
	}
	if err != nil {
		sink.Close()
		return nil, fmt.Errorf("cannot start the RELP intake (rsyslogd imrelp, %s): %w", filepath.Join(dir, "rsyslog.conf"), err)
	}
	return &RELPSink{rs: rs, sink: sink}, nil
}

// Addr returns the imrelp address the relay forwards to.
func (s *RELPSink) Addr() string { return s.rs.Addr() }

// Close stops rsyslogd (SIGTERM: it forwards what it holds, for at most
// 10 s) and then the syslog sink.
func (s *RELPSink) Close() error {
	err := s.rs.Stop(syscall.SIGTERM, 10*time.Second)
	if serr := s.sink.Close(); err == nil {
		err = serr
	}
	return err
}
