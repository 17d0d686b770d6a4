//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestMetricsListenerCannotStarveInputs replays the incident: dtrelay runs
// with 256 descriptors (ulimit -n 256) and 300 clients hold keep-alive
// connections to its metrics listener. The listener holds at most its cap
// (64) of them, so the syslog input still accepts and an alert is
// delivered; every log line stays JSON.
func TestMetricsListenerCannotStarveInputs(t *testing.T) {
	const clients, capConns = 300, 64
	dir := t.TempDir()
	port, mport := freePort(t), freePort(t)
	outFile := filepath.Join(dir, "out.ndjson")
	cfg := writeFile(t, dir, "c.yaml", fmt.Sprintf(`
inputs: [{name: in, protocol: tcp, address: "127.0.0.1:%d"}]
outputs: [{name: out, type: file, path: %s}]
metrics: {address: "127.0.0.1:%d"}
`, port, outFile, mport))
	p := startCmd(t, exec.Command("sh", "-c", `ulimit -n 256 && exec "$0" "$@"`, binPath, "run", "-c", cfg))
	pid := p.cmd.Process.Pid
	maddr := fmt.Sprintf("127.0.0.1:%d", mport)
	dialWhenUp(t, "tcp", maddr).Close()
	limits, _ := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if !strings.Contains(string(limits), "Max open files            256                  256") {
		t.Fatalf("dtrelay does not run with 256 descriptors:\n%s", limits)
	}
	fds := func() int {
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			return -1 // not dumpable and not root: not ours to read
		}
		return len(ents)
	}
	before := fds()

	var conns []net.Conn
	var readers []*bufio.Reader
	for range clients {
		c, err := net.Dial("tcp", maddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n")
		conns, readers = append(conns, c), append(readers, bufio.NewReader(c))
	}
	// The first capConns are served and then held idle; the rest wait.
	for i := range capConns {
		conns[i].SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(readers[i], nil)
		if err != nil {
			t.Fatalf("metrics connection %d not served: %v", i, err)
		}
		resp.Body.Close()
	}
	conns[capConns].SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := http.ReadResponse(readers[capConns], nil); err == nil {
		t.Fatalf("metrics connection %d, over the cap of %d, was served", capConns, capConns)
	}
	held := fds()
	if before >= 0 && held > before+capConns+2 {
		t.Fatalf("dtrelay holds %d descriptors with %d metrics clients (%d before): more than the cap of %d", held, clients, before, capConns)
	}

	c := dialWhenUp(t, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
	a := alerts(4)[0]
	fmt.Fprintf(c, "<165>Aug  5 03:34:46 dt-master darktrace %s\n", a)
	c.Close()
	start := time.Now()
	waitFor(t, "the alert in the output file", func() bool {
		b, _ := os.ReadFile(outFile)
		return bytes.Equal(b, []byte(a+"\n"))
	})
	t.Logf("%d metrics clients: dtrelay held %d descriptors (%d before); the alert arrived %v after it was sent",
		clients, held, before, time.Since(start).Round(time.Millisecond))
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	assertJSONLines(t, p.stderr.String())
}

// psiInitLine is the one line the metrics library (v1.38 and later, which
// have its Prometheus histograms) writes with the standard logger while the
// process initialises, before main can send that logger's lines through
// zerolog, on a host without cgroup v2 pressure (PSI) files: this
// container, cgroup v1 hosts.
var psiInitLine = regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (INFO|ERROR): metrics: disable exposing PSI metrics because of failed init: `)

// assertJSONLines fails unless every line of a log stream is a JSON object
// (the first may be psiInitLine).
func assertJSONLines(t *testing.T, logs string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(logs))
	n := 0
	for sc.Scan() {
		if n == 0 && psiInitLine.Match(sc.Bytes()) {
			t.Logf("the metrics library's init line, before main: %s", sc.Text())
			continue
		}
		var v map[string]any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Errorf("log line is not JSON: %q", sc.Text())
		}
		n++
	}
	if n == 0 {
		t.Error("no log lines")
	}
}

// startCmd starts cmd like startRelay does, with its output captured.
func startCmd(t *testing.T, cmd *exec.Cmd) *relayProc {
	t.Helper()
	p := &relayProc{cmd: cmd, stdout: &syncBuf{}, stderr: &syncBuf{}}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if t.Failed() {
			t.Logf("dtrelay stderr:\n%s", p.stderr.String())
		}
	})
	return p
}
