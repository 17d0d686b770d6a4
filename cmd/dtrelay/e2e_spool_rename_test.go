package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/internal/intaketest"
	"github.com/dtrelay/dtrelay/spool"
)

// runCmd runs the binary to completion and returns its exit code, stdout
// and stderr.
func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var o, e bytes.Buffer
	cmd := exec.Command(binPath, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	_ = cmd.Run()
	return cmd.ProcessState.ExitCode(), o.String(), e.String()
}

// renameConfig writes a config whose syslog output to intake is called
// name, with the given spool.rename (YAML flow mapping, or "").
func renameConfig(t *testing.T, dir, file string, port int, intakeAddr, name, rename string) string {
	t.Helper()
	if rename != "" {
		rename = ", rename: " + rename
	}
	return writeFile(t, dir, file, fmt.Sprintf(`
inputs: [{name: dt, protocol: tcp, address: "127.0.0.1:%d"}]
outputs:
  - {name: %s, type: syslog, address: "%s", tls: false, format: sekoia, intake_key: %s}
spool: {dir: %s, fsync_interval: 200ms, max_size: 256MiB%s}
shutdown_timeout: 2s
`, port, name, intakeAddr, intakeKey, filepath.Join(dir, "spool"), rename))
}

// TestSpoolRenameDeliversBacklog: alerts are spooled for output "intake"
// while its intake is down; the output is then renamed "intake-eu".
// `check` and `spool inspect` say loudly that 500 alerts are spooled for an
// output that no longer exists, and so does the relay's log at start;
// with spool.rename {intake: intake-eu} the backlog is delivered, every
// alert once. Both ways: the rename given at the first start under the new
// name, or only after a run under the new name (which delivered newer
// alerts meanwhile).
func TestSpoolRenameDeliversBacklog(t *testing.T) {
	for _, late := range []bool{false, true} {
		t.Run(map[bool]string{false: "at once", true: "after a run under the new name"}[late], func(t *testing.T) {
			dir := t.TempDir()
			intake := intaketest.NewSyslog(t, intakeKey, false)
			intake.Stop()
			port := freePort(t)
			old := renameConfig(t, dir, "old.yaml", port, intake.Addr(), "intake", "")
			p := startRelay(t, "run", "-c", old)
			payloads := alerts(600)
			sendLines(t, fmt.Sprintf("127.0.0.1:%d", port), payloads[:500])
			waitFor(t, "500 alerts spooled", func() bool {
				rep, err := spool.Inspect(filepath.Join(dir, "spool"))
				return err == nil && len(rep.Consumers) == 1 && rep.Consumers[0].Pending == 500
			})
			code, out, errs := runCmd(t, "spool", "inspect", "-c", old)
			if code != 0 || !strings.Contains(out, fmt.Sprintf("in use by process %d", p.cmd.Process.Pid)) ||
				!regexpMatch(`intake +500 `, out) {
				t.Fatalf("spool inspect while running: exit %d\n%s%s", code, out, errs)
			}
			if code := p.stop(t); code != 0 {
				t.Fatalf("exit code %d", code)
			}
			intake.Restart()

			renamed := renameConfig(t, dir, "renamed.yaml", port, intake.Addr(), "intake-eu", "")
			code, out, errs = runCmd(t, "check", "-c", renamed)
			if code != 0 || !strings.Contains(errs, `warning: spool: 500 alerts`) || !strings.Contains(errs, `output "intake"`) ||
				!strings.Contains(errs, "spool.rename: {intake: NEW-NAME}") {
				t.Fatalf("check of the renamed config: exit %d, want a warning about the 500 alerts\n%s%s", code, out, errs)
			}
			code, out, _ = runCmd(t, "spool", "inspect", "-c", renamed)
			if code != 0 || !strings.Contains(out, "not in use") || !regexpMatch(`intake +500 .*UNCLAIMED`, out) {
				t.Fatalf("spool inspect of the renamed config: exit %d\n%s", code, out)
			}
			want := payloads[:500]
			if late {
				p = startRelay(t, "run", "-c", renamed)
				waitFor(t, "the unclaimed backlog logged", func() bool {
					return strings.Contains(p.stderr.String(), "spool consumer claimed by no output")
				})
				sendLines(t, fmt.Sprintf("127.0.0.1:%d", port), payloads[500:])
				if !intake.WaitEvents(100, 10*time.Second) {
					t.Fatalf("the new alerts: intake got %d of 100", intake.Count())
				}
				if code := p.stop(t); code != 0 {
					t.Fatalf("exit code %d", code)
				}
				want = payloads
			}

			fixed := renameConfig(t, dir, "fixed.yaml", port, intake.Addr(), "intake-eu", "{intake: intake-eu}")
			if code, out, errs := runCmd(t, "check", "-c", fixed); code != 0 || strings.Contains(errs, "warning: spool") ||
				!strings.Contains(out, "backlog renamed: intake -> intake-eu") {
				t.Fatalf("check with spool.rename: exit %d\n%s%s", code, out, errs)
			}
			p = startRelay(t, "run", "-c", fixed)
			if !intake.WaitEvents(len(want), 10*time.Second) {
				t.Fatalf("with spool.rename the intake got %d of %d", intake.Count(), len(want))
			}
			if code := p.stop(t); code != 0 {
				t.Fatalf("exit code %d", code)
			}
			if dups := checkAllOnce(t, intake.Events(), want); dups > 0 {
				t.Fatalf("%d alerts delivered twice", dups)
			}
			if !strings.Contains(p.stderr.String(), "spool.rename: backlog") {
				t.Errorf("the hand-over was not logged:\n%s", p.stderr.String())
			}
		})
	}
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }
