package bench

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/dtrelay/dtrelay/internal/rsyslogpeer"
)

// Rsyslog drives rsyslogd in its fastest no-loss configuration (DESIGN.md
// §7): imptcp input (imtcp with the ossl driver for TLS, imudp for UDP),
// LinkedList queues of 10,000 with dequeueBatchSize 1024, omfwd with
// octet-counted framing and resumeRetryCount -1 (for OutputRELP, omrelp over
// TLS with the same queue). rsyslog has no HTTP output in
// Debian's package (omhttp), so OutputHTTPS is supported only when the module
// directory holds omhttp.so.
type Rsyslog struct {
	Bin     string // rsyslogd; "" searches PATH, then /opt/dtbench-peers/usr/sbin
	Modules string // module directory for -M; "" derives it from the binary's location
}

// DefaultPeersDir is where bench/install-peers.sh unpacks rsyslog.
const DefaultPeersDir = "/opt/dtbench-peers"

// Name implements Relay.
func (r *Rsyslog) Name() string { return "rsyslog" }

func (r *Rsyslog) bin() (string, error) {
	if r.Bin != "" {
		return lookBin(r.Bin)
	}
	if p, err := lookBin("", "rsyslogd"); err == nil {
		return p, nil
	}
	if p, err := lookBin(filepath.Join(DefaultPeersDir, "usr/sbin/rsyslogd")); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w: rsyslogd not on PATH nor in %s (run bench/install-peers.sh)", ErrRelayMissing, DefaultPeersDir)
}

// modules returns the module directory: the flag, else
// <prefix>/usr/lib/<triplet>/rsyslog next to the binary's usr/sbin.
func (r *Rsyslog) modules(bin string) string {
	if r.Modules != "" {
		return r.Modules
	}
	prefix := filepath.Dir(filepath.Dir(bin)) // .../usr
	m, _ := filepath.Glob(filepath.Join(prefix, "lib", "*-linux-gnu", "rsyslog"))
	if len(m) > 0 {
		return m[0]
	}
	return filepath.Join(prefix, "lib", "rsyslog")
}

// Available implements Relay.
func (r *Rsyslog) Available() error {
	bin, err := r.bin()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(r.modules(bin), "imptcp.so")); err != nil {
		return fmt.Errorf("%w: no imptcp.so in rsyslog module directory %s (give --rsyslog-modules)", ErrRelayMissing, r.modules(bin))
	}
	return nil
}

// Supports implements Relay.
func (r *Rsyslog) Supports(spec *RelaySpec) error {
	bin, err := r.bin()
	if err != nil {
		return err
	}
	mods := r.modules(bin)
	has := func(m string) bool { _, err := os.Stat(filepath.Join(mods, m)); return err == nil }
	if (spec.Input == "tls" || spec.Output == OutputTLSSyslog) && !has("lmnsd_ossl.so") {
		return fmt.Errorf("%w: rsyslog has no ossl TLS driver (install rsyslog-openssl)", ErrUnsupported)
	}
	if spec.Output == OutputRELP && !has("omrelp.so") {
		return fmt.Errorf("%w: rsyslog has no omrelp module (bench/install-peers.sh unpacks rsyslog-relp)", ErrUnsupported)
	}
	if (spec.Output == OutputHTTPS || spec.Output == OutputHTTP) && !has("omhttp.so") {
		return fmt.Errorf("%w: rsyslog has no omhttp module (not in Debian's rsyslog)", ErrUnsupported)
	}
	return nil
}

// queueParams are the queue settings DESIGN.md §7 fixes for rsyslog.
const rsyslogQueue = `queue.type="LinkedList" queue.size="10000" queue.dequeueBatchSize="1024"`

// rsyslogRELPWindow is omrelp's windowSize in the relp scenario: its
// fastest. At its default (128) omrelp ran at 2.7k alerts/s (1.5 KB, TLS),
// one window per ~45 ms: librelp sets no TCP_NODELAY on either side, so the
// stall is most likely Nagle holding rsp frames for a delayed ACK. 1024
// gave 33k/s, 4096 no more.
const rsyslogRELPWindow = 1024

// Config returns rsyslog's configuration for spec.
func (r *Rsyslog) Config(spec *RelaySpec) string {
	host, port, _ := net.SplitHostPort(spec.InputAddr)
	sinkHost, sinkPort, _ := net.SplitHostPort(spec.SinkAddr)
	var b strings.Builder
	fmt.Fprintf(&b, "global(workDirectory=%q maxMessageSize=\"256k\"", spec.Dir)
	if spec.Cert != nil {
		fmt.Fprintf(&b, " defaultNetstreamDriverCAFile=%q defaultNetstreamDriverCertFile=%q defaultNetstreamDriverKeyFile=%q",
			spec.Cert.CAFile(), spec.Cert.CertFile, spec.Cert.KeyFile)
	}
	b.WriteString(")\n")
	fmt.Fprintf(&b, "main_queue(%s)\n", rsyslogQueue)
	// Darktrace's RFC 3164 tag has no colon; drop the space before the JSON.
	b.WriteString("parser(name=\"bench.rfc3164\" type=\"pmrfc3164\" remove.msgFirstSpace=\"on\")\n")
	switch spec.Input {
	case "udp":
		fmt.Fprintf(&b, "module(load=\"imudp\")\ninput(type=\"imudp\" address=%q port=%q ruleset=\"fwd\")\n", host, port)
	case "tls":
		b.WriteString("module(load=\"imtcp\" streamDriver.name=\"ossl\" streamDriver.mode=\"1\" streamDriver.authMode=\"anon\" maxSessions=\"2000\")\n")
		fmt.Fprintf(&b, "input(type=\"imtcp\" address=%q port=%q ruleset=\"fwd\")\n", host, port)
	default:
		fmt.Fprintf(&b, "module(load=\"imptcp\")\ninput(type=\"imptcp\" address=%q port=%q ruleset=\"fwd\")\n", host, port)
	}
	fmt.Fprintf(&b, "template(name=\"sekoia\" type=\"string\" string=\"<%%PRI%%>1 %%TIMESTAMP:::date-rfc3339%% %%HOSTNAME%% %%APP-NAME%% - LOG [SEKOIA@53288 intake_key=\\\"%s\\\"] %%msg%%\")\n", spec.IntakeKey)
	b.WriteString("template(name=\"plain\" type=\"string\" string=\"%msg%\")\n")
	switch spec.Output {
	case OutputHTTPS, OutputHTTP:
		b.WriteString("module(load=\"omhttp\")\n")
	case OutputRELP:
		b.WriteString("module(load=\"omrelp\" tls.tlslib=\"openssl\")\n")
	}
	fmt.Fprintf(&b, "ruleset(name=\"fwd\" parser=[\"rsyslog.rfc5424\", \"bench.rfc3164\"]) {\n")
	switch spec.Output {
	case OutputHTTPS, OutputHTTP:
		u, _ := url.Parse(spec.SinkURL)
		useHTTPS := "on"
		if spec.Output == OutputHTTP {
			useHTTPS = "off"
		}
		fmt.Fprintf(&b, "  action(type=\"omhttp\" server=%q serverport=%q restpath=\"plain/batch\" useHttps=%q tls.cacert=%q "+
			"httpheaderkey=\"X-SEKOIAIO-INTAKE-KEY\" httpheadervalue=%q template=\"plain\" batch=\"on\" batch.format=\"newline\" batch.maxsize=\"1000\" "+
			"%s action.resumeRetryCount=\"-1\")\n", u.Hostname(), u.Port(), useHTTPS, spec.Cert.CAFile(), spec.IntakeKey, rsyslogQueue)
	case OutputRELP:
		// omrelp's own TLS (librelp with OpenSSL), the name checked as
		// Sekoia's documentation has it.
		fmt.Fprintf(&b, "  %s\n", rsyslogpeer.OmrelpAction(spec.SinkAddr, &rsyslogpeer.TLS{CAFile: spec.Cert.CAFile(), PeerName: "localhost"},
			cmp.Or(spec.RELPWindow, rsyslogRELPWindow), "sekoia", rsyslogQueue))
	default:
		fmt.Fprintf(&b, "  action(type=\"omfwd\" target=%q port=%q protocol=\"tcp\" TCP_Framing=\"octet-counted\" template=\"sekoia\"", sinkHost, sinkPort)
		if spec.Output == OutputTLSSyslog {
			b.WriteString(" StreamDriver=\"ossl\" StreamDriverMode=\"1\" StreamDriverAuthMode=\"x509/name\" StreamDriverPermittedPeers=\"localhost\"")
		}
		fmt.Fprintf(&b, "\n    %s action.resumeRetryCount=\"-1\")\n", rsyslogQueue)
	}
	b.WriteString("}\n")
	return b.String()
}

// Start implements Relay.
func (r *Rsyslog) Start(ctx context.Context, spec *RelaySpec) (RelayProcess, error) {
	bin, err := r.bin()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(spec.Dir, "rsyslog.conf")
	if err := os.WriteFile(conf, []byte(r.Config(spec)), 0o600); err != nil {
		return nil, fmt.Errorf("cannot write rsyslog config: %w", err)
	}
	args := []string{"-n", "-f", conf, "-i", filepath.Join(spec.Dir, "rsyslogd.pid"), "-M", r.modules(bin)}
	return StartProcess(ctx, bin, args, filepath.Join(spec.Dir, "rsyslog.log"), netOf(spec.Input), spec.InputAddr)
}
