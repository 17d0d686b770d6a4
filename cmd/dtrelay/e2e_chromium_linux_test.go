package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/internal/intaketest"
)

const chromiumPath = "/usr/bin/chromium"

// chromiumTimeout bounds one chromium run.
const chromiumTimeout = 60 * time.Second

// needChromium skips the test without Debian's chromium, or fails it when
// DTRELAY_REQUIRE_CHROMIUM=1 (CI installs it: .ci/run).
func needChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("DTRELAY_REQUIRE_CHROMIUM") == "1" {
			t.Fatalf("%s: %v (DTRELAY_REQUIRE_CHROMIUM=1: install Debian's chromium package)", chromiumPath, err)
		}
		t.Skipf("%s not installed (apt-get install chromium); set DTRELAY_REQUIRE_CHROMIUM=1 to fail instead", chromiumPath)
	}
}

// runChromium runs headless chromium with a fresh profile and args (the
// URL last), bounded by chromiumTimeout; its whole process group is killed
// when it returns or times out. It returns standard output. Safe to call
// from several goroutines (it does not fail the test itself).
func runChromium(t *testing.T, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), chromiumTimeout)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, chromiumPath, append(base, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second // its helpers may hold the pipes
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // helpers left behind
	}
	if err != nil {
		return nil, fmt.Errorf("chromium %s: %v after %v\n%s", strings.Join(args, " "), err, time.Since(start).Round(time.Millisecond), errb.String())
	}
	t.Logf("chromium %s: %v", args[0], time.Since(start).Round(time.Millisecond))
	return out.Bytes(), nil
}

// TestStatusPageInChromium looks at the status page as a person would, in
// headless Chromium: a relay gets alerts from two Darktrace masters
// (syslog HOSTNAMEs), one of which then goes silent; one output works, one
// intake refuses everything. The DOM Chromium built shows both sources,
// the silent one's row with class "silent", the working output up and the
// failing one DOWN with its last error; a 1280×800 screenshot is kept
// (under $DTRELAY_ARTIFACTS when set) and is not blank; printed to PDF
// (the print stylesheet), the page gives a PDF of some substance.
func TestStatusPageInChromium(t *testing.T) {
	needChromium(t)
	dir := t.TempDir()
	port, mport := freePort(t), freePort(t)
	in := intaketest.NewSekoiaHTTP(t, intakeKey)
	in.FailNext(10000, intaketest.Fault{Status: 503, Body: `{"message":"maintenance"}`})
	cfg := writeFile(t, dir, "c.yaml", fmt.Sprintf(`
inputs: [{name: darktrace, protocol: tcp, address: "127.0.0.1:%d", silent_after: 1s}]
outputs:
  - {name: archive, type: file, path: %s}
  - {name: sekoia, type: sekoia-http, url: "%s", ca_file: %s, intake_key: %s, batch: {max_wait: 10ms}}
metrics: {address: "127.0.0.1:%d"}
`, port, filepath.Join(dir, "a.ndjson"), in.URL(), in.CAFile(), intakeKey, mport))
	startRelay(t, "run", "-c", cfg)
	dialWhenUp(t, "tcp", fmt.Sprintf("127.0.0.1:%d", mport)).Close()
	oneMasterFallsSilent(t, port, 100*time.Millisecond, 600) // 60 s at most
	waitFor(t, "dt-master-1 silent and sekoia down with an error", func() bool {
		body, _ := getStatus(t, mport, "/api/status")
		var st struct {
			Sources []struct {
				Source string `json:"source"`
				Silent bool   `json:"silent"`
			} `json:"sources"`
			Outputs []struct {
				Name      string `json:"name"`
				Up        bool   `json:"up"`
				LastError string `json:"last_error"`
			} `json:"outputs"`
		}
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatal(err)
		}
		silent := len(st.Sources) == 2 && st.Sources[0].Source == "dt-master-1" && st.Sources[0].Silent
		down := len(st.Outputs) == 2 && !st.Outputs[1].Up && st.Outputs[1].LastError != ""
		return silent && down
	})
	url := fmt.Sprintf("http://127.0.0.1:%d/", mport)
	art := os.Getenv("DTRELAY_ARTIFACTS")
	if art == "" {
		art = t.TempDir()
	} else if err := os.MkdirAll(art, 0o755); err != nil {
		t.Fatal(err)
	}
	shot, pdf := filepath.Join(art, "status.png"), filepath.Join(art, "status.pdf")
	_, _ = os.Remove(shot), os.Remove(pdf)
	// The three runs at once: each starts a browser, which takes seconds.
	runs := [][]string{{"--dump-dom", url}, {"--screenshot=" + shot, "--window-size=1280,800", url},
		{"--print-to-pdf=" + pdf, "--no-pdf-header-footer", url}}
	outs, errs := make([][]byte, len(runs)), make([]error, len(runs))
	var wg sync.WaitGroup
	for i, args := range runs {
		wg.Go(func() { outs[i], errs[i] = runChromium(t, args...) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	dom := string(outs[0])
	checks := []struct{ what, re string }{
		{"dt-master-1's row flagged silent", `<tr class="silent"><td>darktrace</td><td>dt-master-1</td>`},
		{"dt-master-1 marked SILENT", `<tr class="silent">(<td[^>]*>[^<]*</td>)*<td>SILENT</td></tr>`},
		{"dt-master-2's row ok", `<tr class="ok"><td>darktrace</td><td>dt-master-2</td>(<td[^>]*>[^<]*</td>)*<td>ok</td></tr>`},
		{"archive up", `<td>archive</td><td>file</td><td class="up">up</td>`},
		{"sekoia DOWN with its last error", `<td>sekoia</td><td>sekoia-http</td><td class="down">DOWN</td>(<td[^>]*>[^<]*</td>)*<td class="err">cannot deliver batch to [^<]*HTTP 503`},
		{"the summary counting one silent source", `id="sum-sources">2 source\(s\), 1 silent<`},
		{"the silence warning", `source silent: nothing received for silent_after`},
		{"the input's rate", `<td class="n" title="over the last \d+ s">\d+\.\d\d</td>`},
	}
	for _, c := range checks {
		if !regexp.MustCompile(c.re).MatchString(dom) {
			t.Errorf("DOM lacks %s (%s)", c.what, c.re)
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}

	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 800 {
		t.Errorf("screenshot is %dx%d, want 1280x800", b.Dx(), b.Dy())
	}
	// Not blank: many pixels differ from the top-left one (the background),
	// in more than a few colours (text, the silent row's red, the header).
	b := img.Bounds()
	bg := img.At(b.Min.X, b.Min.Y)
	r0, g0, b0, _ := bg.RGBA()
	differ, colours := 0, map[[3]uint32]bool{}
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r != r0 || g != g0 || bl != b0 {
				differ++
			}
			if len(colours) < 1000 {
				colours[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
			}
		}
	}
	if total := (b.Dx() / 2) * (b.Dy() / 2); differ < total/100 || len(colours) < 8 {
		t.Errorf("screenshot looks blank: %d of %d sampled pixels differ from the background, %d colours", differ, total, len(colours))
	}
	t.Logf("screenshot: %s", shot)

	p, err := os.ReadFile(pdf)
	if err != nil {
		t.Fatalf("no PDF: %v", err)
	}
	if !bytes.HasPrefix(p, []byte("%PDF-")) || len(p) < 8<<10 || !bytes.Contains(p, []byte("/Font")) {
		t.Errorf("PDF %s: %d bytes, starts %q: want a PDF with text, 8 KiB or more", pdf, len(p), p[:min(len(p), 8)])
	}
	t.Logf("print: %s (%d bytes)", pdf, len(p))
}
