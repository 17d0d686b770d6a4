//go:build linux

package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// nobody is the user the protection test runs dtrelay as when the tests
// run as root, so that the process's /proc files show the dumpable flag.
const nobody = 65534

// TestRunProtectsSecrets: dtrelay run makes itself non-dumpable and sets
// RLIMIT_CORE to 0, soft and hard (read from /proc/<pid>/limits; the
// dumpable flag shows as /proc/<pid>/status being owned by root). As a
// user other than root, /metrics still answers, and what the process
// metrics then log (they cannot read /proc/self/io) is JSON like every
// other line.
func TestRunProtectsSecrets(t *testing.T) {
	// Give the child a core limit to lose.
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CORE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Max == 0 {
		t.Log("RLIMIT_CORE hard limit is 0 here already: the limits check proves less")
	} else if lim.Cur == 0 {
		lim.Cur = min(lim.Max, 1<<20)
		if err := unix.Setrlimit(unix.RLIMIT_CORE, &lim); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	mport := freePort(t)
	cfgBody := fmt.Sprintf(`
inputs: [{name: in, protocol: tcp, address: "127.0.0.1:0"}]
outputs: [{name: out, type: file, path: "-"}]
metrics: {address: "127.0.0.1:%d"}
`, mport)
	var p *relayProc
	if os.Getuid() == 0 {
		// The binary, the config and their directories must be readable by nobody.
		for _, d := range []string{filepath.Dir(binPath), filepath.Dir(dir), dir} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		cfg := writeFile(t, dir, "c.yaml", cfgBody)
		if err := os.Chmod(cfg, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(binPath, "run", "-c", cfg)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		p = startCmd(t, cmd)
	} else {
		p = startRelay(t, "run", "-c", writeFile(t, dir, "c.yaml", cfgBody))
	}
	pid := p.cmd.Process.Pid
	var body string
	waitFor(t, "/metrics", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", mport))
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		return resp.StatusCode == 200
	})
	for _, want := range []string{"process_resident_memory_bytes", "process_open_fds", "process_max_fds"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	if !coreLimitZero(string(limits)) {
		t.Errorf("core file size is not 0 0:\n%s", limits)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/status", pid), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 0 {
		t.Errorf("/proc/%d/status is owned by uid %d: the process is still dumpable", pid, st.Uid)
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	assertJSONLines(t, p.stderr.String())
}

// coreLimitZero reports whether a /proc/<pid>/limits text gives a core
// file size of 0, soft and hard.
func coreLimitZero(limits string) bool {
	for _, line := range strings.Split(limits, "\n") {
		if rest, ok := strings.CutPrefix(line, "Max core file size"); ok {
			f := strings.Fields(rest)
			return len(f) >= 2 && f[0] == "0" && f[1] == "0"
		}
	}
	return false
}
