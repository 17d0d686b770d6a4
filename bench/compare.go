package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/rs/zerolog"
)

// CompareConfig is a comparison: every scenario through every relay, rounds
// times, interleaved (round 1 of every scenario and relay, then round 2...).
type CompareConfig struct {
	Relays    []Relay
	Scenarios []Scenario
	Rounds    int // default 1
	// UnderTest names the relays whose loss (or failed run) fails the
	// comparison; empty means dtrelay when it is among Relays, else all.
	UnderTest []string
	// Dir holds the runs' temporary directories; "" uses os.TempDir. The
	// run directories are removed unless KeepDirs.
	Dir      string
	KeepDirs bool
	Run      RunOptions
	// OnRunStart, when set, is called before each run (progress display).
	OnRunStart func(relay string, sc Scenario, round, rounds int)
	// OnRunEnd, when set, is called after each run.
	OnRunEnd func(r *RunResult, sc Scenario)
	Log      zerolog.Logger
}

// ScenarioResult is one scenario through one relay, reduced over rounds:
// rates, latencies, CPU and RSS are medians; sent, received, duplicates and
// lost are totals (any loss in any round is loss).
type ScenarioResult struct {
	Scenario     string      `json:"scenario"`
	Relay        string      `json:"relay"`
	Input        string      `json:"input"`
	Output       string      `json:"output"`
	Size         int         `json:"size"`
	MaxSize      int         `json:"max_size,omitempty"`
	Conns        int         `json:"conns"`
	Framing      string      `json:"framing"`
	Header       string      `json:"header"`
	Rate         float64     `json:"rate"`
	Rounds       int         `json:"rounds"`
	AlertsPerSec float64     `json:"alerts_per_sec"`
	MBPerSec     float64     `json:"mb_per_sec"`
	Sent         uint64      `json:"sent"`
	Received     uint64      `json:"received"`
	Duplicates   uint64      `json:"duplicates"`
	Lost         uint64      `json:"lost"`
	P50          float64     `json:"p50_ms"`
	P99          float64     `json:"p99_ms"`
	P999         float64     `json:"p999_ms"`
	CPUPerAlert  float64     `json:"cpu_us_per_alert"`
	RSSMB        float64     `json:"rss_mb"`
	OtherCPU     float64     `json:"other_cpu_cores"` // median, see RunResult.OtherCPU
	UnderTest    bool        `json:"under_test"`
	Errors       []string    `json:"errors,omitempty"`
	Runs         []RunResult `json:"runs"`
	// Median is the index in Runs of the run with the median rate (the
	// one whose time series the report draws).
	Median int `json:"median_run"`
}

// Skip records a relay or scenario that was not run, and why.
type Skip struct {
	Relay    string `json:"relay"`
	Scenario string `json:"scenario,omitempty"`
	Reason   string `json:"reason"`
}

// Results is the outcome of Compare, as written to results.json.
type Results struct {
	Meta      Meta             `json:"meta"`
	Scenarios []ScenarioResult `json:"scenarios"`
	Skipped   []Skip           `json:"skipped,omitempty"`
	// Standard marks the results of "dtbench standard": the record then
	// leads with the cells table (WriteCells).
	Standard bool `json:"standard,omitempty"`
	// HalfPeak holds the reruns at half of dtrelay's peak rate (each
	// scenario's Rate), for the p99 latency the goal sets there.
	HalfPeak []ScenarioResult `json:"half_peak,omitempty"`
}

// Failures lists, one line each, the scenarios in which a relay under test
// lost alerts or failed to run.
func (r *Results) Failures() []string {
	var out []string
	add := func(list []ScenarioResult, suffix string) {
		for _, s := range list {
			if !s.UnderTest {
				continue
			}
			if s.Lost > 0 {
				out = append(out, fmt.Sprintf("%s lost %d of %d alerts in %s%s", s.Relay, s.Lost, s.Sent, s.Scenario, suffix))
			}
			for _, e := range s.Errors {
				out = append(out, fmt.Sprintf("%s failed in %s%s: %s", s.Relay, s.Scenario, suffix, e))
			}
		}
	}
	add(r.Scenarios, "")
	add(r.HalfPeak, " (half peak)")
	return out
}

// ErrNoRelay is returned by Compare when no relay could run.
var ErrNoRelay = errors.New("bench: no relay available")

// Compare runs the comparison. Relays missing from the machine, and
// scenarios a relay cannot do, are skipped and listed in Results.Skipped;
// when that leaves nothing to run, or the only relay is missing, Compare
// fails. Loss does not make Compare return an error: see Results.Failures.
func Compare(ctx context.Context, cfg CompareConfig) (*Results, error) {
	if cfg.Rounds < 1 {
		cfg.Rounds = 1
	}
	res := &Results{Meta: CollectMeta()}
	var relays []Relay
	for _, r := range cfg.Relays {
		if err := r.Available(); err != nil {
			if len(cfg.Relays) == 1 {
				return nil, err
			}
			cfg.Log.Warn().Err(err).Str("relay", r.Name()).Msg("relay skipped")
			res.Skipped = append(res.Skipped, Skip{Relay: r.Name(), Reason: err.Error()})
			continue
		}
		relays = append(relays, r)
	}
	if len(relays) == 0 {
		return nil, ErrNoRelay
	}
	underTest := func(name string) bool {
		if len(cfg.UnderTest) > 0 {
			return slices.Contains(cfg.UnderTest, name)
		}
		for _, r := range relays {
			if r.Name() == "dtrelay" {
				return name == "dtrelay"
			}
		}
		return true
	}
	base, err := os.MkdirTemp(cfg.Dir, "dtbench-")
	if err != nil {
		return nil, fmt.Errorf("cannot create work directory: %w", err)
	}
	if !cfg.KeepDirs {
		defer os.RemoveAll(base)
	}
	cert, err := NewCert(base)
	if err != nil {
		return nil, err
	}
	// One result per (scenario, relay) that can run.
	type key struct{ s, r int }
	results := map[key]*ScenarioResult{}
	var order []key
	for si, sc := range cfg.Scenarios {
		if sc.Output == OutputRELP {
			if _, err := RELPPeer(cfg.Run.RELPPeer); err != nil {
				for _, r := range relays {
					res.Skipped = append(res.Skipped, Skip{Relay: r.Name(), Scenario: sc.Name(), Reason: err.Error()})
				}
				continue
			}
		}
		for ri, r := range relays {
			if len(sc.Relays) > 0 && !slices.Contains(sc.Relays, r.Name()) {
				continue
			}
			spec := &RelaySpec{Input: sc.Input, Output: sc.Output, Cert: cert}
			if err := r.Supports(spec); err != nil {
				res.Skipped = append(res.Skipped, Skip{Relay: r.Name(), Scenario: sc.Name(), Reason: err.Error()})
				continue
			}
			k := key{si, ri}
			order = append(order, k)
			results[k] = &ScenarioResult{Scenario: sc.Name(), Relay: r.Name(), Input: sc.Input, Output: sc.Output,
				Size: sc.Size, MaxSize: sc.MaxSize, Conns: sc.Conns, Framing: sc.Framing.String(), Header: sc.Header.String(),
				Rate: sc.Rate, UnderTest: underTest(r.Name())}
		}
	}
	if len(order) == 0 {
		return nil, fmt.Errorf("%w: no relay supports the scenarios", ErrNoRelay)
	}
	for round := 1; round <= cfg.Rounds; round++ {
		for _, k := range order {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			sc, r, sr := cfg.Scenarios[k.s], relays[k.r], results[k]
			if cfg.OnRunStart != nil {
				cfg.OnRunStart(r.Name(), sc, round, cfg.Rounds)
			}
			dir, err := mkRunDir(base, fmt.Sprintf("%s-r%d", r.Name(), round))
			if err != nil {
				return nil, err
			}
			rr, err := RunOnce(ctx, r, sc, dir, cert, cfg.Run)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				cfg.Log.Error().Err(err).Str("relay", r.Name()).Str("scenario", sc.Name()).Msg("run failed")
				rr = &RunResult{Relay: r.Name(), Error: err.Error()}
			}
			rr.Round = round
			if rr.Error != "" {
				sr.Errors = append(sr.Errors, fmt.Sprintf("round %d: %s", round, rr.Error))
			}
			sr.Runs = append(sr.Runs, *rr)
			if cfg.OnRunEnd != nil {
				cfg.OnRunEnd(rr, sc)
			}
		}
	}
	for _, k := range order {
		sr := results[k]
		reduce(sr)
		res.Scenarios = append(res.Scenarios, *sr)
	}
	return res, nil
}

// reduce fills sr's summary fields from its runs.
func reduce(sr *ScenarioResult) {
	sr.Rounds = len(sr.Runs)
	pick := func(f func(*RunResult) float64) float64 {
		v := make([]float64, 0, len(sr.Runs))
		for i := range sr.Runs {
			v = append(v, f(&sr.Runs[i]))
		}
		return median(v)
	}
	sr.AlertsPerSec = pick(func(r *RunResult) float64 { return r.AlertsPerSec })
	sr.MBPerSec = pick(func(r *RunResult) float64 { return r.MBPerSec })
	sr.P50 = pick(func(r *RunResult) float64 { return r.P50 })
	sr.P99 = pick(func(r *RunResult) float64 { return r.P99 })
	sr.P999 = pick(func(r *RunResult) float64 { return r.P999 })
	sr.CPUPerAlert = pick(func(r *RunResult) float64 { return r.CPUPerAlert })
	sr.RSSMB = pick(func(r *RunResult) float64 { return r.RSSMB })
	sr.OtherCPU = pick(func(r *RunResult) float64 { return r.OtherCPU })
	best := 0
	for i, r := range sr.Runs {
		sr.Sent += r.Sent
		sr.Received += r.Received
		sr.Duplicates += r.Duplicates
		sr.Lost += r.Lost
		if abs(r.AlertsPerSec-sr.AlertsPerSec) < abs(sr.Runs[best].AlertsPerSec-sr.AlertsPerSec) {
			best = i
		}
	}
	sr.Median = best
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// median returns the median of v (the mean of the middle two for an even
// count), 0 for none. v is sorted in place.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// ParseList splits a comma-separated flag value, dropping blanks.
func ParseList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
