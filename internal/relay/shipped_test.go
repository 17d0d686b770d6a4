package relay

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The files shipped for Prometheus and Grafana (issue 15).
const (
	alertRules     = "../../deploy/prometheus/dtrelay-alerts.yml"
	alertRulesTest = "../../deploy/prometheus/dtrelay-alerts_test.yml"
	dashboard      = "../../deploy/grafana/dtrelay.json"
)

var dtrelayName = regexp.MustCompile(`\bdtrelay_[a-zA-Z0-9_]+`)

// histograms are the relay's histogram families.
var histograms = map[string]bool{"dtrelay_output_send_duration_seconds": true, "dtrelay_output_delivery_latency_seconds": true}

// checkNames fails for each dtrelay_ metric name in expr that the relay does
// not export: every family it exports has a HELP text (TestMetricsExposition
// holds it to that), so helpTexts is the list; a histogram's _bucket, _sum
// and _count are its family's. It also fails an expr with no dtrelay_ name.
func checkNames(t *testing.T, where, expr string) {
	t.Helper()
	names := dtrelayName.FindAllString(expr, -1)
	if len(names) == 0 {
		t.Errorf("%s: %q uses no dtrelay_ metric", where, expr)
	}
	for _, n := range names {
		if _, ok := helpTexts[n]; ok {
			continue
		}
		known := false
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if f, ok := strings.CutSuffix(n, suf); ok && histograms[f] {
				known = true
			}
		}
		if !known {
			t.Errorf("%s: %s is not a metric the relay exports", where, n)
		}
	}
}

// TestAlertRules: every rule of deploy/prometheus/dtrelay-alerts.yml uses
// metrics the relay exports; with promtool, `promtool check rules` accepts
// the file and `promtool test rules` passes its unit tests.
func TestAlertRules(t *testing.T) {
	b, err := os.ReadFile(alertRules)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert, Expr string
			}
		}
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	alerts := map[string]bool{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			alerts[r.Alert] = true
			checkNames(t, r.Alert, r.Expr)
		}
	}
	// The rules issue 15 asks for.
	for _, a := range []string{"DtrelaySourceSilent", "DtrelayOutputDown", "DtrelayDeliveryBacklog", "DtrelaySpoolFilling",
		"DtrelayOutputDrops", "DtrelayInputDiscards", "DtrelayOversize", "DtrelayNotJSON", "DtrelayPollerCheckpointStale"} {
		if !alerts[a] {
			t.Errorf("no rule %s", a)
		}
	}
	pt := promtoolPath()
	if pt == "" {
		t.Skip("promtool not installed (bench/install-peers.sh unpacks it): rules not checked by promtool")
	}
	for _, args := range [][]string{{"check", "rules", filepath.Base(alertRules)}, {"test", "rules", filepath.Base(alertRulesTest)}} {
		cmd := exec.Command(pt, args...)
		cmd.Dir = filepath.Dir(alertRules)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		} else {
			t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
		}
	}
}

// TestGrafanaDashboard: deploy/grafana/dtrelay.json is valid JSON, a
// dashboard with panels, and every query (panels, rows' panels, template
// variables) uses only metrics the relay exports.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile(dashboard)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string
		Type    string
		Targets []struct{ Expr string }
		Panels  json.RawMessage
	}
	var d struct {
		Title      string
		UID        string
		Panels     []panel
		Templating struct {
			List []struct {
				Name  string
				Query any
			}
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboard, err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: no title, uid or panels", dashboard)
	}
	var exprs int
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				exprs++
				checkNames(t, "panel "+p.Title, tg.Expr)
			}
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			if len(p.Panels) > 0 {
				var sub []panel
				if err := json.Unmarshal(p.Panels, &sub); err != nil {
					t.Fatal(err)
				}
				walk(sub)
			}
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(map[string]any); ok {
			checkNames(t, "variable "+v.Name, q["query"].(string))
		}
	}
	// What issue 15 asks the dashboard to show.
	all := string(b)
	for _, m := range []string{"dtrelay_input_alerts_total", "dtrelay_source_last_alert_timestamp_seconds",
		"dtrelay_output_queue_bytes", "histogram_quantile", "dtrelay_output_delivery_latency_seconds_bucket", "dtrelay_spool_bytes"} {
		if !strings.Contains(all, m) {
			t.Errorf("the dashboard does not use %s", m)
		}
	}
	t.Logf("%d panels at the top level, %d queries", len(d.Panels), exprs)
}
