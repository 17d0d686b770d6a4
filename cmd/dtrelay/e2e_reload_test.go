package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/internal/intaketest"
	"github.com/dtrelay/dtrelay/internal/pki"
)

// rotateCert writes a new server certificate for the loopback names,
// signed by a new CA called name, over dir's cert.pem and key.pem (written
// aside and renamed, as certificate tools do), and returns a pool trusting
// it.
func rotateCert(t *testing.T, dir, name string) *x509.CertPool {
	t.Helper()
	ca, err := pki.RotateServerPair(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	return ca.Pool
}

// streamer writes Darktrace lines on one connection, each in two writes
// with a pause between, so that a reload often lands inside a frame. It
// stops at stop, after at most max lines, or at a write error (a failure).
type streamer struct {
	c    net.Conn
	base int
	mu   sync.Mutex
	sent []string
	err  error
	stop chan struct{}
	done chan struct{}
}

func stream(c net.Conn, base, max int) *streamer {
	s := &streamer{c: c, base: base, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for i := range max {
			select {
			case <-s.stop:
				return
			default:
			}
			a := fmt.Sprintf(`{"pbid":%d,"time":1700000000000,"score":0.9,"model":{"name":"Reload::Stream"},"triggeredComponents":[]}`, base+i)
			line := "<165>Aug  5 03:34:46 dt-master darktrace " + a + "\n"
			cut := len(line) / 2
			if _, err := c.Write([]byte(line[:cut])); err != nil {
				s.fail(err)
				return
			}
			time.Sleep(time.Millisecond)
			if _, err := c.Write([]byte(line[cut:])); err != nil {
				s.fail(err)
				return
			}
			s.mu.Lock()
			s.sent = append(s.sent, a)
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *streamer) fail(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

func (s *streamer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sent)
}

// finish stops the streamer and returns what it sent.
func (s *streamer) finish(t *testing.T) []string {
	t.Helper()
	close(s.stop)
	<-s.done
	if s.err != nil {
		t.Fatalf("the sender noticed: %v", s.err)
	}
	return s.sent
}

func scrape(t *testing.T, port int) string {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// fileLines returns the lines of the files, together.
func fileLines(paths ...string) []string {
	var out []string
	for _, p := range paths {
		b, _ := os.ReadFile(p)
		for _, l := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
			if len(l) > 0 {
				out = append(out, string(l))
			}
		}
	}
	return out
}

// sameMultiset fails unless got holds each of want exactly once.
func sameMultiset(t *testing.T, what string, got, want []string) {
	t.Helper()
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	if slices.Equal(g, w) {
		return
	}
	seen := map[string]int{}
	for _, s := range g {
		seen[s]++
	}
	missing, dups := 0, 0
	for _, s := range w {
		switch seen[s] {
		case 0:
			missing++
		case 1:
		default:
			dups++
		}
		delete(seen, s)
	}
	t.Fatalf("%s: got %d events for %d sent: %d missing, %d duplicated, %d never sent", what, len(g), len(w), missing, dups, len(seen))
}

// TestReloadTenSIGHUPsOverOneConnection is issue 14's reload test: one TCP
// and one TLS connection stream alerts while dtrelay gets ten SIGHUPs,
// among them a certificate rotation, a syslog output moved to a second
// intake, a file output moved to a new path, routes changed, an input
// added and removed, and an invalid configuration (refused: nothing
// changes). Every alert arrives exactly once at each output; neither
// sender notices.
func TestReloadTenSIGHUPsOverOneConnection(t *testing.T) {
	dir := t.TempDir()
	pool := rotateCert(t, dir, "first CA")
	intakeA := intaketest.NewSyslog(t, intakeKey, false)
	intakeB := intaketest.NewSyslog(t, intakeKey, false)
	tcpPort, tlsPort, extraPort, mport := freePort(t), freePort(t), freePort(t), freePort(t)
	archive1, archive2 := filepath.Join(dir, "archive1.ndjson"), filepath.Join(dir, "archive2.ndjson")
	type step struct {
		intake, archive, routes, extra, batch string
		bad                                   bool
	}
	render := func(s step) string {
		if s.bad {
			return "inputs:\n  - name: tcp\n    protocol: tcp\n    adress: 127.0.0.1:1\noutputs: []\n"
		}
		return fmt.Sprintf(`
inputs:
  - {name: tcp, protocol: tcp, address: "127.0.0.1:%d"}
  - name: tls
    protocol: tls
    address: "127.0.0.1:%d"
    tls: {cert_file: %s, key_file: %s}
%s
outputs:
  - name: sys
    type: syslog
    address: %s
    tls: false
    format: sekoia
    intake_key: %s
    batch: {max_events: %s}
  - {name: archive, type: file, path: %s}
%s
metrics: {address: "127.0.0.1:%d"}
`, tcpPort, tlsPort, filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), s.extra,
			s.intake, intakeKey, s.batch, s.archive, s.routes, mport)
	}
	extra := fmt.Sprintf(`  - {name: extra, protocol: tcp, address: "127.0.0.1:%d"}`, extraPort)
	cur := step{intake: intakeA.Addr(), archive: archive1, batch: "1000"}
	cfg := writeFile(t, dir, "dtrelay.yaml", render(cur))
	p := startRelay(t, "run", "-c", cfg)

	plain := dialWhenUp(t, "tcp", fmt.Sprintf("127.0.0.1:%d", tcpPort))
	defer plain.Close()
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", tlsPort)
	var secure *tls.Conn
	waitFor(t, "the tls input", func() bool {
		var err error
		secure, err = tls.Dial("tcp", tlsAddr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		return err == nil
	})
	defer secure.Close()
	s1, s2 := stream(plain, 0, 200000), stream(secure, 1_000_000, 200000)
	var extraSent []string

	reloads := func() int { return strings.Count(p.stderr.String(), `"message":"configuration reloaded"`) }
	refusals := func() int {
		return strings.Count(p.stderr.String(), `"message":"reload failed; the running configuration stays"`)
	}
	hup := func(s step) {
		t.Helper()
		ok, bad := reloads(), refusals()
		if err := os.WriteFile(cfg, []byte(render(s)), 0o600); err != nil {
			t.Fatal(err)
		}
		// Both senders are mid-stream: wait until each has sent more.
		n1, n2 := s1.count(), s2.count()
		waitFor(t, "the senders streaming", func() bool { return s1.count() > n1+50 && s2.count() > n2+50 })
		p.cmd.Process.Signal(syscall.SIGHUP)
		if s.bad {
			waitFor(t, "the refusal", func() bool { return refusals() == bad+1 })
			return
		}
		waitFor(t, "the reload", func() bool { return reloads() == ok+1 })
		if refusals() != bad {
			t.Fatalf("reload refused:\n%s", p.stderr.String())
		}
	}
	issuer := func() string {
		c, err := tls.Dial("tcp", tlsAddr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Issuer.CommonName
	}

	// 1: nothing changed.
	hup(cur)
	// 2: certificate rotation; new handshakes see it, the old connection goes on.
	newPool := rotateCert(t, dir, "second CA")
	hup(cur)
	if got := issuer(); got != "second CA" {
		t.Fatalf("a new handshake after the rotation shows a certificate of %q", got)
	}
	if c, err := tls.Dial("tcp", tlsAddr, &tls.Config{RootCAs: newPool, ServerName: "127.0.0.1"}); err != nil {
		t.Fatalf("the new certificate does not verify: %v", err)
	} else {
		c.Close()
	}
	// 3: the syslog output moves to the second intake.
	cur.intake = intakeB.Addr()
	hup(cur)
	waitFor(t, "events at the second intake", func() bool { return intakeB.Count() > 0 })
	// 4: an invalid configuration changes nothing.
	before := scrape(t, mport)
	hup(step{bad: true})
	logged := p.stderr.String()
	if !regexp.MustCompile(`"problem":"[^"]*dtrelay.yaml:4: inputs\[0\]\.adress[^"]*","line":4`).MatchString(logged) {
		t.Fatalf("the refused configuration's problem is not logged with its line:\n%s", logged)
	}
	// 5: routes (everything still goes to both outputs).
	cur.routes = "routes:\n  - match: {kinds: [model_breach], min_priority: low}\n    outputs: [sys, archive]"
	hup(cur)
	// 6: the file output's path.
	cur.archive = archive2
	hup(cur)
	// 7: the syslog output's batching (a rebuild at the same intake).
	cur.batch = "50"
	hup(cur)
	// 8: an input is added; it takes a few alerts.
	cur.extra = extra
	hup(cur)
	ec := dialWhenUp(t, "tcp", fmt.Sprintf("127.0.0.1:%d", extraPort))
	for i := range 10 {
		a := fmt.Sprintf(`{"pbid":%d,"time":1700000000000,"score":0.9,"model":{"name":"Reload::Extra"},"triggeredComponents":[]}`, 5_000_000+i)
		fmt.Fprintf(ec, "<165>Aug  5 03:34:46 dt-master darktrace %s\n", a)
		extraSent = append(extraSent, a)
	}
	ec.Close()
	waitFor(t, "the added input's alerts", func() bool {
		return strings.Contains(strings.Join(fileLines(archive2), "\n"), extraSent[9])
	})
	// 9: and removed.
	cur.extra = ""
	hup(cur)
	if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", extraPort)); err == nil {
		c.Close()
		t.Fatal("the removed input still accepts connections")
	}
	// 10: nothing changed again.
	hup(cur)

	want := append(append(s1.finish(t), s2.finish(t)...), extraSent...)
	waitFor(t, "every alert at the intakes", func() bool { return intakeA.Count()+intakeB.Count() >= len(want) })
	waitFor(t, "every alert in the archives", func() bool { return len(fileLines(archive1, archive2)) >= len(want) })
	text := scrape(t, mport)
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	sameMultiset(t, "syslog intakes", append(asStrings(intakeA.Events()), asStrings(intakeB.Events())...), want)
	sameMultiset(t, "archives", fileLines(archive1, archive2), want)
	if len(fileLines(archive2)) == 0 || intakeB.Count() == 0 || intakeA.Count() == 0 {
		t.Fatal("an output change did not take effect")
	}
	for _, m := range []string{
		`dtrelay_config_reload_total{result="success"} 9`,
		`dtrelay_config_reload_total{result="error"} 1`,
		`dtrelay_input_connections{input="tcp"} 1`,
	} {
		if !strings.Contains(text, m) {
			t.Errorf("metrics lack %s", m)
		}
	}
	if !strings.Contains(before, `dtrelay_config_reload_total{result="error"} 0`) {
		t.Error("the error counter was not 0 before the bad configuration")
	}
	t.Logf("%d alerts over one TCP and one TLS connection across 10 SIGHUPs; %d at the first intake, %d at the second; %d, %d in the archives",
		len(want), intakeA.Count(), intakeB.Count(), len(fileLines(archive1)), len(fileLines(archive2)))
}

// TestReloadReopensTheFileOutput is logrotate's postrotate: the file is
// renamed, SIGHUP, and what comes next goes to a new file at the path.
func TestReloadReopensTheFileOutput(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	out := filepath.Join(dir, "out.ndjson")
	cfg := writeFile(t, dir, "c.yaml", fmt.Sprintf(`
inputs: [{name: tcp, protocol: tcp, address: "127.0.0.1:%d"}]
outputs: [{name: archive, type: file, path: %s}]
`, port, out))
	p := startRelay(t, "run", "-c", cfg)
	c := dialWhenUp(t, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
	defer c.Close()
	first, second := alerts(200)[:100], alerts(200)[100:]
	writeLines(t, c, first)
	waitFor(t, "the first alerts", func() bool { return len(fileLines(out)) == 100 })
	rotated := out + ".1"
	if err := os.Rename(out, rotated); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the reload", func() bool { return strings.Contains(p.stderr.String(), `"message":"configuration reloaded"`) })
	writeLines(t, c, second)
	waitFor(t, "the next alerts in a new file", func() bool { return len(fileLines(out)) == 100 })
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	sameMultiset(t, "the rotated file", fileLines(rotated), first)
	sameMultiset(t, "the new file", fileLines(out), second)
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o007 != 0 {
		t.Errorf("the new file's mode is %v", fi.Mode().Perm())
	}
}
