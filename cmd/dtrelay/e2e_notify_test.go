//go:build linux

package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// notifySocket is a stand-in for systemd's notification socket: what the
// relay sends to $NOTIFY_SOCKET, one state per datagram.
type notifySocket struct {
	path string
	conn *net.UnixConn
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &notifySocket{path: path, conn: c}
}

// next returns the next state sent, failing the test after 10 s.
func (n *notifySocket) next(t *testing.T) string {
	t.Helper()
	buf := make([]byte, 4096)
	n.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	k, err := n.conn.Read(buf)
	if err != nil {
		t.Fatalf("no notification from dtrelay: %v", err)
	}
	return string(buf[:k])
}

// nextNot returns the next state sent other than skip.
func (n *notifySocket) nextNot(t *testing.T, skip string) string {
	t.Helper()
	for range 1000 {
		if s := n.next(t); s != skip {
			return s
		}
	}
	t.Fatalf("only %q notifications", skip)
	return ""
}

// TestRunNotifiesSystemd runs the relay as a Type=notify unit with
// WatchdogSec would: READY=1 comes once the listener accepts, WATCHDOG=1
// follows at half the watchdog interval while the relay answers, a
// SIGHUP (the unit's ExecReload) leaves it running and relaying, and
// SIGTERM sends STOPPING=1 before the clean stop.
func TestRunNotifiesSystemd(t *testing.T) {
	dir := t.TempDir()
	port, mport := freePort(t), freePort(t)
	cfg := writeFile(t, dir, "c.yaml", fmt.Sprintf(`
inputs: [{name: in, protocol: tcp, address: "127.0.0.1:%d"}]
outputs: [{name: out, type: file, path: "-"}]
metrics: {address: "127.0.0.1:%d"}
`, port, mport))
	ns := listenNotify(t)
	cmd := exec.Command(binPath, "run", "-c", cfg)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+ns.path, "WATCHDOG_USEC=200000")
	p := startCmd(t, cmd)

	if s := ns.next(t); s != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", s)
	}
	// Ready means accepting: one dial, no retry.
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("READY=1 sent before the input accepts: %v", err)
	}
	defer c.Close()
	for range 3 {
		if s := ns.next(t); s != "WATCHDOG=1" {
			t.Fatalf("notification %q, want WATCHDOG=1", s)
		}
	}

	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the SIGHUP log line", func() bool { return strings.Contains(p.stderr.String(), "SIGHUP") })
	alert := `{"pbid":1,"time":1700000000000,"model":{"name":"Unrestricted Test Model"},"score":1}`
	fmt.Fprintf(c, "<165>1 2024-01-01T00:00:00Z dt darktrace - - - %s\n", alert)
	waitFor(t, "the alert sent after SIGHUP", func() bool { return strings.Contains(p.stdout.String(), alert) })
	if s := ns.next(t); s != "WATCHDOG=1" {
		t.Fatalf("after SIGHUP: notification %q, want WATCHDOG=1", s)
	}

	p.cmd.Process.Signal(syscall.SIGTERM)
	if s := ns.nextNot(t, "WATCHDOG=1"); s != "STOPPING=1" {
		t.Fatalf("on SIGTERM: notification %q, want STOPPING=1", s)
	}
	// Not p.stop: a second SIGTERM would interrupt the drain.
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("dtrelay did not stop within 15s of SIGTERM")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
	ns.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if k, err := ns.conn.Read(make([]byte, 64)); err == nil {
		t.Fatalf("a notification after STOPPING=1 (%d bytes): the watchdog outlived the stop", k)
	}
}

// TestRunWithoutNotifySocket: outside systemd nothing is sent and nothing
// is logged about it; the relay runs as before.
func TestRunWithoutNotifySocket(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	cfg := writeFile(t, dir, "c.yaml", fmt.Sprintf(`
inputs: [{name: in, protocol: tcp, address: "127.0.0.1:%d"}]
outputs: [{name: out, type: file, path: "-"}]
`, port))
	cmd := exec.Command(binPath, "run", "-c", cfg)
	cmd.Env = append(os.Environ(), "WATCHDOG_USEC=200000")
	p := startCmd(t, cmd)
	dialWhenUp(t, "tcp", fmt.Sprintf("127.0.0.1:%d", port)).Close()
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	if logs := p.stderr.String(); strings.Contains(logs, "systemd") {
		t.Fatalf("systemd mentioned without NOTIFY_SOCKET:\n%s", logs)
	}
}
