package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Output kinds: how the relay forwards to the sink.
const (
	OutputSyslog    = "syslog"     // octet-counted TCP syslog, Sekoia format
	OutputTLSSyslog = "tls-syslog" // the same over TLS
	OutputHTTPS     = "https"      // Sekoia HTTPS intake (/plain/batch, or /batch for a relay that uses it)
	// OutputHTTP is the same intake's /plain/batch without TLS: the
	// newline-delimited batches of OutputHTTPS over plain TCP.
	OutputHTTP = "http"
	// OutputRELP is RELP over TLS, Sekoia format, to a real rsyslog imrelp
	// (RELPSink).
	OutputRELP = "relp"
)

// Errors a Relay reports before starting.
var (
	// ErrRelayMissing: the relay's binary is not on this machine.
	ErrRelayMissing = errors.New("bench: relay not installed")
	// ErrUnsupported: the relay cannot do the scenario's input or output.
	ErrUnsupported = errors.New("bench: scenario not supported by relay")
)

// IntakeKey is the intake key the relays are configured with and the sink
// expects.
const IntakeKey = "dtbench-0000-intake-key"

// RelaySpec is what a relay must do in one run.
type RelaySpec struct {
	Dir       string // a fresh directory for the relay's config, state and log
	Input     string // "tcp", "udp" or "tls"
	InputAddr string // 127.0.0.1:PORT the relay listens on
	Output    string // OutputSyslog, OutputTLSSyslog, OutputHTTP, OutputHTTPS or OutputRELP
	SinkAddr  string // host:port of the syslog or RELP sink
	SinkURL   string // base URL of the HTTP(S) sink (http:// for OutputHTTP)
	Cert      *Cert  // the sink's and the TLS input's certificate, and the CA file that trusts it
	IntakeKey string
	Conns     int         // sender connections the relay will see (sizes per-connection windows)
	Framing   Framing     // input framing (for relays that must be told)
	Header    HeaderStyle // input header style (likewise)
	// RELPWindow, for OutputRELP, is every relay's window (transactions
	// in flight); 0 leaves each at its own (dtrelay's default, 128;
	// rsyslog's fastest, rsyslogRELPWindow).
	RELPWindow int
}

// Relay is one relay under test. Implementations are stateless and safe for
// concurrent use; each Start runs a new instance.
type Relay interface {
	// Name is the relay's name as given to --relays.
	Name() string
	// Available returns an error wrapping ErrRelayMissing when the relay
	// cannot run on this machine, nil otherwise.
	Available() error
	// Supports returns an error wrapping ErrUnsupported when the relay
	// cannot do the spec's input and output.
	Supports(spec *RelaySpec) error
	// Start writes the relay's configuration under spec.Dir, starts it and
	// returns once its input accepts connections (or ctx is done).
	Start(ctx context.Context, spec *RelaySpec) (RelayProcess, error)
}

// RelayProcess is one running relay.
type RelayProcess interface {
	// Pid is the process to sample for CPU and RSS, or 0 when the relay
	// does not run as its own process.
	Pid() int
	// Stop stops the relay (SIGTERM, then SIGKILL after ctx's deadline)
	// and waits for it.
	Stop(ctx context.Context) error
}

// Process is a relay started as a child process, its stdout and stderr
// appended to a log file. It is killed if dtbench dies.
type Process struct {
	cmd     *exec.Cmd
	LogFile string
	exited  chan struct{}
	waitErr error
}

// StartProcess starts bin with args, logging to logFile, and waits until
// addr accepts (network "tcp") or is bound (network "udp"), at most 15 s.
func StartProcess(ctx context.Context, bin string, args []string, logFile, network, addr string) (*Process, error) {
	lf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open relay log: %w", err)
	}
	defer lf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Dir = filepath.Dir(logFile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start %s: %w", bin, err)
	}
	p := &Process{cmd: cmd, LogFile: logFile, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	if err := p.waitReady(ctx, network, addr, 15*time.Second); err != nil {
		p.Stop(context.Background())
		return nil, err
	}
	return p, nil
}

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

func (p *Process) waitReady(ctx context.Context, network, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("cannot start relay: it exited (%v); log %s: %s", p.waitErr, p.LogFile, tailFile(p.LogFile, 600))
		default:
		}
		if listening(network, addr) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cannot start relay: %s %s not ready after %v; log %s: %s", network, addr, limit, p.LogFile, tailFile(p.LogFile, 600))
		}
		if !sleepCtx(ctx, 20*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// listening reports whether something accepts TCP connections on addr, or,
// for udp, holds the port (binding it fails).
func listening(network, addr string) bool {
	if network == "udp" {
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return errors.Is(err, syscall.EADDRINUSE)
		}
		c.Close()
		return false
	}
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Stop sends SIGTERM, waits until ctx is done, then kills the process group.
func (p *Process) Stop(ctx context.Context) error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-ctx.Done():
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
	return fmt.Errorf("cannot stop relay pid %d gracefully: killed", p.cmd.Process.Pid)
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log)"
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

// FreePort returns a loopback address with a port that was free a moment
// ago, for a relay's input.
func FreePort(network string) (string, error) {
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("cannot find a free port: %w", err)
		}
		defer c.Close()
		return c.LocalAddr().String(), nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("cannot find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// lookBin returns path when it names an executable file, else the result
// of searching PATH for each name in turn.
func lookBin(path string, names ...string) (string, error) {
	if path != "" {
		if st, err := os.Stat(path); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return path, nil
		}
		return "", fmt.Errorf("%w: %s is not an executable file", ErrRelayMissing, path)
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: %s not found on PATH", ErrRelayMissing, strings.Join(names, " or "))
}

// NewRelays returns the relays named in names, configured from opts.
func NewRelays(names []string, opts RelayOptions) ([]Relay, error) {
	var out []Relay
	for _, n := range names {
		switch n {
		case "dtrelay":
			out = append(out, &DTRelay{Bin: opts.DTRelay})
		case "rsyslog":
			out = append(out, &Rsyslog{Bin: opts.Rsyslogd, Modules: opts.RsyslogModules})
		case "syslog-ng":
			out = append(out, &SyslogNG{Bin: opts.SyslogNG})
		case "copy":
			out = append(out, &CopyRelayExec{Bin: opts.Self, DropEvery: opts.CopyDropEvery})
		default:
			return nil, fmt.Errorf("bench: unknown relay %q (want dtrelay, rsyslog, syslog-ng or copy)", n)
		}
	}
	return out, nil
}

// RelayOptions locates the relays' binaries; empty fields mean the default
// (PATH, or bin/dtrelay for dtrelay).
type RelayOptions struct {
	DTRelay        string // dtrelay binary (default: bin/dtrelay under the repo)
	Rsyslogd       string // rsyslogd binary
	RsyslogModules string // rsyslog module directory, for rsyslogd -M
	SyslogNG       string // syslog-ng binary
	Self           string // this dtbench binary, for the "copy" reference relay
	CopyDropEvery  int    // make the copy relay drop every Nth alert (to check loss detection)
}
