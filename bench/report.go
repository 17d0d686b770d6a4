package bench

import (
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// WriteReport writes res as dir/report.html: the run's facts, failures, the
// summary table and inline SVG charts (throughput over time per scenario,
// alerts/s, latency percentiles, CPU per alert and peak RSS per relay). The
// page needs no network or script.
func WriteReport(dir string, res *Results) error {
	if err := os.WriteFile(filepath.Join(dir, "report.html"), []byte(RenderReport(res)), 0o644); err != nil {
		return fmt.Errorf("cannot write report: %w", err)
	}
	return nil
}

// RenderReport returns the HTML of the report.
func RenderReport(res *Results) string {
	var b strings.Builder
	m := res.Meta
	b.WriteString(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>dtbench report</title><style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;font-size:13px}th,td{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}
th:first-child,td:first-child,th:nth-child(2),td:nth-child(2){text-align:left}
.fail{background:#fde8e8;border:1px solid #d62728;padding:8px 12px;margin:12px 0}
.ok{background:#e8f6e8;border:1px solid #2ca02c;padding:8px 12px;margin:12px 0}
.charts{display:flex;flex-wrap:wrap;gap:12px}
.title{font-size:14px;font-weight:600}.ax{font-size:11px;fill:#444}.val{font-size:10px;fill:#222}
.lost{color:#d62728;font-weight:600}
</style></head><body>
<h1>dtbench report</h1>
`)
	fmt.Fprintf(&b, "<p>%s · %s · %d cores · kernel %s · %s · commit %s</p>\n", esc(m.Time.Format("2006-01-02 15:04:05 MST")),
		esc(m.Machine), m.Cores, esc(m.Kernel), esc(m.GoVersion), esc(m.Commit))
	if m.Command != "" {
		fmt.Fprintf(&b, "<p><code>%s</code></p>\n", esc(m.Command))
	}
	if f := res.Failures(); len(f) > 0 {
		b.WriteString(`<div class="fail"><b>FAILED</b><ul>`)
		for _, l := range f {
			fmt.Fprintf(&b, "<li>%s</li>", esc(l))
		}
		b.WriteString("</ul></div>\n")
	} else {
		b.WriteString(`<div class="ok">No alert lost by the relays under test.</div>` + "\n")
	}
	writeHTMLTable(&b, res)
	relays, scenarios := relaysAndScenarios(res)
	colors := make([]string, len(relays))
	for i, r := range relays {
		colors[i] = relayColor(r, i)
	}
	find := func(sc, relay string) *ScenarioResult {
		for i := range res.Scenarios {
			if s := &res.Scenarios[i]; s.Scenario == sc && s.Relay == relay {
				return s
			}
		}
		return nil
	}
	bars := func(f func(*ScenarioResult) float64) []barGroup {
		var gs []barGroup
		for _, sc := range scenarios {
			g := barGroup{label: sc}
			for _, r := range relays {
				v := math.NaN()
				if s := find(sc, r); s != nil {
					v = f(s)
				}
				g.values = append(g.values, v)
			}
			gs = append(gs, g)
		}
		return gs
	}
	b.WriteString("<h2>Throughput, CPU and memory</h2><div class=\"charts\">\n")
	barChart(&b, "Alerts per second (median)", "alerts/s", relays, colors, bars(func(s *ScenarioResult) float64 { return s.AlertsPerSec }), false)
	barChart(&b, "Relay CPU per alert (median)", "µs CPU / alert", relays, colors, bars(func(s *ScenarioResult) float64 { return s.CPUPerAlert }), false)
	barChart(&b, "Relay peak RSS (median)", "MB", relays, colors, bars(func(s *ScenarioResult) float64 { return s.RSSMB }), false)
	b.WriteString("</div>\n<h2>Throughput over time (median round)</h2><div class=\"charts\">\n")
	for _, sc := range scenarios {
		var ss []series
		for i, r := range relays {
			if s := find(sc, r); s != nil && s.Median < len(s.Runs) {
				xs, ys := rateSeries(s.Runs[s.Median].Series)
				ss = append(ss, series{name: r, color: colors[i], xs: xs, ys: ys})
			}
		}
		lineChart(&b, sc, "seconds", "alerts/s received", ss)
	}
	b.WriteString("</div>\n<h2>End-to-end latency percentiles (median)</h2><div class=\"charts\">\n")
	pNames := []string{"p50", "p99", "p99.9"}
	pColors := []string{"#9ecae1", "#3182bd", "#08519c"}
	for _, sc := range scenarios {
		var gs []barGroup
		for _, r := range relays {
			if s := find(sc, r); s != nil {
				gs = append(gs, barGroup{label: r, values: []float64{s.P50, s.P99, s.P999}})
			}
		}
		barChart(&b, sc, "ms (log scale)", pNames, pColors, gs, true)
	}
	b.WriteString("</div>\n</body></html>\n")
	return b.String()
}

func esc(s string) string { return html.EscapeString(s) }

// relaysAndScenarios returns the relay and scenario names in first-seen order.
func relaysAndScenarios(res *Results) (relays, scenarios []string) {
	seen := map[string]bool{}
	for _, s := range res.Scenarios {
		if !seen["r:"+s.Relay] {
			seen["r:"+s.Relay] = true
			relays = append(relays, s.Relay)
		}
		if !seen["s:"+s.Scenario] {
			seen["s:"+s.Scenario] = true
			scenarios = append(scenarios, s.Scenario)
		}
	}
	return relays, scenarios
}

// rateSeries turns cumulative received counts into a received rate, each
// point averaged over the preceding second.
func rateSeries(ps []Point) (xs, ys []float64) {
	j := 0
	for i := 1; i < len(ps); i++ {
		for j < i-1 && ps[i].T-ps[j+1].T >= 1 {
			j++
		}
		dt := ps[i].T - ps[j].T
		if dt <= 0 {
			continue
		}
		xs = append(xs, ps[i].T)
		ys = append(ys, float64(ps[i].Received-ps[j].Received)/dt)
	}
	return xs, ys
}

func writeHTMLTable(b *strings.Builder, res *Results) {
	b.WriteString("<h2>Summary</h2><p>Rates, latencies, CPU and RSS are medians over rounds; sent, received and lost are totals. " +
		"MB/s is syslog input delivered.</p><table><tr><th>scenario</th><th>relay</th><th>alerts/s</th><th>MB/s</th><th>sent</th>" +
		"<th>received</th><th>dups</th><th>lost</th><th>p50 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>µs CPU/alert</th><th>RSS MB</th><th>rounds</th></tr>\n")
	for _, s := range res.Scenarios {
		lost := fmt.Sprint(s.Lost)
		if s.Lost > 0 {
			lost = `<span class="lost">` + lost + "</span>"
		}
		fmt.Fprintf(b, "<tr><td>%s</td><td>%s</td><td>%.0f</td><td>%.1f</td><td>%d</td><td>%d</td><td>%d</td><td>%s</td><td>%.2f</td><td>%.2f</td><td>%.2f</td><td>%.2f</td><td>%.1f</td><td>%d</td></tr>\n",
			esc(s.Scenario), esc(s.Relay), s.AlertsPerSec, s.MBPerSec, s.Sent, s.Received, s.Duplicates, lost, s.P50, s.P99, s.P999, s.CPUPerAlert, s.RSSMB, s.Rounds)
	}
	b.WriteString("</table>\n")
	if len(res.Skipped) > 0 {
		b.WriteString("<p>Skipped:</p><ul>")
		for _, sk := range res.Skipped {
			fmt.Fprintf(b, "<li>%s %s: %s</li>", esc(sk.Relay), esc(sk.Scenario), esc(sk.Reason))
		}
		b.WriteString("</ul>\n")
	}
}
