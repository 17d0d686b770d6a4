package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DTRelay drives dtrelay: `dtrelay run -c CONFIG` with a generated YAML
// config (DESIGN.md §4), stopped with SIGTERM.
type DTRelay struct {
	Bin string // path to the binary; "" finds bin/dtrelay above the working directory, then PATH
}

// Name implements Relay.
func (r *DTRelay) Name() string { return "dtrelay" }

func (r *DTRelay) bin() (string, error) {
	if r.Bin != "" {
		return lookBin(r.Bin)
	}
	if dir, err := os.Getwd(); err == nil {
		for {
			p := filepath.Join(dir, "bin", "dtrelay")
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return p, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return lookBin("", "dtrelay")
}

// Available implements Relay.
func (r *DTRelay) Available() error {
	_, err := r.bin()
	return err
}

// Supports implements Relay: every input and output.
func (r *DTRelay) Supports(spec *RelaySpec) error { return nil }

// Config returns dtrelay's YAML configuration for spec.
func (r *DTRelay) Config(spec *RelaySpec) string {
	var b strings.Builder
	fmt.Fprintf(&b, "inputs:\n  - name: bench\n    protocol: %s\n    address: %s\n", spec.Input, spec.InputAddr)
	if spec.Input == "tls" {
		fmt.Fprintf(&b, "    tls: {cert_file: %s, key_file: %s}\n", q(spec.Cert.CertFile), q(spec.Cert.KeyFile))
	}
	b.WriteString("outputs:\n  - name: sink\n")
	switch spec.Output {
	case OutputHTTPS:
		// The same job as syslog-ng's http() here: uncompressed bodies,
		// batches of 1000 or 100 ms. (dtrelay's own default gzips, which
		// saves a WAN link but costs CPU that loopback does not repay.)
		fmt.Fprintf(&b, "    type: sekoia-http\n    url: %s\n    intake_key: %s\n    ca_file: %s\n"+
			"    compression: none\n    batch: {max_events: 1000, max_wait: 100ms}\n",
			q(spec.SinkURL), q(spec.IntakeKey), q(spec.Cert.CAFile()))
	case OutputHTTP:
		// sekoia-http refuses http:// (the intake key must not travel in
		// clear), so plain HTTP is dtrelay's generic http output pointed
		// at the same /plain/batch with the key as a header: the same
		// NDJSON encoder and HTTP client as sekoia-http, the same job.
		fmt.Fprintf(&b, "    type: http\n    url: %s\n    headers: {X-SEKOIAIO-INTAKE-KEY: %s}\n"+
			"    compression: none\n    batch: {max_events: 1000, max_wait: 100ms}\n",
			q(strings.TrimSuffix(spec.SinkURL, "/")+"/plain/batch"), q(spec.IntakeKey))
	case OutputRELP:
		// TLS checked by name like rsyslog's tls.authMode="name"; the
		// window is dtrelay's default unless the spec sets one, and the
		// batch its default (one window).
		fmt.Fprintf(&b, "    type: relp\n    address: %s\n    tls: true\n    ca_file: %s\n    server_name: localhost\n"+
			"    format: sekoia\n    intake_key: %s\n", spec.SinkAddr, q(spec.Cert.CAFile()), q(spec.IntakeKey))
		if w := spec.RELPWindow; w > 0 {
			fmt.Fprintf(&b, "    window: %d\n", w)
		}
	default:
		fmt.Fprintf(&b, "    type: syslog\n    address: %s\n    format: sekoia\n    framing: octet-counting\n    intake_key: %s\n",
			spec.SinkAddr, q(spec.IntakeKey))
		if spec.Output == OutputTLSSyslog {
			fmt.Fprintf(&b, "    tls: true\n    ca_file: %s\n    server_name: localhost\n", q(spec.Cert.CAFile()))
		} else {
			b.WriteString("    tls: false\n")
		}
	}
	return b.String()
}

// q quotes s for YAML.
func q(s string) string { return strconv.Quote(s) }

// Start implements Relay.
func (r *DTRelay) Start(ctx context.Context, spec *RelaySpec) (RelayProcess, error) {
	bin, err := r.bin()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(spec.Dir, "dtrelay.yaml")
	if err := os.WriteFile(conf, []byte(r.Config(spec)), 0o600); err != nil {
		return nil, fmt.Errorf("cannot write dtrelay config: %w", err)
	}
	return StartProcess(ctx, bin, []string{"run", "-c", conf}, filepath.Join(spec.Dir, "dtrelay.log"), netOf(spec.Input), spec.InputAddr)
}

// netOf returns the socket network of an input protocol.
func netOf(input string) string {
	if input == "udp" {
		return "udp"
	}
	return "tcp"
}
