package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// SyslogNG drives syslog-ng in its fastest no-loss configuration (DESIGN.md
// §7): flags(flow-control), log-iw-size(100000) on the source, the syslog()
// destination (octet-counted RFC 5424) for syslog outputs and http() with
// batch-lines(1000) workers(2) for HTTPS.
type SyslogNG struct {
	Bin string // syslog-ng; "" searches PATH
}

// Name implements Relay.
func (r *SyslogNG) Name() string { return "syslog-ng" }

func (r *SyslogNG) bin() (string, error) {
	if r.Bin != "" {
		return lookBin(r.Bin)
	}
	return lookBin("", "syslog-ng")
}

// Available implements Relay.
func (r *SyslogNG) Available() error {
	_, err := r.bin()
	return err
}

// Supports implements Relay: every input; the HTTPS output needs the http
// module (Debian package syslog-ng-mod-http).
func (r *SyslogNG) Supports(spec *RelaySpec) error {
	bin, err := r.bin()
	if err != nil {
		return err
	}
	if spec.Output == OutputRELP {
		return fmt.Errorf("%w: syslog-ng OSE has no RELP", ErrUnsupported)
	}
	if spec.Output == OutputHTTPS || spec.Output == OutputHTTP {
		out, _ := exec.Command(bin, "--version").CombinedOutput()
		if !hasModule(string(out), "http") {
			return fmt.Errorf("%w: syslog-ng has no http module (install syslog-ng-mod-http)", ErrUnsupported)
		}
	}
	return nil
}

var versionRE = regexp.MustCompile(`Config version: (\d+\.\d+)`)

// configVersion returns the config version syslog-ng --version reports.
func (r *SyslogNG) configVersion(bin string) string {
	out, _ := exec.Command(bin, "--version").CombinedOutput()
	if m := versionRE.FindSubmatch(out); m != nil {
		return string(m[1])
	}
	return "3.35"
}

// Config returns syslog-ng's configuration for spec, for config version ver.
func (r *SyslogNG) Config(spec *RelaySpec, ver string) string {
	host, port, _ := net.SplitHostPort(spec.InputAddr)
	_, sinkPort, _ := net.SplitHostPort(spec.SinkAddr)
	var b strings.Builder
	fmt.Fprintf(&b, "@version: %s\n", ver)
	b.WriteString("options { threaded(yes); use-dns(no); use-fqdn(no); keep-hostname(yes); chain-hostnames(no); " +
		"stats-freq(0); log-msg-size(262144); log-fifo-size(100000); time-reopen(1); };\n")
	transport := "tcp"
	tlsIn := ""
	switch spec.Input {
	case "udp":
		transport = "udp"
	case "tls":
		transport = "tls"
		tlsIn = fmt.Sprintf(" tls(key-file(%q) cert-file(%q) peer-verify(optional-untrusted))", spec.Cert.KeyFile, spec.Cert.CertFile)
	}
	// network() reads LF-framed BSD syslog (RFC 5424 with
	// flags(syslog-protocol)); octet-counted frames need syslog().
	driver, flags := "network", ""
	switch {
	case spec.Framing == FramingOctet && spec.Input != "udp":
		driver = "syslog"
	case spec.Header == Header5424:
		flags = " flags(syslog-protocol)"
	}
	// log-iw-size is shared out among max-connections: keep the latter to
	// what the load uses, or each connection gets a tiny window.
	fmt.Fprintf(&b, "source s_in { %s(ip(%q) port(%s) transport(%q) max-connections(%d) log-iw-size(100000) log-msg-size(262144)%s%s); };\n",
		driver, host, port, transport, max(spec.Conns, 1)+4, flags, tlsIn)
	switch spec.Output {
	case OutputHTTPS, OutputHTTP:
		// The same http() for both; plain http:// has no tls() block.
		tlsOut := ""
		if spec.Output == OutputHTTPS {
			tlsOut = fmt.Sprintf("tls(ca-file(%q) peer-verify(yes)) ", spec.Cert.CAFile())
		}
		fmt.Fprintf(&b, "destination d_out { http(url(%q) method(\"POST\") headers(\"X-SEKOIAIO-INTAKE-KEY: %s\", \"Content-Type: text/plain\") "+
			"body(\"${MSG}\") delimiter(\"\\n\") batch-lines(1000) batch-bytes(4194304) batch-timeout(100) workers(2) "+
			"%slog-fifo-size(100000)); };\n",
			strings.TrimSuffix(spec.SinkURL, "/")+"/plain/batch", spec.IntakeKey, tlsOut)
	default:
		tlsOut := ""
		transport := "tcp"
		if spec.Output == OutputTLSSyslog {
			transport = "tls"
			tlsOut = fmt.Sprintf(" tls(ca-file(%q) peer-verify(required-trusted))", spec.Cert.CAFile())
		}
		// syslog() frames octet-counted RFC 5424 and writes MSG as is; the
		// Sekoia MSGID and structured data are set by a rewrite rule.
		fmt.Fprintf(&b, "rewrite r_sekoia { set(\"LOG\" value(\"MSGID\")); set(%q value(\".SDATA.SEKOIA@53288.intake_key\")); };\n", spec.IntakeKey)
		fmt.Fprintf(&b, "destination d_out { syslog(\"localhost\" ip-protocol(4) port(%s) transport(%q)%s log-fifo-size(100000)); };\n",
			sinkPort, transport, tlsOut)
		b.WriteString("log { source(s_in); rewrite(r_sekoia); destination(d_out); flags(flow-control); };\n")
		return b.String()
	}
	b.WriteString("log { source(s_in); destination(d_out); flags(flow-control); };\n")
	return b.String()
}

// Start implements Relay.
func (r *SyslogNG) Start(ctx context.Context, spec *RelaySpec) (RelayProcess, error) {
	bin, err := r.bin()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(spec.Dir, "syslog-ng.conf")
	if err := os.WriteFile(conf, []byte(r.Config(spec, r.configVersion(bin))), 0o600); err != nil {
		return nil, fmt.Errorf("cannot write syslog-ng config: %w", err)
	}
	args := []string{"-F", "--no-caps", "-f", conf, "-R", filepath.Join(spec.Dir, "syslog-ng.persist"),
		"-p", filepath.Join(spec.Dir, "syslog-ng.pid"), "-c", filepath.Join(spec.Dir, "syslog-ng.ctl")}
	return StartProcess(ctx, bin, args, filepath.Join(spec.Dir, "syslog-ng.log"), netOf(spec.Input), spec.InputAddr)
}

// hasModule reports whether syslog-ng --version output lists module m among
// its Available-Modules.
func hasModule(version, m string) bool {
	for _, line := range strings.Split(version, "\n") {
		if list, ok := strings.CutPrefix(line, "Available-Modules:"); ok {
			for _, x := range strings.Split(list, ",") {
				if strings.TrimSpace(x) == m {
					return true
				}
			}
		}
	}
	return false
}
