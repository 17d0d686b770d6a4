package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/internal/pki"
)

// The end-to-end tests run the real binary, built once in TestMain.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dtrelay-e2e")
	if err != nil {
		panic(err)
	}
	binPath = filepath.Join(dir, "dtrelay")
	out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "cannot build dtrelay: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// relayProc is a running dtrelay binary.
type relayProc struct {
	cmd    *exec.Cmd
	stdout *syncBuf
	stderr *syncBuf
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startRelay(t *testing.T, args ...string) *relayProc {
	t.Helper()
	p := &relayProc{stdout: &syncBuf{}, stderr: &syncBuf{}}
	p.cmd = exec.Command(binPath, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("dtrelay stderr:\n%s", p.stderr.String())
		}
	})
	return p
}

// stop sends SIGTERM and returns the exit code.
func (p *relayProc) stop(t *testing.T) int {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		t.Fatal("dtrelay did not stop within 15s of SIGTERM")
	}
	return p.cmd.ProcessState.ExitCode()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// freePort returns a port free for both TCP and UDP on 127.0.0.1.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

func dialWhenUp(t *testing.T, network, addr string) net.Conn {
	t.Helper()
	var c net.Conn
	waitFor(t, network+" "+addr+" accepting", func() bool {
		var err error
		c, err = net.Dial(network, addr)
		return err == nil
	})
	return c
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// alerts returns n distinct Darktrace-shaped payloads of several families.
func alerts(n int) []string {
	var out []string
	for i := range n {
		switch i % 4 {
		case 0:
			out = append(out, fmt.Sprintf(`{"pbid":%d,"time":1700000000000,"score":0.91,"model":{"name":"Compromise::Beaconing Activity To External Rare","priority":4},"triggeredComponents":[{"cid":1}],"device":{"ip":"10.0.0.%d"}}`, i, i%250))
		case 1:
			out = append(out, fmt.Sprintf(`{"id":"e2e-%d","aiaScore":88,"summariser":"BeaconSummary","createdAt":1700000000000,"category":"critical","title":"Possible beaconing %d"}`, i, i))
		case 2:
			out = append(out, fmt.Sprintf(`{"alert_name":"Probe Error %d","priority_level":"high","last_updated":1700000000,"status":"active"}`, i))
		default:
			out = append(out, fmt.Sprintf(`{"pbid":%d,"time":1700000000000,"score":1,"model":{"name":"Unrestricted Test Model"},"triggeredComponents":[]}`, i))
		}
	}
	return out
}

func sortedLines(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return ""
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestRunForwardsTCPAndUDPToStdoutByteForByte(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	cfg := writeFile(t, dir, "c.yaml", fmt.Sprintf(`
inputs:
  - {name: tcp, protocol: tcp, address: "127.0.0.1:%d"}
  - {name: udp, protocol: udp, address: "127.0.0.1:%d"}
outputs:
  - {name: out, type: file, path: "-"}
`, port, port))
	p := startRelay(t, "run", "-c", cfg)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c := dialWhenUp(t, "tcp", addr)
	payloads := alerts(200)
	var want []string
	w := bufio.NewWriter(c)
	for i, a := range payloads[:150] {
		switch i % 3 {
		case 0: // RFC 3164 as Darktrace sends it, LF-framed
			fmt.Fprintf(w, "<165>Aug  5 03:34:46 dt-master.example.com darktrace %s\n", a)
		case 1: // RFC 5424, octet-counted
			msg := "<165>1 2022-03-10T10:11:10+00:00 dt-master darktrace - - - " + a
			fmt.Fprintf(w, "%d %s", len(msg), msg)
		default: // bare JSON, CRLF
			fmt.Fprintf(w, "  %s \r\n", a)
		}
		want = append(want, a)
	}
	w.Flush()
	c.Close()
	u, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	lines := func() int { return strings.Count(p.stdout.String(), "\n") }
	waitFor(t, "150 TCP alerts on stdout", func() bool { return lines() >= 150 })
	for i, a := range payloads[150:] {
		fmt.Fprintf(u, "<165>Apr 01 14:39:18 dt-master darktrace %s", a)
		want = append(want, a)
		if n := 150 + i + 1; n%10 == 0 { // a few at a time: UDP has no flow control
			waitFor(t, fmt.Sprintf("%d alerts on stdout", n), func() bool { return lines() >= n })
		}
	}
	u.Close()
	waitFor(t, "200 alerts on stdout", func() bool { return strings.Count(p.stdout.String(), "\n") >= 200 })
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	if got, exp := sortedLines(p.stdout.String()), sortedLines(strings.Join(want, "\n")); got != exp {
		t.Fatalf("stdout is not the payloads byte for byte:\n got %.300q\nwant %.300q", got, exp)
	}
	if strings.Contains(p.stderr.String(), `"level":"error"`) {
		t.Fatalf("errors logged:\n%s", p.stderr.String())
	}
}

func TestRunTLSInputToFileAndMetrics(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := issueCert(t, dir)
	port, mport := freePort(t), freePort(t)
	outFile := filepath.Join(dir, "out.ndjson")
	cfg := writeFile(t, dir, "c.yaml", fmt.Sprintf(`
inputs:
  - name: dt-tls
    protocol: tls
    address: "127.0.0.1:%d"
    tls: {cert_file: %s, key_file: %s}
outputs:
  - {name: archive, type: file, path: %s}
metrics: {address: "127.0.0.1:%d"}
`, port, certFile, keyFile, outFile, mport))
	p := startRelay(t, "run", "-c", cfg)
	var c *tls.Conn
	waitFor(t, "TLS input", func() bool {
		var err error
		c, err = tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{RootCAs: pool, ServerName: "localhost"})
		return err == nil
	})
	payloads := alerts(100)
	for _, a := range payloads {
		msg := "<165>1 2022-03-10T10:11:10+00:00 dt-master darktrace - - - " + a
		fmt.Fprintf(c, "%d %s", len(msg), msg)
	}
	c.Close()
	waitFor(t, "100 alerts in the file", func() bool {
		b, _ := os.ReadFile(outFile)
		return bytes.Count(b, []byte("\n")) >= 100
	})
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", mport))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`dtrelay_input_alerts_total{input="dt-tls",kind="test"} 25`,
		`dtrelay_input_alerts_total{input="dt-tls",kind="model_breach"} 25`,
		`dtrelay_output_events_total{output="archive"} 100`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	b, _ := os.ReadFile(outFile)
	if got, exp := sortedLines(string(b)), sortedLines(strings.Join(payloads, "\n")); got != exp {
		t.Fatal("file output is not the payloads byte for byte")
	}
}

func TestEmbeddedDefault(t *testing.T) {
	for _, a := range []string{"127.0.0.1:1514", "127.0.0.1:9514"} {
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Skipf("%s is taken on this machine; the embedded default needs it", a)
		}
		l.Close()
	}
	p := startRelay(t, "run")
	c := dialWhenUp(t, "tcp", "127.0.0.1:1514")
	a := alerts(4)[3] // the test alert shows up at once
	fmt.Fprintf(c, "<165>Aug  5 03:34:46 dt-master darktrace %s\n", a)
	waitFor(t, "the test alert on stdout", func() bool { return p.stdout.String() == a+"\n" })
	resp, err := http.Get("http://127.0.0.1:9514/metrics")
	if err != nil {
		t.Fatalf("metrics on the default address: %v", err)
	}
	resp.Body.Close()
	c.Close()
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.yaml", `
inputs: [{name: in, protocol: tcp, address: "127.0.0.1:1514"}]
outputs: [{name: out, type: file, path: "-"}]
`)
	bad := writeFile(t, dir, "bad.yaml", `
inputs:
  - name: in
    protocol: tcp
    adress: "127.0.0.1:1514"
outputs: [{name: out, type: nope}]
`)
	run := func(args ...string) (int, string, string) {
		var o, e bytes.Buffer
		cmd := exec.Command(binPath, args...)
		cmd.Stdout, cmd.Stderr = &o, &e
		cmd.Run()
		return cmd.ProcessState.ExitCode(), o.String(), e.String()
	}
	if code, out, errs := run("check", "-c", good); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("good config: exit %d\n%s%s", code, out, errs)
	}
	code, _, errs := run("check", "-c", bad)
	if code != 1 {
		t.Fatalf("bad config: exit %d, want 1", code)
	}
	for _, want := range []string{"adress", ":5", "nope"} {
		if !strings.Contains(errs, want) {
			t.Errorf("check output lacks %q:\n%s", want, errs)
		}
	}
	// The version line names the Go toolchain: the standard library's
	// fixes (crypto/x509, net/http) come with it.
	if code, out, _ := run("version"); code != 0 || !strings.HasPrefix(out, "dtrelay ") ||
		!strings.Contains(out, runtime.Version()) {
		t.Fatalf("version: exit %d, %q, want the Go version %s", code, out, runtime.Version())
	}
}

// issueCert writes a certificate for localhost/127.0.0.1, signed by a
// throw-away CA, and returns its files and a pool that trusts it.
func issueCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	ca, err := pki.NewCA("e2e CA")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.Issue(pki.Server, pki.Loopback...)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := pki.WritePair(c, certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, ca.Pool
}
