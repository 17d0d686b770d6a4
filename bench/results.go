package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// Meta describes where and when results were measured.
type Meta struct {
	Time      time.Time `json:"time"`
	Machine   string    `json:"machine"` // CPU model
	Cores     int       `json:"cores"`
	Kernel    string    `json:"kernel"`
	GoVersion string    `json:"go_version"` // of dtbench
	Commit    string    `json:"commit"`
	Command   string    `json:"command,omitempty"`
}

// CollectMeta describes this machine and the checkout dtbench runs in.
func CollectMeta() Meta {
	m := Meta{Time: time.Now().UTC().Truncate(time.Second), Cores: runtime.NumCPU(), GoVersion: runtime.Version(),
		Machine: cpuModel(), Commit: commit()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// commit returns the VCS revision dtbench was built from, else the working
// directory's git HEAD, else "unknown"; "+dirty" marks local changes.
func commit() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if dirty {
				rev += "+dirty"
			}
			return rev
		}
	}
	out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err == nil {
		return strings.TrimSpace(string(out))
	}
	return "unknown"
}

// WriteResults writes res as dir/results.json.
func WriteResults(dir string, res *Results) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("cannot encode results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("cannot write results: %w", err)
	}
	return nil
}

// ReadResults reads a results.json file.
func ReadResults(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read results: %w", err)
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("cannot decode %s: %w", path, err)
	}
	return &res, nil
}

// WriteRecord stores res under dir (bench/results/) as a Markdown file named
// by date and commit, headed by machine, cores, Go version and commit, with
// the summary table; the time series stay in results.json. It returns the
// file's path.
func WriteRecord(dir string, res *Results) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cannot create results directory: %w", err)
	}
	m := res.Meta
	name := RecordName(m) + ".md"
	var b bytes.Buffer
	fmt.Fprintf(&b, "# dtbench results %s\n\n", m.Time.Format(time.RFC3339))
	fmt.Fprintf(&b, "- machine: %s\n- cores: %d\n- kernel: %s\n- go: %s\n- commit: %s\n", m.Machine, m.Cores, m.Kernel, m.GoVersion, m.Commit)
	if m.Command != "" {
		fmt.Fprintf(&b, "- command: `%s`\n", m.Command)
	}
	if med, hi := res.OtherCPU(); hi > 0 {
		fmt.Fprintf(&b, "- other processes' CPU during the runs: median %.2f cores, at most %.2f", med, hi)
		if hi > BusyMachine {
			b.WriteString(" (something else was using the machine: rates and CPU figures are disturbed; rerun on a quiet machine)")
		}
		b.WriteString("\n")
	}
	if res.Standard {
		fmt.Fprintf(&b, "\nThe standard's cells (issue 16): dtrelay against the job's best peer; ratios are dtrelay / peer. "+
			"Goal: ≥ %.1f× the peer's alerts/s at ≤ %.2f× its CPU per alert (\"at the edge\": a ratio within %.0f %% of a bound), "+
			"0 lost, p99 < 50 ms at half of peak.\n\n", GoalRate, GoalCPU, EdgeMargin*100)
		WriteCells(&b, res)
	}
	b.WriteString("\nRates, latencies, CPU and RSS are medians over rounds; sent, received and lost are totals.\n\n```\n")
	WriteTable(&b, res)
	b.WriteString("```\n")
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("cannot write record: %w", err)
	}
	return path, nil
}

// BusyMachine is the CPU, in cores, of other processes during a run above
// which the record says the machine was not quiet.
const BusyMachine = 0.1

// OtherCPU returns the median and the highest CPU (cores) that other
// processes used during res's runs (RunResult.OtherCPU).
func (res *Results) OtherCPU() (med, hi float64) {
	var v []float64
	for _, list := range [][]ScenarioResult{res.Scenarios, res.HalfPeak} {
		for _, s := range list {
			for _, r := range s.Runs {
				v = append(v, r.OtherCPU)
				hi = max(hi, r.OtherCPU)
			}
		}
	}
	return median(v), hi
}

// RecordName is the base name results measured per m are stored under:
// date, time and commit, e.g. "2026-03-01-120000-0456ada1b2c3".
func RecordName(m Meta) string {
	return fmt.Sprintf("%s-%s", m.Time.Format("2006-01-02-150405"), strings.ReplaceAll(m.Commit, "+", "-"))
}

// WriteTable writes the final table: one line per scenario and relay, then
// the skipped relays and scenarios.
func WriteTable(w io.Writer, res *Results) {
	fmt.Fprintf(w, "%-30s %-10s %12s %8s %10s %10s %6s %8s %8s %8s %9s %8s\n",
		"scenario", "relay", "alerts/s", "MB/s", "sent", "received", "lost", "p50 ms", "p99 ms", "p99.9 ms", "us/alert", "RSS MB")
	line := func(s ScenarioResult, label string) {
		lost := fmt.Sprint(s.Lost)
		if s.Lost > 0 && s.UnderTest {
			lost += "!"
		}
		fmt.Fprintf(w, "%-30s %-10s %12.0f %8.1f %10d %10d %6s %8.2f %8.2f %8.2f %9.2f %8.1f\n",
			label, s.Relay, s.AlertsPerSec, s.MBPerSec, s.Sent, s.Received, lost, s.P50, s.P99, s.P999, s.CPUPerAlert, s.RSSMB)
		for _, e := range s.Errors {
			fmt.Fprintf(w, "    error: %s\n", e)
		}
	}
	for _, s := range res.Scenarios {
		line(s, s.Scenario)
	}
	for _, s := range res.HalfPeak {
		line(s, fmt.Sprintf("%s @%.0f/s", s.Scenario, s.Rate))
	}
	for _, sk := range res.Skipped {
		if sk.Scenario != "" {
			fmt.Fprintf(w, "skipped %s in %s: %s\n", sk.Relay, sk.Scenario, sk.Reason)
		} else {
			fmt.Fprintf(w, "skipped %s: %s\n", sk.Relay, sk.Reason)
		}
	}
}
