//go:build linux

package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The packaging files (deploy/), as the .deb and .rpm install them: the
// configuration at /etc/dtrelay/dtrelay.yaml with its state under
// /var/lib/dtrelay, the unit, the sysusers.d line. deploy/ci-install-test.sh
// checks the installed package itself, as root.
const deployDir = "../../deploy"

// packagedConfig returns deploy/dtrelay.yaml with /var/lib/dtrelay moved to
// state and, with uncomment, every commented-out output and allow line
// switched on.
func packagedConfig(t *testing.T, state string, uncomment bool) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, "dtrelay.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), "/var/lib/dtrelay", state)
	if uncomment {
		s = regexp.MustCompile(`(?m)^  # (- |  )`).ReplaceAllString(s, "  $1")
		s = regexp.MustCompile(`(?m)^    # allow:`).ReplaceAllString(s, "    allow:")
	}
	return s
}

func runCheckCmd(t *testing.T, cfg string, env ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binPath, "check", "-c", cfg)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil && cmd.ProcessState == nil {
		t.Fatal(err)
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

// TestPackagedConfigChecks: the shipped default passes dtrelay check as it
// is, and so does every example it carries commented out once switched on.
func TestPackagedConfigChecks(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "dtrelay.yaml", packagedConfig(t, dir, false))
	out, code := runCheckCmd(t, cfg)
	if code != 0 || strings.Contains(out, "warning") {
		t.Fatalf("dtrelay check on the packaged configuration: exit %d\n%s", code, out)
	}
	for _, want := range []string{"darktrace: tcp on 0.0.0.0:1514", "darktrace-udp: udp on 0.0.0.0:1514",
		"archive: file " + dir + "/alerts.ndjson", "spool: " + dir + "/spool", "metrics: http://127.0.0.1:9514/metrics"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}

	all := writeFile(t, dir, "all.yaml", packagedConfig(t, dir, true))
	out, code = runCheckCmd(t, all, "SEKOIA_INTAKE_KEY=0123456789abcdef0123456789abcdef")
	if code != 0 {
		t.Fatalf("dtrelay check with the examples switched on: exit %d\n%s", code, out)
	}
	for _, want := range []string{"sekoia: sekoia-http to https://intake.sekoia.io",
		"sekoia-relp: relp to relp.intake.sekoia.io:11514 over TLS", "insightidr: syslog to ",
		"allow 10.0.0.0/8"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary with the examples lacks %q:\n%s", want, out)
		}
	}
}

// TestPackagedConfigRelays runs the packaged default (on free loopback
// ports): an alert sent over TCP lands in the file output under the state
// directory, byte for byte.
func TestPackagedConfigRelays(t *testing.T) {
	dir := t.TempDir()
	port, mport := freePort(t), freePort(t)
	s := packagedConfig(t, dir, false)
	s = strings.ReplaceAll(s, "0.0.0.0:1514", "127.0.0.1:"+strconv.Itoa(port))
	s = strings.ReplaceAll(s, "127.0.0.1:9514", "127.0.0.1:"+strconv.Itoa(mport))
	p := startRelay(t, "run", "-c", writeFile(t, dir, "dtrelay.yaml", s))
	c := dialWhenUp(t, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	alert := `{"pbid":7,"time":1700000000000,"score":1,"model":{"name":"Unrestricted Test Model"}}`
	fmt.Fprintf(c, "<165>1 2024-01-01T00:00:00Z dt-master darktrace - - - %s\n", alert)
	c.Close()
	out := filepath.Join(dir, "alerts.ndjson")
	waitFor(t, "the alert in "+out, func() bool {
		b, _ := os.ReadFile(out)
		return string(b) == alert+"\n"
	})
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
}

// TestSysusersLineMatchesPreinstall: the package's preinstall script
// creates the user before its files are unpacked, from a copy of the
// sysusers.d line; the two must not drift apart.
func TestSysusersLineMatchesPreinstall(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "dtrelay.sysusers"))
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			line = l
		}
	}
	if !strings.HasPrefix(line, "u dtrelay ") {
		t.Fatalf("deploy/dtrelay.sysusers has no dtrelay user line: %q", b)
	}
	pre, err := os.ReadFile(filepath.Join(deployDir, "scripts", "preinstall.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(pre), "SYSUSERS='"+line+"'") {
		t.Fatalf("deploy/scripts/preinstall.sh does not create the user of deploy/dtrelay.sysusers (%q)", line)
	}
}

// TestUnitVerifiesAndScores: systemd-analyze verify has nothing to say
// about deploy/dtrelay.service (with /usr/bin/dtrelay standing for the
// binary under test) and its exposure is at most 2.0.
func TestUnitVerifiesAndScores(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("no systemd-analyze here (Debian: apt-get install systemd); deploy/ci-install-test.sh checks the unit")
	}
	unit, err := os.ReadFile(filepath.Join(deployDir, "dtrelay.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Type=notify", "ExecStartPre=/usr/bin/dtrelay check -c /etc/dtrelay/dtrelay.yaml",
		"ExecStart=/usr/bin/dtrelay run -c /etc/dtrelay/dtrelay.yaml", "ExecReload=/bin/kill -HUP $MAINPID",
		"User=dtrelay", "StateDirectory=dtrelay", "WatchdogSec="} {
		if !strings.Contains(string(unit), "\n"+want) {
			t.Errorf("the unit lacks %q", want)
		}
	}
	dir := t.TempDir()
	path := writeFile(t, dir, "dtrelay.service", strings.ReplaceAll(string(unit), "/usr/bin/dtrelay", binPath))
	out, err := exec.Command(sa, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, _ = exec.Command(sa, "security", "--offline=true", path).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for dtrelay.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil || score > 2.0 {
		t.Fatalf("exposure %s, want at most 2.0:\n%s", m[1], out)
	}
	t.Logf("exposure %.1f", score)
}
