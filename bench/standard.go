package bench

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
)

// The standard (issue 16): two jobs, each over TCP and TLS, at 1.5 KB and
// 4 KB, every cell dtrelay against the job's best peer.
//
//   - syslog: octet-counted RFC 5424 in Sekoia form (OutputSyslog,
//     OutputTLSSyslog), against rsyslog with imptcp;
//   - http: newline-delimited batches to /plain/batch, 1000 events or
//     100 ms, no gzip (OutputHTTP, OutputHTTPS), against syslog-ng http()
//     with workers(2).
//
// The goal, in every cell: at least GoalRate × the peer's alerts/s at no
// more than GoalCPU × its CPU per alert.
const (
	GoalRate = 1.2
	GoalCPU  = 0.65
	// EdgeMargin: a ratio within this fraction of a bound is "at the edge".
	EdgeMargin = 0.02
)

// StandardOutputs are the outputs of the standard's cells, in the order of
// issue 16's table: syslog TCP, http TCP, syslog TLS, http TLS.
var StandardOutputs = []string{OutputSyslog, OutputHTTP, OutputTLSSyslog, OutputHTTPS}

// StandardPeer returns the best peer of the job output belongs to: rsyslog
// for the syslog outputs, syslog-ng for the HTTP ones ("" for others).
func StandardPeer(output string) string {
	switch output {
	case OutputSyslog, OutputTLSSyslog:
		return "rsyslog"
	case OutputHTTP, OutputHTTPS:
		return "syslog-ng"
	}
	return ""
}

// StandardCount is the alerts per run of the standard at size bytes:
// 1,000,000 at 1.5 KB, 400,000 at 4 KB, and about 1.5 GB of alerts at
// other sizes.
func StandardCount(size int) uint64 {
	switch size {
	case 1500:
		return 1_000_000
	case 4000:
		return 400_000
	}
	return uint64(max(1000, 1_500_000_000/max(size, 1)))
}

// Standardize turns scs into the standard's cells: sorted by size, then
// the order of StandardOutputs (then connections); with setCount each
// scenario's Count is StandardCount(size); with pair each is run through
// dtrelay and its job's peer only.
func Standardize(scs []Scenario, setCount, pair bool) []Scenario {
	out := slices.Clone(scs)
	rank := func(o string) int {
		if i := slices.Index(StandardOutputs, o); i >= 0 {
			return i
		}
		return len(StandardOutputs)
	}
	slices.SortStableFunc(out, func(a, b Scenario) int {
		return cmp.Or(cmp.Compare(a.Size, b.Size), cmp.Compare(a.MaxSize, b.MaxSize),
			cmp.Compare(rank(a.Output), rank(b.Output)), cmp.Compare(a.Conns, b.Conns))
	})
	for i := range out {
		if setCount {
			out[i].Count = StandardCount(out[i].Size)
		}
		if p := StandardPeer(out[i].Output); pair && p != "" {
			out[i].Relays = []string{"dtrelay", p}
		}
	}
	return out
}

// HalfPeakScenarios returns, for each scenario of scs that dtrelay ran with
// a measured rate in res, the same scenario through dtrelay alone at half
// that rate.
func HalfPeakScenarios(scs []Scenario, res *Results) []Scenario {
	var out []Scenario
	for _, sc := range scs {
		for _, r := range res.Scenarios {
			if r.Relay == "dtrelay" && r.Scenario == sc.Name() && r.AlertsPerSec > 0 {
				h := sc
				h.Rate = r.AlertsPerSec / 2
				h.Relays = []string{"dtrelay"}
				out = append(out, h)
			}
		}
	}
	return out
}

// CellLabel names a cell as issue 16's table does: "syslog, TCP, 1.5 KB".
func CellLabel(output string, size, maxSize, conns int) string {
	job, tr := output, "TCP"
	switch output {
	case OutputSyslog:
		job = "syslog"
	case OutputTLSSyslog:
		job, tr = "syslog", "TLS"
	case OutputHTTP:
		job = "http"
	case OutputHTTPS:
		job, tr = "http", "TLS"
	}
	sz := strings.Replace(fmtSize(size), "KB", " KB", 1)
	if maxSize > size {
		sz += "–" + strings.Replace(fmtSize(maxSize), "KB", " KB", 1)
	}
	label := fmt.Sprintf("%s, %s, %s", job, tr, sz)
	if conns != 4 {
		label += fmt.Sprintf(", %d conns", conns)
	}
	return label
}

// Verdict judges a cell against the goal: "meets" when rate ≥ GoalRate and
// cpu ≤ GoalCPU (both dtrelay / peer), else "short"; ", at the edge" is
// added when either ratio is within EdgeMargin of its bound.
func Verdict(rate, cpu float64) string {
	v := "short"
	if rate >= GoalRate && cpu <= GoalCPU {
		v = "meets"
	}
	if abs(rate/GoalRate-1) <= EdgeMargin || abs(cpu/GoalCPU-1) <= EdgeMargin {
		v += ", at the edge"
	}
	return v
}

// Cell is one cell of the standard: dtrelay and the peer it is compared
// with (the best by alerts/s when several ran) in one scenario.
type Cell struct {
	Label     string
	DTRelay   *ScenarioResult
	Peer      *ScenarioResult // nil when no peer ran
	HalfPeak  *ScenarioResult // dtrelay at half its peak, nil when not run
	RateRatio float64         // dtrelay / peer alerts/s
	CPURatio  float64         // dtrelay / peer CPU µs per alert
	Verdict   string
}

// Cells pairs res's results into cells, in the order of res.Scenarios.
func Cells(res *Results) []Cell {
	var out []Cell
	for i := range res.Scenarios {
		d := &res.Scenarios[i]
		if d.Relay != "dtrelay" {
			continue
		}
		c := Cell{Label: CellLabel(d.Output, d.Size, d.MaxSize, d.Conns), DTRelay: d}
		for j := range res.Scenarios {
			p := &res.Scenarios[j]
			if p.Scenario == d.Scenario && p.Relay != "dtrelay" && (c.Peer == nil || p.AlertsPerSec > c.Peer.AlertsPerSec) {
				c.Peer = p
			}
		}
		for j := range res.HalfPeak {
			if h := &res.HalfPeak[j]; h.Scenario == d.Scenario && h.Relay == "dtrelay" {
				c.HalfPeak = h
			}
		}
		switch {
		case c.Peer == nil:
			c.Verdict = "no peer"
		case len(d.Errors) > 0 || c.Peer.AlertsPerSec <= 0 || c.Peer.CPUPerAlert <= 0:
			c.Verdict = "no verdict (failed run)"
		default:
			c.RateRatio = d.AlertsPerSec / c.Peer.AlertsPerSec
			c.CPURatio = d.CPUPerAlert / c.Peer.CPUPerAlert
			c.Verdict = Verdict(c.RateRatio, c.CPURatio)
			if d.Lost > 0 {
				c.Verdict = "short (lost alerts)"
			}
		}
		out = append(out, c)
	}
	return out
}

// WriteCells writes the standard's cells as a Markdown table: per cell the
// alerts/s of dtrelay and its peer and their ratio, the CPU µs per alert of
// each and their ratio, RSS of each, p99 latency of each (and dtrelay's at
// half its peak when measured), the alerts lost by each, and the verdict.
func WriteCells(w io.Writer, res *Results) {
	cells := Cells(res)
	half := len(res.HalfPeak) > 0
	fmt.Fprint(w, "| cell | peer | alerts/s: dtrelay vs peer | ratio | CPU µs/alert: dtrelay vs peer | CPU ratio | RSS MB: dtrelay vs peer | p99 ms: dtrelay vs peer |")
	if half {
		fmt.Fprint(w, " p99 ms at half peak (rate) |")
	}
	fmt.Fprint(w, " lost: dtrelay / peer | verdict |\n|---|---|---|---|---|---|---|---|")
	if half {
		fmt.Fprint(w, "---|")
	}
	fmt.Fprint(w, "---|---|\n")
	for _, c := range cells {
		d, p := c.DTRelay, c.Peer
		if p == nil {
			p = &ScenarioResult{Relay: "—"}
		}
		ratio := func(r float64) string {
			if c.Peer == nil || r == 0 {
				return "—"
			}
			return fmt.Sprintf("%.2f×", r)
		}
		fmt.Fprintf(w, "| %s | %s | %.0f vs %.0f | %s | %.2f vs %.2f | %s | %.1f vs %.1f | %.1f vs %.1f |",
			c.Label, p.Relay, d.AlertsPerSec, p.AlertsPerSec, ratio(c.RateRatio), d.CPUPerAlert, p.CPUPerAlert, ratio(c.CPURatio),
			d.RSSMB, p.RSSMB, d.P99, p.P99)
		if half {
			if h := c.HalfPeak; h != nil {
				mark := ""
				if h.P99 >= 50 {
					mark = " (≥ 50)"
				}
				if h.Lost > 0 || len(h.Errors) > 0 {
					mark += fmt.Sprintf(" (lost %d, %d errors)", h.Lost, len(h.Errors))
				}
				fmt.Fprintf(w, " %.1f%s at %.0f/s |", h.P99, mark, h.Rate)
			} else {
				fmt.Fprint(w, " — |")
			}
		}
		fmt.Fprintf(w, " %d / %d | %s |\n", d.Lost, p.Lost, c.Verdict)
	}
}
