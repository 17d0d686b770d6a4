package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/internal/pki"
)

// writePairFor writes a certificate named cn, valid from notBefore to
// notAfter, and its key (0600) into dir; it returns both paths.
func writePairFor(t *testing.T, ca *pki.CA, dir, cn string, notBefore, notAfter time.Time) (certFile, keyFile string) {
	t.Helper()
	c, err := ca.IssueFor(append(pki.Server, pki.Client...), notBefore, notAfter, cn)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, cn+".pem"), filepath.Join(dir, cn+"-key.pem")
	if err := pki.WritePair(c, certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// warningsOf parses doc, which must be valid, and returns its warnings as
// "LINE: KEY: msg".
func warningsOf(t *testing.T, doc string) []string {
	t.Helper()
	ps, ws := lines(t, doc)
	if len(ps) > 0 {
		t.Fatalf("problems:\n  %s\nin:\n%s", strings.Join(ps, "\n  "), doc)
	}
	return ws
}

func wantLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestKeyFileModeWarning: a private key readable (or writable) by group or
// others is warned about, on an input's tls.key_file and an output's
// client_key_file; a 0600 key is not.
func TestKeyFileModeWarning(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.NewCA("warn test CA")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cert, key := writePairFor(t, ca, dir, "relay", now.Add(-time.Hour), now.Add(60*24*time.Hour))
	doc := fmt.Sprintf(`inputs:
  - name: tls
    protocol: tls
    address: 127.0.0.1:6514
    tls: {cert_file: %q, key_file: %q}
outputs:
  - {name: h, type: http, url: "https://siem.example/in", client_cert_file: %q, client_key_file: %q}
`, cert, key, cert, key)
	for _, mode := range []os.FileMode{0o600, 0o400, 0o640, 0o604, 0o620, 0o644} {
		if err := os.Chmod(key, mode); err != nil {
			t.Fatal(err)
		}
		var want []string
		if mode&0o077 != 0 {
			msg := fmt.Sprintf("%q has mode %04o: the private key is open to group or others; "+
				"make it readable by the user dtrelay runs as only (chmod 600)", key, mode)
			want = []string{"5: inputs[0].tls.key_file: " + msg, "7: outputs[0].client_key_file: " + msg}
		}
		wantLines(t, fmt.Sprintf("warnings with key mode %04o", mode), warningsOf(t, doc), want)
	}
}

// TestCertExpiryWarning: an expired certificate, one expiring within 14
// days or one not valid yet is warned about wherever a certificate or CA
// file is named; one valid for longer is not.
func TestCertExpiryWarning(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.NewCA("warn test CA")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	day := 24 * time.Hour
	goodCert, goodKey := writePairFor(t, ca, dir, "good", now.Add(-time.Hour), now.Add(15*day))
	expCert, expKey := writePairFor(t, ca, dir, "expired", now.Add(-30*day), now.Add(-2*day))
	soonCert, soonKey := writePairFor(t, ca, dir, "soon", now.Add(-30*day), now.Add(3*day+time.Hour))
	todayCert, _ := writePairFor(t, ca, dir, "today", now.Add(-30*day), now.Add(time.Hour))
	lateCert, lateKey := writePairFor(t, ca, dir, "late", now.Add(day), now.Add(90*day))
	bundle := filepath.Join(dir, "bundle.pem")
	var pems []byte
	for _, f := range []string{goodCert, soonCert, todayCert} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pems = append(pems, b...)
	}
	if err := os.WriteFile(bundle, pems, 0o644); err != nil {
		t.Fatal(err)
	}
	date := func(d time.Duration) string { return formatTime(now.Add(d)) }

	f := func(doc string, want ...string) {
		t.Helper()
		wantLines(t, "warnings of\n"+doc, warningsOf(t, doc), want)
	}
	in := func(cert, key, clientCA string) string {
		s := fmt.Sprintf("inputs:\n  - name: tls\n    protocol: tls\n    address: 127.0.0.1:6514\n    tls: {cert_file: %q, key_file: %q", cert, key)
		if clientCA != "" {
			s += fmt.Sprintf(", client_ca_file: %q", clientCA)
		}
		return s + "}\noutputs:\n  - {name: out, type: file, path: \"-\"}\n"
	}
	f(in(goodCert, goodKey, goodCert))
	f(in(expCert, expKey, ""),
		`5: inputs[0].tls.cert_file: certificate "expired" expired on `+date(-2*day)+`: TLS handshakes with it fail; renew it`)
	f(in(soonCert, soonKey, expCert),
		`5: inputs[0].tls.cert_file: certificate "soon" expires on `+date(3*day+time.Hour)+`, in 3 days; renew it`,
		`5: inputs[0].tls.client_ca_file: certificate "expired" expired on `+date(-2*day)+`: TLS handshakes with it fail; renew it`)
	f(in(lateCert, lateKey, bundle),
		`5: inputs[0].tls.cert_file: certificate "late" is not valid before `+date(day),
		`5: inputs[0].tls.client_ca_file: certificate "today" expires on `+date(time.Hour)+`, in less than a day `+
			`(2 of the 3 certificates in the file expire within 14 days); renew it`)

	outs := fmt.Sprintf(`inputs: [{name: in, protocol: tcp, address: "127.0.0.1:1514"}]
outputs:
  - {name: h, type: http, url: "https://siem.example/in", client_cert_file: %q, client_key_file: %q, ca_file: %q}
  - {name: s, type: syslog, address: "intake.sekoia.io:10514", intake_key: 0123456789abcdef0123, ca_file: %q, client_cert_file: %q, client_key_file: %q}
  - {name: k, type: sekoia-http, intake_key: 0123456789abcdef0123, ca_file: %q}
`, expCert, expKey, soonCert, goodCert, soonCert, soonKey, expCert)
	f(outs,
		`3: outputs[0].ca_file: certificate "soon" expires on `+date(3*day+time.Hour)+`, in 3 days; renew it`,
		`3: outputs[0].client_cert_file: certificate "expired" expired on `+date(-2*day)+`: TLS handshakes with it fail; renew it`,
		`4: outputs[1].client_cert_file: certificate "soon" expires on `+date(3*day+time.Hour)+`, in 3 days; renew it`,
		`5: outputs[2].ca_file: certificate "expired" expired on `+date(-2*day)+`: TLS handshakes with it fail; renew it`)
}

// TestOutputFileSymlinkRefused: check refuses a symbolic link at a file
// output's path, as the output itself does, dangling or not.
func TestOutputFileSymlinkRefused(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target.ndjson")
	if err := os.WriteFile(target, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{target, filepath.Join(dir, "missing.ndjson")} {
		link := filepath.Join(dir, "link-"+filepath.Base(to))
		if err := os.Symlink(to, link); err != nil {
			t.Fatal(err)
		}
		ps, _ := lines(t, minimalDoc+fmt.Sprintf("  - {name: f, type: file, path: %q}\n", link))
		want := []string{fmt.Sprintf(`5: outputs[1].path: %q is a symbolic link, which dtrelay does not follow: name the file itself ("-" is standard output)`, link)}
		wantLines(t, "problems", ps, want)
	}
	if ws := warningsOf(t, minimalDoc+fmt.Sprintf("  - {name: f, type: file, path: %q}\n", target)); len(ws) != 0 {
		t.Errorf("warnings for a regular file: %v", ws)
	}
}
