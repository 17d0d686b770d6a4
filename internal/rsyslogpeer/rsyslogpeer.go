package rsyslogpeer

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

var errRunning = errors.New("rsyslogpeer: rsyslogd already running")

// ErrNotInstalled is returned by Find when no rsyslogd with imrelp is on
// this machine.
var ErrNotInstalled = errors.New("rsyslogpeer: rsyslogd with imrelp not installed (run bench/install-peers.sh as root)")

// DefaultPeersDir is where bench/install-peers.sh unpacks rsyslog.
const DefaultPeersDir = "/opt/dtbench-peers"

// Install is an rsyslogd binary and its module directory (for -M).
type Install struct {
	Bin     string
	Modules string
}

// Has reports whether the module directory holds module (e.g. "imrelp").
func (in Install) Has(module string) bool {
	_, err := os.Stat(filepath.Join(in.Modules, module+".so"))
	return err == nil
}

// ModulesOf returns the module directory of an rsyslogd binary:
// <prefix>/lib/<triplet>/rsyslog beside its <prefix>/sbin.
func ModulesOf(bin string) string {
	prefix := filepath.Dir(filepath.Dir(bin))
	if m, _ := filepath.Glob(filepath.Join(prefix, "lib", "*-linux-gnu", "rsyslog")); len(m) > 0 {
		return m[0]
	}
	return filepath.Join(prefix, "lib", "rsyslog")
}

// Find returns the first rsyslogd whose module directory has imrelp and
// omrelp: on PATH, under $DTBENCH_PEERS, under DefaultPeersDir. The error
// wraps ErrNotInstalled and says what was looked at.
func Find() (Install, error) {
	var cands []string
	if p, err := exec.LookPath("rsyslogd"); err == nil {
		cands = append(cands, p)
	}
	if d := os.Getenv("DTBENCH_PEERS"); d != "" {
		cands = append(cands, filepath.Join(d, "usr/sbin/rsyslogd"))
	}
	cands = append(cands, filepath.Join(DefaultPeersDir, "usr/sbin/rsyslogd"))
	var tried []string
	for _, bin := range cands {
		st, err := os.Stat(bin)
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			tried = append(tried, bin+": no such executable")
			continue
		}
		in := Install{Bin: bin, Modules: ModulesOf(bin)}
		if !in.Has("imrelp") || !in.Has("omrelp") {
			tried = append(tried, bin+": no imrelp.so/omrelp.so in "+in.Modules)
			continue
		}
		return in, nil
	}
	return Install{}, fmt.Errorf("%w: %s", ErrNotInstalled, strings.Join(tried, "; "))
}

// Inputs a Server can listen with.
const (
	InputRELP = "imrelp" // RELP, plain or TLS (librelp with OpenSSL)
	InputPTCP = "imptcp" // plain TCP syslog, LF or octet-counted
	InputTCP  = "imtcp"  // TCP syslog, plain or TLS (the ossl stream driver)
)

// Queues: how the messages go from the input to the output.
const (
	// QueueDirect: the input thread writes (or forwards) each message
	// before it takes the next, so imrelp acknowledges only what was written.
	QueueDirect = "Direct"
	// QueueMemory: a LinkedList main queue of 100,000 dequeued in batches
	// of 1024: faster, and what it holds is lost when rsyslogd dies.
	QueueMemory = "LinkedList"
)

// TLS is the TLS material of an input (a server certificate) or of a
// forwarding action (the CA to check the peer with, and optionally a
// client certificate). Files are PEM.
type TLS struct {
	CAFile   string
	CertFile string
	KeyFile  string
	// PeerName, for an omrelp action, is the name the server's certificate
	// must carry (tls.authMode "name"); "" checks the chain only
	// ("certvalid").
	PeerName string
}

// Forward makes a Server forward every message instead of writing a file.
type Forward struct {
	Type string // "omfwd" (octet-counted TCP) or "omrelp"
	Addr string // host:port
	TLS  *TLS   // omrelp only: tls="on" with OpenSSL; nil is plain
	// Window is omrelp's windowSize (0: its default, 128).
	Window int
}

// Config is one rsyslogd configuration.
type Config struct {
	Install Install
	Dir     string // directory of its config, pid file, log and work directory; must exist
	Input   string // InputRELP (default), InputPTCP or InputTCP
	// TLS, when set, makes the input TLS (imrelp tls="on", or imtcp with
	// the ossl driver) presenting CertFile; clients are not asked for a
	// certificate.
	TLS *TLS
	// Raw writes each message as received instead of its MSG part.
	Raw bool
	// File is the output file (default Dir/received.log); unused with Forward.
	File    string
	Forward *Forward
	Queue   string // QueueDirect (default) or QueueMemory
}

// Server is one rsyslogd, started and stopped as the test needs.
type Server struct {
	cfg     Config
	addr    string
	conf    string
	pidFile string
	logFile string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // cmd.Wait's result once exited is closed

	countMu sync.Mutex
	counted int64 // bytes of the output file Count has read
	lines   int   // LFs in them
	buf     []byte
}

// New writes cfg's configuration under cfg.Dir, listening on 127.0.0.1 and
// a port free now, and returns the (not yet started) Server.
func New(cfg Config) (*Server, error) {
	if cfg.Input == "" {
		cfg.Input = InputRELP
	}
	if cfg.Queue == "" {
		cfg.Queue = QueueDirect
	}
	if cfg.File == "" {
		cfg.File = filepath.Join(cfg.Dir, "received.log")
	}
	switch {
	case cfg.Input != InputRELP && cfg.Input != InputPTCP && cfg.Input != InputTCP:
		return nil, fmt.Errorf("rsyslogpeer: unknown input %q", cfg.Input)
	case cfg.Input == InputPTCP && cfg.TLS != nil:
		return nil, errors.New("rsyslogpeer: imptcp has no TLS (use imtcp)")
	case cfg.Forward != nil && cfg.Forward.Type != "omfwd" && cfg.Forward.Type != "omrelp":
		return nil, fmt.Errorf("rsyslogpeer: unknown forward type %q", cfg.Forward.Type)
	case cfg.Forward != nil && cfg.Forward.Type == "omfwd" && cfg.Forward.TLS != nil:
		return nil, errors.New("rsyslogpeer: omfwd forwarding is plain TCP only")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("cannot find a free port: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &Server{cfg: cfg, addr: addr, conf: filepath.Join(cfg.Dir, "rsyslog.conf"),
		pidFile: filepath.Join(cfg.Dir, "rsyslogd.pid"), logFile: filepath.Join(cfg.Dir, "rsyslogd.log")}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "work"), 0o755); err != nil {
		return nil, fmt.Errorf("cannot create rsyslog work directory: %w", err)
	}
	if err := os.WriteFile(s.conf, []byte(s.Config()), 0o600); err != nil {
		return nil, fmt.Errorf("cannot write rsyslog config: %w", err)
	}
	return s, nil
}

// Addr returns the address the input listens on (127.0.0.1:PORT).
func (s *Server) Addr() string { return s.addr }

// Port returns the input's port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// File returns the output file.
func (s *Server) File() string { return s.cfg.File }

// LogFile returns the file rsyslogd's stdout, stderr and own messages go to.
func (s *Server) LogFile() string { return s.logFile }

// Config returns the rsyslog configuration.
func (s *Server) Config() string {
	c := &s.cfg
	host, port, _ := net.SplitHostPort(s.addr)
	var b strings.Builder
	fmt.Fprintf(&b, "global(workDirectory=%q maxMessageSize=\"512k\" net.enableDNS=\"off\" parser.escapeControlCharactersOnReceive=\"off\"", filepath.Join(c.Dir, "work"))
	if c.TLS != nil && c.Input == InputTCP {
		fmt.Fprintf(&b, "\n  defaultNetstreamDriverCAFile=%q defaultNetstreamDriverCertFile=%q defaultNetstreamDriverKeyFile=%q",
			c.TLS.CAFile, c.TLS.CertFile, c.TLS.KeyFile)
	}
	b.WriteString(")\n")
	if c.Queue == QueueMemory {
		b.WriteString(`main_queue(queue.type="LinkedList" queue.size="100000" queue.dequeueBatchSize="1024")` + "\n")
	} else {
		b.WriteString(`main_queue(queue.type="Direct")` + "\n")
	}
	// rsyslogd's own messages go to its log, not to the output.
	fmt.Fprintf(&b, "*.* action(type=\"omfile\" file=%q)\n", s.logFile)
	field := "msg"
	if c.Raw {
		field = "rawmsg"
	}
	if c.Forward != nil && c.Forward.Type == "omrelp" {
		b.WriteString(`module(load="omrelp" tls.tlslib="openssl")` + "\n")
	}
	fmt.Fprintf(&b, "template(name=\"peer.line\" type=\"string\" string=\"%%%s%%\\n\")\n", field)
	fmt.Fprintf(&b, "template(name=\"peer.fwd\" type=\"string\" string=\"%%%s%%\")\n", field)
	switch c.Input {
	case InputRELP:
		b.WriteString(`module(load="imrelp" tls.tlslib="openssl")` + "\n")
		fmt.Fprintf(&b, "input(type=\"imrelp\" address=%q port=%q ruleset=\"peer\" maxDataSize=\"512k\"", host, port)
		if c.TLS != nil {
			fmt.Fprintf(&b, " tls=\"on\" tls.cacert=%q tls.mycert=%q tls.myprivkey=%q", c.TLS.CAFile, c.TLS.CertFile, c.TLS.KeyFile)
		}
		b.WriteString(")\n")
	case InputPTCP:
		b.WriteString(`module(load="imptcp")` + "\n")
		fmt.Fprintf(&b, "input(type=\"imptcp\" address=%q port=%q ruleset=\"peer\")\n", host, port)
	case InputTCP:
		if c.TLS != nil {
			b.WriteString(`module(load="imtcp" streamDriver.name="ossl" streamDriver.mode="1" streamDriver.authMode="anon")` + "\n")
		} else {
			b.WriteString(`module(load="imtcp")` + "\n")
		}
		fmt.Fprintf(&b, "input(type=\"imtcp\" address=%q port=%q ruleset=\"peer\")\n", host, port)
	}
	b.WriteString("ruleset(name=\"peer\") {\n")
	switch f := c.Forward; {
	case f == nil:
		// One write(2) per message, as large as a message can be: a kill
		// never leaves half a line behind a message it acknowledged.
		fmt.Fprintf(&b, "  action(type=\"omfile\" file=%q template=\"peer.line\" ioBufferSize=\"1m\" flushOnTXEnd=\"on\" asyncWriting=\"off\")\n", c.File)
	case f.Type == "omfwd":
		fh, fp, _ := net.SplitHostPort(f.Addr)
		fmt.Fprintf(&b, "  action(type=\"omfwd\" target=%q port=%q protocol=\"tcp\" TCP_Framing=\"octet-counted\" template=\"peer.fwd\" action.resumeRetryCount=\"-1\")\n", fh, fp)
	default:
		b.WriteString("  " + OmrelpAction(f.Addr, f.TLS, f.Window, "peer.fwd", "") + "\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// OmrelpAction returns an rsyslog omrelp action forwarding to addr with
// template, over TLS (OpenSSL; the module must be loaded with
// tls.tlslib="openssl") when tls is not nil, with window transactions in
// flight (0: omrelp's default, 128), and the parameters in extra (such as
// its queue's). It retries for ever (resumeRetryCount -1), every second
// (resumeInterval 1; rsyslog's default of 30 s, growing with the retries,
// outlasts a test's wait for an intake restarted).
func OmrelpAction(addr string, tls *TLS, window int, template, extra string) string {
	host, port, _ := net.SplitHostPort(addr)
	var b strings.Builder
	fmt.Fprintf(&b, "action(type=\"omrelp\" target=%q port=%q template=%q action.resumeRetryCount=\"-1\" action.resumeInterval=\"1\"", host, port, template)
	if extra != "" {
		b.WriteString(" " + extra)
	}
	if window > 0 {
		fmt.Fprintf(&b, " windowSize=\"%d\"", window)
	}
	if tls != nil {
		fmt.Fprintf(&b, " tls=\"on\" tls.cacert=%q", tls.CAFile)
		if tls.CertFile != "" {
			fmt.Fprintf(&b, " tls.mycert=%q tls.myprivkey=%q", tls.CertFile, tls.KeyFile)
		}
		if tls.PeerName != "" {
			fmt.Fprintf(&b, " tls.authMode=\"name\" tls.permittedPeer=[%q]", tls.PeerName)
		} else {
			b.WriteString(` tls.authMode="certvalid"`)
		}
	}
	b.WriteString(")")
	return b.String()
}

// Start starts rsyslogd and returns once its input accepts connections (at
// most 15 s). It fails when the Server is running.
func (s *Server) Start() error {
	s.mu.Lock()
	if s.cmd != nil {
		s.mu.Unlock()
		return errRunning
	}
	os.Remove(s.pidFile) // a SIGKILL leaves it behind
	lf, err := os.OpenFile(s.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("cannot open rsyslog log: %w", err)
	}
	defer lf.Close()
	cmd := exec.Command(s.cfg.Install.Bin, "-n", "-f", s.conf, "-i", s.pidFile, "-M", s.cfg.Install.Modules)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Dir = s.cfg.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("cannot start rsyslogd: %w", err)
	}
	exited := make(chan struct{})
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(exited)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			s.mu.Lock()
			err := s.err
			s.cmd = nil
			s.mu.Unlock()
			return fmt.Errorf("rsyslogd exited at start (%v); %s", err, s.LogTail(800))
		default:
		}
		if c, err := net.DialTimeout("tcp", s.addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			s.Stop(syscall.SIGKILL, 0)
			return fmt.Errorf("rsyslogd not accepting on %s after 15s; %s", s.addr, s.LogTail(800))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Pid returns the running rsyslogd's process id, 0 when stopped.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Running reports whether rsyslogd was started and has not been stopped.
func (s *Server) Running() bool { return s.Pid() != 0 }

// Stop sends sig to rsyslogd and waits for it to exit; when it has not
// after timeout, it kills its process group and returns an error. Stop on
// a stopped Server does nothing.
func (s *Server) Stop(sig syscall.Signal, timeout time.Duration) error {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	defer func() {
		s.mu.Lock()
		s.cmd = nil
		s.mu.Unlock()
	}()
	cmd.Process.Signal(sig)
	if sig == syscall.SIGKILL {
		<-exited
		return nil
	}
	select {
	case <-exited:
		return nil
	case <-time.After(timeout):
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
	return fmt.Errorf("rsyslogd pid %d did not exit within %v of %v: killed", cmd.Process.Pid, timeout, sig)
}

// Close kills rsyslogd if it runs.
func (s *Server) Close() error { return s.Stop(syscall.SIGKILL, 0) }

// Lines returns the output file's lines, without their LF (a last line
// that lacks one, as a write cut short would leave, included).
func (s *Server) Lines() ([]string, error) {
	b, err := os.ReadFile(s.cfg.File)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read rsyslog output: %w", err)
	}
	if len(b) == 0 {
		return nil, nil
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	return strings.Split(string(b), "\n"), nil
}

// Count returns the number of complete lines in the output file so far. It
// reads only what was appended since the last call.
func (s *Server) Count() int {
	s.countMu.Lock()
	defer s.countMu.Unlock()
	f, err := os.Open(s.cfg.File)
	if err != nil {
		return s.lines
	}
	defer f.Close()
	if s.buf == nil {
		s.buf = make([]byte, 1<<20) // more than a message (maxMessageSize 512k)
	}
	buf := s.buf
	for {
		n, err := f.ReadAt(buf, s.counted)
		k := bytes.LastIndexByte(buf[:n], '\n') + 1
		s.lines += bytes.Count(buf[:k], []byte("\n"))
		s.counted += int64(k)
		if err != nil || k == 0 {
			return s.lines
		}
	}
}

// LogTail returns the last n bytes of rsyslogd's log, on one line.
func (s *Server) LogTail(n int) string {
	b, err := os.ReadFile(s.logFile)
	if err != nil {
		return "(no rsyslogd log)"
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return "rsyslogd log: " + strings.Join(strings.Fields(string(b)), " ")
}
