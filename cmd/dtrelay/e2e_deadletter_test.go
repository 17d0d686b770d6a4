package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/internal/intaketest"
)

// runBin runs the binary to completion and returns its exit code and output.
func runBin(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var o, e bytes.Buffer
	cmd := exec.Command(binPath, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	done := make(chan struct{})
	go func() {
		defer close(done)
		cmd.Run()
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("dtrelay %v did not finish within 30s", args)
	}
	return cmd.ProcessState.ExitCode(), o.String(), e.String()
}

// TestDeadLetterAndReplay runs the binary against an intake that refuses one
// event for its size (413 for it alone): that event, and only that one,
// ends in the output's dead-letter file, `deadletter list` shows it, and
// `deadletter replay`, run beside the relay once the intake accepts it,
// delivers it byte for byte and empties the file.
func TestDeadLetterAndReplay(t *testing.T) {
	dir := t.TempDir()
	in := intaketest.NewSekoiaHTTP(t, intakeKey)
	in.RejectLarger(16_000)
	port := freePort(t)
	dlDir := filepath.Join(dir, "dead-letter")
	cfg := writeFile(t, dir, "dtrelay.yaml", fmt.Sprintf(`
inputs:
  - {name: darktrace, protocol: tcp, address: "127.0.0.1:%d"}
outputs:
  - name: sekoia
    type: sekoia-http
    url: %s
    intake_key: %s
    ca_file: %s
    compression: none
    batch: {max_events: 100, max_wait: 50ms}
dead_letter: {dir: %s, max_size: 8MiB}
shutdown_timeout: 5s
`, port, in.URL(), intakeKey, in.CAFile(), dlDir))
	p := startRelay(t, "run", "-c", cfg)
	payloads := alerts(10)
	big := `{"pbid":4242,"time":1700000000000,"score":0.9,"model":{"name":"Big"},"pad":"` + strings.Repeat("x", 30_000) + `"}`
	sendLines(t, fmt.Sprintf("127.0.0.1:%d", port), append(payloads[:5:5], append([]string{big}, payloads[5:]...)...))
	if !in.WaitEvents(len(payloads), 10*time.Second) {
		t.Fatalf("intake got %d of %d events", in.Count(), len(payloads))
	}
	dlFile := filepath.Join(dlDir, "sekoia.ndjson")
	waitFor(t, "the dead-letter file", func() bool {
		b, _ := os.ReadFile(dlFile)
		return bytes.Count(b, []byte{'\n'}) == 1
	})
	data, _ := os.ReadFile(dlFile)
	if !bytes.HasSuffix(data, []byte(`"payload":`+big+"}\n")) || !bytes.Contains(data, []byte(`"reason":"rejected_413"`)) {
		t.Fatalf("dead-letter file: %.300q", data)
	}
	code, out, errs := runBin(t, "deadletter", "list", "-c", cfg)
	if code != 0 || !strings.Contains(out, "sekoia: 1 events") || !strings.Contains(out, "rejected_413 1") {
		t.Fatalf("deadletter list: exit %d\n%s%s", code, out, errs)
	}

	t.Logf("list: %s", out)
	in.RejectLarger(0) // the intake takes it now
	code, out, errs = runBin(t, "deadletter", "replay", "-c", cfg, "--output", "sekoia")
	if code != 0 || !strings.Contains(out, "1 of 1 events delivered") {
		t.Fatalf("deadletter replay: exit %d\n%s%s", code, out, errs)
	}
	t.Logf("replay: %s", out)
	want := append(append([]string{}, payloads...), big)
	if !in.WaitEvents(len(want), 5*time.Second) {
		t.Fatalf("intake got %d of %d events", in.Count(), len(want))
	}
	got := asStrings(in.Events())
	if got[len(got)-1] != big {
		t.Fatal("the replayed event differs from the one received")
	}
	if _, err := os.Stat(dlFile); !os.IsNotExist(err) {
		t.Fatalf("dead-letter file still there after the replay: %v", err)
	}
	if code, out, _ := runBin(t, "deadletter", "list", "-c", cfg); code != 0 || !strings.Contains(out, "sekoia: no events") {
		t.Fatalf("deadletter list after the replay: exit %d\n%s", code, out)
	}
	if code, _, errs := runBin(t, "deadletter", "replay", "-c", cfg, "--output", "nope"); code != 1 || !strings.Contains(errs, `no output is named "nope"`) {
		t.Fatalf("replay of an unknown output: exit %d\n%s", code, errs)
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if probs := in.Problems(); len(probs) > 0 {
		t.Fatalf("intake problems: %q", probs)
	}
}
