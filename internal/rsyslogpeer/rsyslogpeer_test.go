package rsyslogpeer

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/internal/pki"
)

// testTLS writes a CA and a certificate for localhost/127.0.0.1 (server
// and client use) under dir.
func testTLS(t *testing.T, dir string) (*TLS, *x509.CertPool) {
	t.Helper()
	ca, err := pki.NewCA("rsyslogpeer CA")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.Issue([]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, pki.Loopback...)
	if err != nil {
		t.Fatal(err)
	}
	f := &TLS{CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}
	if err := os.WriteFile(f.CAFile, ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := pki.WritePair(c, f.CertFile, f.KeyFile); err != nil {
		t.Fatal(err)
	}
	return f, ca.Pool
}

// waitAll waits until s's file has every line of want (duplicates
// allowed), at most 20 s, and returns the missing ones.
func waitAll(t *testing.T, s *Server, want []string) (missing []string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		missing = missing[:0]
		got, err := s.Lines()
		if err != nil {
			t.Fatal(err)
		}
		seen := make(map[string]bool, len(got))
		for _, l := range got {
			seen[l] = true
		}
		for _, w := range want {
			if !seen[w] {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			return missing
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitCount waits until s's file has n lines, at most 20 s.
func waitCount(t *testing.T, s *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for s.Count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages in %s after 20s", s.Count(), n, s.File())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// relpConn is the smallest RELP client: one transaction at a time.
type relpConn struct {
	c    net.Conn
	r    *bufio.Reader
	txnr int
}

// call sends one command and returns the status line and the rest of the
// response's data.
func (rc *relpConn) call(t *testing.T, cmd, data string) string {
	t.Helper()
	rc.txnr++
	frame := fmt.Sprintf("%d %s %d", rc.txnr, cmd, len(data))
	if data != "" {
		frame += " " + data
	}
	if _, err := io.WriteString(rc.c, frame+"\n"); err != nil {
		t.Fatalf("send %s: %v", cmd, err)
	}
	rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	txnr, rsp, body, err := readFrame(rc.r)
	if err != nil {
		t.Fatalf("response to %s: %v", cmd, err)
	}
	if txnr != rc.txnr || rsp != "rsp" {
		t.Fatalf("response to txnr %d %s: got txnr %d %q %q", rc.txnr, cmd, txnr, rsp, body)
	}
	return body
}

// readFrame reads "TXNR SP COMMAND SP DATALEN [SP DATA] LF".
func readFrame(r *bufio.Reader) (txnr int, cmd, data string, err error) {
	head, err := r.ReadString(' ')
	if err != nil {
		return 0, "", "", err
	}
	if txnr, err = strconv.Atoi(strings.TrimSuffix(head, " ")); err != nil {
		return 0, "", "", fmt.Errorf("bad txnr %q", head)
	}
	if cmd, err = r.ReadString(' '); err != nil {
		return 0, "", "", err
	}
	cmd = strings.TrimSuffix(cmd, " ")
	var n int
	for {
		b, err := r.ReadByte()
		if err != nil {
			return 0, "", "", err
		}
		if b == ' ' || b == '\n' {
			if b == '\n' {
				return txnr, cmd, "", nil
			}
			break
		}
		if b < '0' || b > '9' {
			return 0, "", "", fmt.Errorf("bad datalen byte %q", b)
		}
		n = n*10 + int(b-'0')
	}
	buf := make([]byte, n+1)
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, "", "", err
	}
	if buf[n] != '\n' {
		return 0, "", "", fmt.Errorf("frame not ended by LF: %q", buf[n])
	}
	return txnr, cmd, string(buf[:n]), nil
}

// TestImrelpAcknowledgesAndWrites speaks RELP to imrelp with Go's own
// client (crypto/tls, as dtrelay does): open, syslog, close, each answered
// with 200; every message's MSG is in the file, byte for byte.
func TestImrelpAcknowledgesAndWrites(t *testing.T) {
	for _, withTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "tls"}[withTLS], func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{Dir: dir}
			var pool *x509.CertPool
			if withTLS {
				cfg.TLS, pool = testTLS(t, dir)
			}
			s := Start(t, cfg)
			var c net.Conn
			c, err := net.Dial("tcp", s.Addr())
			if err != nil {
				t.Fatal(err)
			}
			if withTLS {
				tc := tls.Client(c, &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12})
				if err := tc.Handshake(); err != nil {
					t.Fatalf("TLS handshake with imrelp: %v", err)
				}
				c = tc
			}
			defer c.Close()
			rc := &relpConn{c: c, r: bufio.NewReader(c)}
			if got := rc.call(t, "open", "relp_version=0\nrelp_software=rsyslogpeer-test\ncommands=syslog"); !strings.HasPrefix(got, "200 OK") ||
				!strings.Contains(got, "commands=syslog") {
				t.Fatalf("open answered %q", got)
			}
			var want []string
			for i := range 200 {
				msg := fmt.Sprintf(`{"seq":%d,"pad":"%s"}`, i, strings.Repeat("x", i*7))
				want = append(want, msg)
				line := "<165>1 2024-05-01T10:00:00Z dt-master darktrace - LOG [SEKOIA@53288 intake_key=\"k\"] " + msg
				if got := rc.call(t, "syslog", line); got != "200 OK" {
					t.Fatalf("syslog %d answered %q", i, got)
				}
			}
			// librelp answers close with an empty rsp.
			if got := rc.call(t, "close", ""); got != "" && !strings.HasPrefix(got, "200") {
				t.Fatalf("close answered %q", got)
			}
			waitCount(t, s, len(want))
			got, err := s.Lines()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("file is not the MSG parts in order:\n got %.300q\nwant %.300q", got, want)
			}
		})
	}
}

// TestOmrelpToImrelpAcrossRestarts: a second rsyslogd (imptcp in, omrelp
// out, plain or TLS) forwards to the imrelp Server, which is stopped with
// SIGTERM and with SIGKILL and started again on the same port between
// batches: each batch arrives, appended to the same file.
func TestOmrelpToImrelpAcrossRestarts(t *testing.T) {
	for _, withTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "tls"}[withTLS], func(t *testing.T) {
			dir := t.TempDir()
			scfg := Config{Dir: filepath.Join(dir, "server"), Raw: true}
			os.Mkdir(scfg.Dir, 0o755)
			fwd := &Forward{Type: "omrelp"}
			if withTLS {
				var files *TLS
				files, _ = testTLS(t, dir)
				scfg.TLS = files
				fwd.TLS = &TLS{CAFile: files.CAFile, PeerName: "localhost"}
			}
			server := Start(t, scfg)
			fwd.Addr = server.Addr()
			relay := Start(t, Config{Dir: filepath.Join(dir, "relay"), Input: InputPTCP, Raw: true, Forward: fwd})
			c, err := net.Dial("tcp", relay.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var want []string
			send := func(n int) {
				var b strings.Builder
				for range n {
					line := fmt.Sprintf(`<165>Aug  5 03:34:46 dt-master darktrace {"seq":%d}`, len(want))
					want = append(want, line)
					b.WriteString(line + "\n")
				}
				if _, err := io.WriteString(c, b.String()); err != nil {
					t.Fatal(err)
				}
			}
			send(1000)
			if m := waitAll(t, server, want); len(m) > 0 {
				t.Fatalf("%d of %d lines missing, first %q", len(m), len(want), m[0])
			}
			for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
				server.StopT(t, sig)
				send(500) // queued by omrelp while the server is down
				server.StartT(t)
				// omrelp may resend across a kill: duplicates are allowed.
				if m := waitAll(t, server, want); len(m) > 0 {
					t.Fatalf("after %v and restart: %d of %d lines missing, first %q", sig, len(m), len(want), m[0])
				}
			}
			if withTLS && !strings.Contains(server.Config(), `tls="on"`) {
				t.Fatal("TLS server config has no tls=on")
			}
		})
	}
}
