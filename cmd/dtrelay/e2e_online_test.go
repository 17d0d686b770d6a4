package main

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/internal/intaketest"
	"github.com/dtrelay/dtrelay/internal/pki"
)

// checkAPI is a Darktrace API double for `dtrelay check --online`: HTTPS
// with its own CA, it checks the token, the DTAPI-Date against its own
// clock (offset from the host's by skew, and sent in its Date header) and
// the signature, recomputed here independently of poller.Sign, and answers
// as Darktrace does: 400 "API DATE ERROR" / "API SIGNATURE ERROR", a 302
// to /login for a path in denied (a token without that permission), else
// an empty JSON array.
type checkAPI struct {
	srv             *httptest.Server
	caFile          string
	public, private string
	skew            time.Duration
	denied          string
	requests        atomic.Int64
}

func newCheckAPI(t *testing.T, public, private string) *checkAPI {
	t.Helper()
	ca, err := pki.NewCA("darktrace double CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue(pki.Server, pki.Loopback...)
	if err != nil {
		t.Fatal(err)
	}
	a := &checkAPI{public: public, private: private}
	a.caFile = writeFile(t, t.TempDir(), "dt-ca.pem", string(ca.PEM))
	a.srv = httptest.NewUnstartedServer(http.HandlerFunc(a.serve))
	a.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	a.srv.Config.ErrorLog = nil
	a.srv.StartTLS()
	t.Cleanup(a.srv.Close)
	return a
}

func (a *checkAPI) serve(w http.ResponseWriter, r *http.Request) {
	a.requests.Add(1)
	now := time.Now().Add(a.skew)
	w.Header().Set("Date", now.UTC().Format(http.TimeFormat))
	if r.Header.Get("DTAPI-Token") != a.public {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	date := r.Header.Get("DTAPI-Date")
	if d, err := time.Parse("20060102T150405", date); err != nil || now.Sub(d).Abs() > 5*time.Minute {
		http.Error(w, `{"error":"API DATE ERROR"}`, http.StatusBadRequest)
		return
	}
	mac := hmac.New(sha1.New, []byte(a.private))
	fmt.Fprintf(mac, "%s?%s\n%s\n%s", r.URL.EscapedPath(), r.URL.RawQuery, a.public, date)
	if r.Header.Get("DTAPI-Signature") != hex.EncodeToString(mac.Sum(nil)) {
		http.Error(w, `{"error":"API SIGNATURE ERROR"}`, http.StatusBadRequest)
		return
	}
	if r.URL.Path == a.denied || (r.URL.Path != "/modelbreaches" && r.URL.Path != "/aianalyst/incidentevents") {
		http.Redirect(w, r, "/login", http.StatusFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, "[]")
}

const (
	onlinePublic  = "online-pub-7a1c3e5b"
	onlinePrivate = "online-priv-2d4f6b8a0c9e"
	onlineKey     = "online-intake-key-5f3a9c1e7b"
)

// TestCheckOnline runs `dtrelay check --online` on a configuration with
// one darktrace-api input per outcome and outputs reachable, refused and
// untrusted: one line each, the right verdict, exit 1, and neither token
// nor intake key in what it prints. The same checks all passing exit 0;
// `dtrelay check` without --online reaches nothing.
func TestCheckOnline(t *testing.T) {
	dir := t.TempDir()
	good := newCheckAPI(t, onlinePublic, onlinePrivate)
	skewed := newCheckAPI(t, onlinePublic, onlinePrivate)
	skewed.skew = -10 * time.Minute // Darktrace's clock 10 min behind: this host is ahead
	denied := newCheckAPI(t, onlinePublic, onlinePrivate)
	denied.denied = "/aianalyst/incidentevents"
	relp := intaketest.NewRELP(t, intaketest.SyslogOptions{Key: onlineKey, TLS: true})
	syslogTLS := intaketest.NewSyslog(t, onlineKey, true)
	sekoia := intaketest.NewSekoiaHTTP(t, onlineKey)
	sekoia.AllowProblems() // the mock takes the probe's GET for a client's mistake
	refused := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	out := filepath.Join(dir, "out.ndjson")

	input := func(name string, a *checkAPI, private, ca string) string {
		caKey := ""
		if ca != "" {
			caKey = ", ca_file: " + ca
		}
		return fmt.Sprintf("  - {name: %s, protocol: darktrace-api, url: %q, public_token: %s, private_token: %s, state_dir: %s%s}\n",
			name, a.srv.URL, onlinePublic, private, filepath.Join(dir, "state"), caKey)
	}
	passing := input("dt-good", good, onlinePrivate, good.caFile)
	passingOut := fmt.Sprintf(`  - {name: relp-ok, type: relp, address: %q, format: sekoia, intake_key: %s, ca_file: %s}
  - {name: sekoia-ok, type: sekoia-http, url: %q, intake_key: %s, ca_file: %s}
  - {name: file-ok, type: file, path: %s}
`, relp.Addr(), onlineKey, relp.CAFile(), sekoia.URL(), onlineKey, sekoia.CAFile(), out)
	routes := "routes: [{outputs: [relp-ok, sekoia-ok, file-ok]}]\n"
	cfgAll := writeFile(t, dir, "all.yaml", "inputs:\n"+passing+
		input("dt-badsig", good, "wrong-"+onlinePrivate, good.caFile)+
		input("dt-clock", skewed, onlinePrivate, skewed.caFile)+
		input("dt-denied", denied, onlinePrivate, denied.caFile)+
		input("dt-untrusted", good, onlinePrivate, "")+
		"outputs:\n"+passingOut+
		fmt.Sprintf("  - {name: syslog-refused, type: syslog, address: %q, tls: false, format: sekoia, intake_key: %s}\n", refused, onlineKey)+
		fmt.Sprintf("  - {name: syslog-untrusted, type: syslog, address: %q, format: sekoia, intake_key: %s}\n", syslogTLS.Addr(), onlineKey)+
		routes)

	before := good.requests.Load()
	if code, stdout, stderr := runCmd(t, "check", "-c", cfgAll); code != 0 || strings.Contains(stdout, "online") {
		t.Fatalf("offline check: exit %d\n%s%s", code, stdout, stderr)
	}
	if n := good.requests.Load() - before; n != 0 || relp.Opens() != 0 {
		t.Fatalf("the offline check made %d API requests and %d RELP opens", n, relp.Opens())
	}

	code, stdout, stderr := runCmd(t, "check", "--online", "-c", cfgAll)
	t.Logf("dtrelay check --online:\n%s%s", stdout, stderr)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	want := map[string][]string{
		"input dt-good (darktrace-api): ok: /modelbreaches and /aianalyst/incidentevents answered":                       {"clock skew under 1s"},
		"input dt-badsig (darktrace-api): FAIL: signature error on /modelbreaches":                                       {"private_token"},
		"input dt-clock (darktrace-api): FAIL: date error (clock skew 10m0s: this host's clock is ahead of Darktrace's)": {"NTP"},
		"input dt-denied (darktrace-api): FAIL: permission redirect":                                                     {"/aianalyst/incidentevents"},
		"input dt-untrusted (darktrace-api): FAIL: TLS trust error":                                                      {"ca_file"},
		"output relp-ok (relp): ok: TCP connect, TLS 1.3 handshake, RELP open and close":                                 nil,
		"output sekoia-ok (sekoia-http): ok: TCP connect, TLS 1.3 handshake, HTTP 405":                                   {"key is not tested"},
		"output file-ok (file): ok":                               nil,
		"output syslog-refused (syslog): FAIL":                    {"refused"},
		"output syslog-untrusted (syslog): FAIL: TLS trust error": {"ca_file"},
	}
	lines := strings.Split(stdout, "\n")
	for prefix, words := range want {
		found := false
		for _, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), prefix) {
				found = true
				for _, w := range words {
					if !strings.Contains(l, w) {
						t.Errorf("line %q lacks %q", l, w)
					}
				}
			}
		}
		if !found {
			t.Errorf("no line starting %q", prefix)
		}
	}
	if !strings.Contains(stdout, "6 of 10 online check(s) failed") {
		t.Errorf("no count of failures")
	}
	for _, s := range []string{onlinePublic, onlinePrivate, onlineKey} {
		if strings.Contains(stdout+stderr, s) {
			t.Errorf("the output shows the secret %q", s)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("the check created the file output's file: %v", err)
	}
	if n := len(relp.Txnrs()) + len(syslogTLS.Lines()) + sekoia.Count(); n != 0 {
		t.Errorf("the check sent %d events", n)
	}

	cfgPass := writeFile(t, dir, "pass.yaml", "inputs:\n"+passing+"outputs:\n"+passingOut+routes)
	code, stdout, stderr = runCmd(t, "check", "--online", "-c", cfgPass)
	if code != 0 || !strings.Contains(stdout, "every online check passed") {
		t.Errorf("all reachable: exit %d, want 0\n%s%s", code, stdout, stderr)
	}
}
