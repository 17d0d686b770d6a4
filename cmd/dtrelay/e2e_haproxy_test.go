package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/internal/intaketest"
)

// The scale-out recipe (issue 18): deploy/haproxy/haproxy.cfg, the shipped
// example, in front of two relays. The tests run the real HAProxy with that
// file, rewritten only for loopback addresses and ports.

// haRelay is one relay behind the balancer.
type haRelay struct {
	port, tlsPort, mport int
	cfg                  string
	proc                 *relayProc
}

// haproxyBin returns HAProxy's path, or skips the test.
func haproxyBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy is not installed (apt-get install haproxy; .ci/run installs it): skipping the scale-out test")
	}
	return p
}

var haServerLine = regexp.MustCompile(`server relay([12]) 10\.0\.0\.1[12]:(1514|6514) port 9514`)

// haproxyConfig returns the shipped example with the frontends on front and
// frontTLS and the servers at the relays' loopback ports.
func haproxyConfig(t *testing.T, front, frontTLS int, relays []*haRelay) string {
	t.Helper()
	b, err := os.ReadFile("../../deploy/haproxy/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for old, repl := range map[string]string{
		"log /dev/log local0": "log stderr format raw local0 notice",
		"bind :1514":          fmt.Sprintf("bind 127.0.0.1:%d", front),
		"bind :6514":          fmt.Sprintf("bind 127.0.0.1:%d", frontTLS),
	} {
		if !strings.Contains(s, old) {
			t.Fatalf("deploy/haproxy/haproxy.cfg lacks %q", old)
		}
		s = strings.ReplaceAll(s, old, repl)
	}
	n := 0
	s = haServerLine.ReplaceAllStringFunc(s, func(m string) string {
		n++
		sub := haServerLine.FindStringSubmatch(m)
		r := relays[sub[1][0]-'1']
		port := r.port
		if sub[2] == "6514" {
			port = r.tlsPort
		}
		return fmt.Sprintf("server relay%s 127.0.0.1:%d port %d", sub[1], port, r.mport)
	})
	if n != 4 {
		t.Fatalf("rewrote %d server lines of deploy/haproxy/haproxy.cfg, want 4", n)
	}
	return s
}

// startHAProxy runs HAProxy in the foreground with conf until the test ends.
func startHAProxy(t *testing.T, bin, dir, conf string) {
	t.Helper()
	path := writeFile(t, dir, "haproxy.cfg", conf)
	if out, err := exec.Command(bin, "-c", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	logs := &syncBuf{}
	cmd := exec.Command(bin, "-db", "-f", path)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy log:\n%s", logs.String())
		}
	})
}

// haSetup starts an intake, two relays (proxy_protocol from 127.0.0.1 only,
// senders allowed from 127.0.0.2 only, their own spools) and HAProxy with
// the example; it returns the frontends' ports.
func haSetup(t *testing.T, extra string) (in *intaketest.SyslogIntake, relays []*haRelay, front, frontTLS int, pool *x509.CertPool) {
	t.Helper()
	bin := haproxyBin(t)
	dir := t.TempDir()
	in = intaketest.NewSyslog(t, "", false)
	certFile, keyFile, pool := issueCert(t, dir)
	for i := range 2 {
		r := &haRelay{port: freePort(t), tlsPort: freePort(t), mport: freePort(t)}
		r.cfg = writeFile(t, dir, fmt.Sprintf("relay%d.yaml", i+1), fmt.Sprintf(`
inputs:
  - {name: darktrace, protocol: tcp, address: "127.0.0.1:%d", proxy_protocol: true, trusted_proxies: [127.0.0.1/32], allow: [127.0.0.2/32]}
  - {name: darktrace-tls, protocol: tls, address: "127.0.0.1:%d", proxy_protocol: true, trusted_proxies: [127.0.0.1/32], allow: [127.0.0.2/32],
     tls: {cert_file: %s, key_file: %s}}
outputs:
  - {name: intake, type: syslog, address: "%s", tls: false, format: rfc5424}
spool: {dir: %s}
metrics: {address: "127.0.0.1:%d"}
shutdown_timeout: 10s
%s`, r.port, r.tlsPort, certFile, keyFile, in.Addr(), filepath.Join(dir, fmt.Sprintf("spool%d", i+1)), r.mport, extra))
		r.proc = startRelay(t, "run", "-c", r.cfg)
		relays = append(relays, r)
	}
	front, frontTLS = freePort(t), freePort(t)
	startHAProxy(t, bin, dir, haproxyConfig(t, front, frontTLS, relays))
	for _, r := range relays {
		waitFor(t, "relay ready", func() bool { return metricValue(t, r.mport, "dtrelay_output_up") >= 0 })
	}
	return in, relays, front, frontTLS, pool
}

// haSender sends unique alerts through the balancer from 127.0.0.2 on
// conns connections, reconnecting on error and resending the chunk whose
// write failed; it records which connection wrote each alert successfully
// and which connections broke.
type haSender struct {
	addr     string
	tlsCfg   *tls.Config
	payloads []string

	mu        sync.Mutex
	writtenOn map[int]int // alert → connection that wrote it
	broken    map[int]bool
	conns     int
	total     atomic.Int64
}

func (s *haSender) dial() (net.Conn, int, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 2 * time.Second}
	var c net.Conn
	var err error
	if s.tlsCfg != nil {
		c, err = tls.DialWithDialer(&d, "tcp", s.addr, s.tlsCfg)
	} else {
		c, err = d.Dial("tcp", s.addr)
	}
	if err != nil {
		return nil, 0, err
	}
	s.mu.Lock()
	s.conns++
	id := s.conns
	s.mu.Unlock()
	return c, id, nil
}

// run sends alerts [lo, hi) in chunks of chunk, pausing pause after each.
func (s *haSender) run(t *testing.T, lo, hi, chunk int, pause time.Duration) {
	var c net.Conn
	id := 0
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	for i := lo; i < hi; {
		if time.Now().After(deadline) {
			t.Errorf("sender stuck at alert %d", i)
			return
		}
		if c == nil {
			var err error
			if c, id, err = s.dial(); err != nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
		}
		end := min(hi, i+chunk)
		var b strings.Builder
		for _, p := range s.payloads[i:end] {
			fmt.Fprintf(&b, "<165>Aug  5 03:34:46 dt-master darktrace %s\n", p)
		}
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte(b.String())); err != nil {
			s.mu.Lock()
			s.broken[id] = true
			s.mu.Unlock()
			c.Close()
			c = nil
			continue // the same chunk on a new connection
		}
		s.mu.Lock()
		for j := i; j < end; j++ {
			s.writtenOn[j] = id
		}
		s.mu.Unlock()
		s.total.Add(int64(end - i))
		i = end
		if pause > 0 {
			time.Sleep(pause)
		}
	}
}

// TestHAProxyTwoRelaysSurviveAKill9 (issue 18): 50,000 unique alerts
// through HAProxy to two relays while one is killed with SIGKILL and
// restarted. Every alert the sender wrote successfully arrives, except
// alerts written on a connection the kill broke (what plain TCP syslog had
// in flight), counted and reported; what reached the killed relay's spool
// is delivered after its restart; the relays saw the original client
// (they admit only 127.0.0.2, HAProxy connects from 127.0.0.1).
func TestHAProxyTwoRelaysSurviveAKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("the scale-out test runs HAProxy and two relays")
	}
	in, relays, front, frontTLS, pool := haSetup(t, "")
	const n = 50_000
	s := &haSender{addr: fmt.Sprintf("127.0.0.1:%d", front), payloads: alerts(n), writtenOn: map[int]int{}, broken: map[int]bool{}}
	var wg sync.WaitGroup
	const workers = 4
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(t, w*n/workers, (w+1)*n/workers, 25, 2*time.Millisecond) // ~4 × 12,500 alerts/s at most
		}()
	}
	// Mid-load: hold deliveries so that relay1's spool has alerts not yet
	// delivered, kill it, then let deliveries go and restart it.
	waitFor(t, "15,000 alerts written", func() bool { return s.total.Load() >= 15_000 })
	in.Stall()
	time.Sleep(300 * time.Millisecond)
	read := metricSum(t, relays[0].mport, `dtrelay_input_alerts_total{input="darktrace",`)
	relays[0].proc.cmd.Process.Kill()
	relays[0].proc.cmd.Wait()
	in.Resume()
	time.Sleep(500 * time.Millisecond)
	relays[0].proc = startRelay(t, "run", "-c", relays[0].cfg)
	wg.Wait()

	// TLS through the balancer (passthrough to the relays' tls inputs).
	ts := &haSender{addr: fmt.Sprintf("127.0.0.1:%d", frontTLS), payloads: alerts(n + 200)[n:], writtenOn: map[int]int{}, broken: map[int]bool{},
		tlsCfg: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}
	ts.run(t, 0, 200, 50, 0)

	// Everything written arrives, but for what the kill caught in flight.
	var onBroken []int
	for i, id := range s.writtenOn {
		if s.broken[id] {
			onBroken = append(onBroken, i)
		}
	}
	want := n + 200 - len(onBroken)
	in.WaitEvents(want, 30*time.Second)
	time.Sleep(500 * time.Millisecond) // late duplicates, if any
	got := map[string]int{}
	for _, e := range in.Events() {
		got[string(e)]++
	}
	lost, dups := 0, 0
	for i := range n {
		c := got[s.payloads[i]]
		if _, ok := s.writtenOn[i]; !ok {
			t.Fatalf("alert %d was never written", i)
		}
		if c == 0 {
			if !s.broken[s.writtenOn[i]] {
				t.Fatalf("alert %d, written on connection %d that never broke, did not arrive", i, s.writtenOn[i])
			}
			lost++
		}
		dups += max(c-1, 0)
	}
	for _, p := range ts.payloads {
		if got[p] != 1 {
			t.Fatalf("an alert sent over TLS arrived %d times", got[p])
		}
	}
	redelivered := metricSum(t, relays[0].mport, "dtrelay_spool_redelivered_total")
	replayed := metricSum(t, relays[0].mport, `dtrelay_output_events_total{output="intake"}`)
	rejected := metricSum(t, relays[0].mport, "dtrelay_input_rejected_connections_total") +
		metricSum(t, relays[1].mport, "dtrelay_input_rejected_connections_total")
	t.Logf("%d alerts written; %d on the %d connections the kill broke, of which %d lost (in flight on the killed relay); "+
		"%d duplicates (relay1 counted %d redelivered); relay1 had read %d before the kill and delivered %d after its restart",
		n, len(onBroken), len(s.broken), lost, dups, redelivered, read, replayed)
	if dups > redelivered {
		t.Errorf("%d duplicates, more than the %d relay1 counted as redelivered", dups, redelivered)
	}
	if replayed == 0 {
		t.Errorf("relay1 delivered nothing after its restart: its spool held what it had read while deliveries were held")
	}
	if rejected != 0 {
		t.Errorf("%d connections rejected: the relays did not see the original client (127.0.0.2) in the PROXY header", rejected)
	}
	for _, r := range relays {
		if code := r.proc.stop(t); code != 0 {
			t.Errorf("relay exit code %d", code)
		}
	}
}

// runShort is run with one connection per chunk, closed by the sender
// once written, as senders that connect per batch do: the balancer moves
// a new connection, not one under way.
func (s *haSender) runShort(t *testing.T, lo, hi, chunk int, pause time.Duration) {
	for i := lo; i < hi; i += chunk {
		end := min(hi, i+chunk)
		s.mu.Lock()
		from := len(s.broken)
		s.mu.Unlock()
		s.run(t, i, end, chunk, 0)
		s.mu.Lock()
		if len(s.broken) > from {
			t.Errorf("a connection broke while sending alerts %d-%d", i, end)
		}
		s.mu.Unlock()
		if pause > 0 {
			time.Sleep(pause)
		}
	}
}

// TestHAProxyDrainWithShutdownDelay (issue 18): one relay of two is
// stopped with SIGTERM and shutdown_delay longer than HAProxy's checks
// (inter 1s × fall 2): its /readyz turns 503 at once, HAProxy marks it
// down and sends new connections to the other while it still accepts,
// then it drains and exits 0. Nothing is lost or duplicated.
func TestHAProxyDrainWithShutdownDelay(t *testing.T) {
	if testing.Short() {
		t.Skip("the scale-out test runs HAProxy and two relays")
	}
	in, relays, front, _, _ := haSetup(t, haDrainDelay)
	const n = 12_000
	s := &haSender{addr: fmt.Sprintf("127.0.0.1:%d", front), payloads: alerts(n), writtenOn: map[int]int{}, broken: map[int]bool{}}
	var wg sync.WaitGroup
	const workers = 4
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.runShort(t, w*n/workers, (w+1)*n/workers, 20, 5*time.Millisecond) // ~6 s of load
		}()
	}
	waitFor(t, "2,000 alerts written", func() bool { return s.total.Load() >= 2_000 })
	start := time.Now()
	relays[0].proc.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan int, 1)
	go func() {
		relays[0].proc.cmd.Wait()
		done <- relays[0].proc.cmd.ProcessState.ExitCode()
	}()
	var code int
	select {
	case code = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the drained relay did not exit within 20 s")
	}
	took := time.Since(start)
	wg.Wait()
	if code != 0 || took < 3*time.Second {
		t.Fatalf("drained relay exited %d after %v, want 0 after shutdown_delay (3s)", code, took)
	}
	if !in.WaitEvents(n, 30*time.Second) {
		t.Fatalf("intake got %d of %d alerts", in.Count(), n)
	}
	time.Sleep(300 * time.Millisecond)
	got := map[string]int{}
	for _, e := range in.Events() {
		got[string(e)]++
	}
	for i, p := range s.payloads {
		if got[p] != 1 {
			t.Fatalf("alert %d arrived %d times", i, got[p])
		}
	}
	s.mu.Lock()
	broken := len(s.broken)
	s.mu.Unlock()
	t.Logf("%d alerts on %d connections; relay1 drained in %v (shutdown_delay 3s); %d connections broke; 0 lost, 0 duplicated",
		n, s.conns, took.Round(time.Millisecond), broken)
	if code := relays[1].proc.stop(t); code != 0 {
		t.Errorf("relay2 exit code %d", code)
	}
}

// haDrainDelay is the drained relays' shutdown_delay (a variable so that
// the test can be shown to fail without it).
var haDrainDelay = "shutdown_delay: 3s\n"
