package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/config"
	"github.com/dtrelay/dtrelay/internal/logtest"
	"github.com/dtrelay/dtrelay/internal/pki"
)

// reloadFixture is an in-process relay started from a file, which the test
// rewrites and reloads.
type reloadFixture struct {
	t    *testing.T
	dir  string
	path string
	r    *Relay
	logs *logtest.Buffer
}

func newReloadFixture(t *testing.T, yaml string) *reloadFixture {
	t.Helper()
	f := &reloadFixture{t: t, dir: t.TempDir(), logs: &logtest.Buffer{}}
	f.path = filepath.Join(f.dir, "dtrelay.yaml")
	f.write(yaml)
	cfg, _, err := config.Load(f.path)
	if err != nil {
		t.Fatal(err)
	}
	f.r, err = Start(cfg, metrics.NewSet(), zerolog.New(f.logs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		f.r.Stop(ctx)
		if t.Failed() {
			t.Logf("logs:\n%s", f.logs.String())
		}
	})
	return f
}

func (f *reloadFixture) write(yaml string) {
	f.t.Helper()
	if err := os.WriteFile(f.path, []byte(yaml), 0o600); err != nil {
		f.t.Fatal(err)
	}
}

func (f *reloadFixture) reload(yaml string) error {
	f.write(yaml)
	return f.r.Reload(func() (*config.Config, []config.Warning, error) { return config.Load(f.path) })
}

// issuePair writes a server certificate for the loopback names from a new
// CA to cert.pem and key.pem in dir (replacing them) and returns the CA.
func issuePair(t *testing.T, dir, name string) *pki.CA {
	t.Helper()
	ca, err := pki.RotateServerPair(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// issuerOf returns the common name of the issuer of the certificate a new
// TLS handshake with addr shows.
func issuerOf(t *testing.T, addr string) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Issuer.CommonName
}

func addrStrings(as []net.Addr) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

func frame(i int) string {
	return fmt.Sprintf("<165>Aug  5 03:34:46 dt darktrace %s\n", payload(i, 300))
}

// TestReloadAppliesWhatChangedOnly: an unchanged input keeps a connection
// that is in the middle of a frame, a tls input's old connection goes on
// while new handshakes see the new certificate, a file output moves to its
// new path with nothing lost or doubled, a new input starts, a removed one
// stops.
func TestReloadAppliesWhatChangedOnly(t *testing.T) {
	dir := t.TempDir()
	oldCA := issuePair(t, dir, "old CA")
	out1, out2 := filepath.Join(dir, "out1.ndjson"), filepath.Join(dir, "out2.ndjson")
	conf := func(out, extra string) string {
		return fmt.Sprintf(`
inputs:
  - {name: plain, protocol: tcp, address: "127.0.0.1:0"}
  - {name: sec, protocol: tls, address: "127.0.0.1:0", tls: {cert_file: %q, key_file: %q}}
%s
outputs: [{name: out, type: file, path: %q}]
`, filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), extra, out)
	}
	f := newReloadFixture(t, conf(out1, `  - {name: gone, protocol: udp, address: "127.0.0.1:0"}`))
	before := addrStrings(f.r.Addrs())
	plain, err := net.Dial("tcp", before[0])
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	sec, err := tls.Dial("tcp", before[1], &tls.Config{RootCAs: oldCA.Pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer sec.Close()
	var want []string
	send := func(c net.Conn, i int) {
		if _, err := c.Write([]byte(frame(i))); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		want = append(want, payload(i, 300))
	}
	for i := range 50 {
		send(plain, i)
		send(sec, 1000+i)
	}
	waitLines(t, out1, 100)
	half := frame(50)
	if _, err := plain.Write([]byte(half[:len(half)/2])); err != nil {
		t.Fatal(err)
	}
	newCA := issuePair(t, dir, "new CA")
	if err := f.reload(conf(out2, `  - {name: added, protocol: tcp, address: "127.0.0.1:0"}`)); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if _, err := plain.Write([]byte(half[len(half)/2:])); err != nil {
		t.Fatal(err)
	}
	want = append(want, payload(50, 300))
	after := addrStrings(f.r.Addrs())
	if len(after) != 3 || after[0] != before[0] || after[1] != before[1] {
		t.Fatalf("inputs after the reload %v, before %v: the unchanged ones must keep their listeners", after, before)
	}
	for i := 51; i < 100; i++ {
		send(plain, i)
		send(sec, 1000+i)
	}
	added, err := net.Dial("tcp", after[2])
	if err != nil {
		t.Fatal(err)
	}
	send(added, 5000)
	added.Close()
	if got := issuerOf(t, after[1]); got != "new CA" {
		t.Errorf("a new handshake shows a certificate of %q, want the new CA's", got)
	}
	if _, err := tls.Dial("tcp", after[1], &tls.Config{RootCAs: newCA.Pool, ServerName: "127.0.0.1"}); err != nil {
		t.Errorf("the new certificate does not verify: %v", err)
	}
	if _, err := net.ListenPacket("udp", before[2]); err != nil {
		t.Errorf("the removed udp input still holds %s: %v", before[2], err)
	}
	waitLines(t, out2, len(want)-100)
	got := append(waitLines(t, out1, 100), waitLines(t, out2, len(want)-100)...)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%d events in the two files, want each of the %d sent once", len(got), len(want))
	}
	text := promText(f.r)
	for _, m := range []string{`dtrelay_config_reload_total{result="success"} 1`, `dtrelay_config_reload_total{result="error"} 0`} {
		if !strings.Contains(text, m) {
			t.Errorf("metrics lack %s", m)
		}
	}
	if !strings.Contains(text, "dtrelay_config_last_reload_success_timestamp_seconds ") {
		t.Error("no dtrelay_config_last_reload_success_timestamp_seconds")
	}
}

// TestReloadRefusals: an invalid configuration, and changes that need a
// restart, are refused whole: logged (with the line), counted, and the
// relay goes on as it was.
func TestReloadRefusals(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.ndjson")
	good := fmt.Sprintf(`
inputs:
  - {name: in, protocol: tcp, address: "127.0.0.1:0"}
outputs:
  - {name: out, type: file, path: %q}
`, out)
	f := newReloadFixture(t, good)
	before := addrStrings(f.r.Addrs())
	c, err := net.Dial("tcp", before[0])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sent := 0
	check := func(what string, yaml string, want string) {
		t.Helper()
		err := f.reload(yaml)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: reload returned %v, want an error with %q", what, err, want)
		}
		if got := addrStrings(f.r.Addrs()); !slices.Equal(got, before) {
			t.Fatalf("%s: inputs %v, were %v", what, got, before)
		}
		if _, err := c.Write([]byte(frame(sent))); err != nil {
			t.Fatalf("%s: the connection broke: %v", what, err)
		}
		sent++
		waitLines(t, out, sent)
	}
	check("an unknown key", strings.Replace(good, "outputs:", "  - {name: x, protocol: tcp, adress: \"127.0.0.1:0\"}\noutputs:", 1), "dtrelay.yaml:4: inputs[1].adress")
	check("a bad value", strings.Replace(good, "protocol: tcp", "protocol: tcpp", 1), "dtrelay.yaml:3: inputs[0].protocol")
	check("an output added", good+fmt.Sprintf("  - {name: two, type: file, path: %q}\n", out+"2"), "needs a restart: outputs added")
	check("a spool", good+fmt.Sprintf("spool: {dir: %q}\n", filepath.Join(dir, "spool")), "needs a restart: the spool")
	var re *RestartError
	if err := f.reload(good + "metrics: {address: \"127.0.0.1:0\"}\n"); !errors.As(err, &re) {
		t.Fatalf("a metrics listener added: %v, want a RestartError", err)
	}
	problems := f.logs.Lines("reload refused: invalid configuration")
	if len(problems) == 0 || !strings.Contains(problems[0], `"line":`) {
		t.Fatalf("the problems are not logged with their line: %q", problems)
	}
	if n := len(f.logs.Lines("needs a restart")); n < 3 {
		t.Errorf("%d log lines say needs a restart, want 3", n)
	}
	if text := promText(f.r); !strings.Contains(text, `dtrelay_config_reload_total{result="error"} 5`) ||
		!strings.Contains(text, `dtrelay_config_reload_total{result="success"} 0`) {
		t.Errorf("reload counters wrong:\n%s", grepLines(text, "reload"))
	}
	// The relay's configuration is still the first.
	if err := f.reload(good); err != nil {
		t.Fatalf("reloading the running configuration: %v", err)
	}
}

// TestReloadRestartsAChangedInput: a changed input stops (what it read is
// delivered) and starts with its new settings.
func TestReloadRestartsAChangedInput(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.ndjson")
	port := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}()
	conf := func(size string) string {
		return fmt.Sprintf(`
inputs: [{name: in, protocol: tcp, address: "127.0.0.1:%d", max_message_size: %s}]
outputs: [{name: out, type: file, path: %q}]
`, port, size, out)
	}
	f := newReloadFixture(t, conf("64KiB"))
	c, err := net.Dial("tcp", f.r.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		fmt.Fprint(c, frame(i))
	}
	waitLines(t, out, 20)
	if err := f.reload(conf("128KiB")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the changed input's connection is still open")
	}
	c2, err := net.Dial("tcp", f.r.Addrs()[0].String())
	if err != nil {
		t.Fatalf("the changed input does not listen again: %v", err)
	}
	defer c2.Close()
	fmt.Fprint(c2, frame(20))
	if lines := waitLines(t, out, 21); len(lines) != 21 {
		t.Fatalf("%d lines, want 21", len(lines))
	}
}
