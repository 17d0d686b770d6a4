package relay

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/dtrelay/dtrelay/config"
)

// Status is what GET /api/status returns (JSON) and GET / shows (HTML):
//
//	{
//	  "version": "1.2.3", "uptime_s": 3600,
//	  "inputs":  [{"name", "protocol", "address", "connections", "alerts_total",
//	               "alerts_per_s", "rate_window_s"}],
//	  "sources": [SourceStatus…, the stalest (oldest last_seen) first],
//	  "outputs": [{"name", "type", "up", "queue_bytes", "queue_capacity", "oldest_pending_s",
//	               "last_error", "last_error_at"}],
//	  "spool":   {"bytes", "capacity"} or null without a spool,
//	  "warnings": [{"time", "level", "message", "fields"}, the latest first, at most 10],
//	  "warnings_total": 12
//	}
//
// An input's connections are its open connections now, alerts_total the
// sum of its sources' alerts (every kind) since the start, alerts_per_s
// their rate over the last rate_window_s seconds (about 10; 0 in the first
// second). An output's last_error is the text of its last failed delivery
// attempt, with every secret of the configuration redacted ("[redacted]"),
// and last_error_at when it failed (both absent while it never failed;
// they stay after it recovers: "up" says how it is now). warnings are the
// last warn-level (or worse) log events, redacted likewise: "fields" is
// the event's other fields as key=value pairs; warnings_total counts them
// all since the start.
type Status struct {
	Version       string         `json:"version"`
	UptimeS       float64        `json:"uptime_s"`
	Inputs        []InputStatus  `json:"inputs"`
	Sources       []SourceStatus `json:"sources"`
	Outputs       []OutputState  `json:"outputs"`
	Spool         *SpoolStatus   `json:"spool"`
	Warnings      []Warning      `json:"warnings"`
	WarningsTotal uint64         `json:"warnings_total"`
}

// InputStatus is one input of Status.
type InputStatus struct {
	Name        string  `json:"name"`
	Protocol    string  `json:"protocol"`
	Address     string  `json:"address"`
	Connections int     `json:"connections"`
	AlertsTotal uint64  `json:"alerts_total"`
	AlertsPerS  float64 `json:"alerts_per_s"`
	RateWindowS float64 `json:"rate_window_s"`
}

// OutputState is one output of Status.
type OutputState struct {
	Name           string    `json:"name"`
	Type           string    `json:"type"`
	Up             bool      `json:"up"`
	QueueBytes     int64     `json:"queue_bytes"`
	QueueCapacity  int64     `json:"queue_capacity"`
	OldestPendingS float64   `json:"oldest_pending_s"`
	LastError      string    `json:"last_error,omitempty"`
	LastErrorAt    time.Time `json:"last_error_at,omitzero"`
}

// SpoolStatus is the spool's use in Status.
type SpoolStatus struct {
	Bytes    int64 `json:"bytes"`
	Capacity int64 `json:"capacity"`
}

// maxErrorText bounds an output's last error as shown, after redaction.
const maxErrorText = 500

var processStart = time.Now()

// setSecrets adds the secrets of cfg to those redacted from the status:
// at Start, and under r.mu at each reload.
func (r *Relay) setSecrets(cfg *config.Config) {
	s, src := secretsOf(cfg, r.secretSrc)
	r.secretSrc = src
	r.secrets.Store(s)
	r.warnings.setSecrets(s)
}

// Status returns a snapshot of the relay for the status page.
func (r *Relay) Status() Status {
	now := time.Now()
	sec := r.secrets.Load()
	st := Status{Version: Version, UptimeS: time.Since(processStart).Seconds(), Sources: r.Sources()}
	sort.SliceStable(st.Sources, func(i, j int) bool { return st.Sources[i].LastSeen.Before(st.Sources[j].LastSeen) })
	r.mu.Lock()
	for _, in := range r.ins {
		is := InputStatus{Name: in.cfg.Name, Protocol: in.cfg.Protocol, Address: in.cfg.Address}
		if in.l != nil && in.l.Addr() != nil {
			is.Address = in.l.Addr().String()
		}
		if in.cfg.Protocol == config.ProtocolDarktraceAPI {
			is.Address = pollerSource(in.cfg) // no path or query: they may carry a token
		}
		if m := r.inMetrics[is.Name]; m != nil {
			is.Connections = m.Connections()
		}
		for _, s := range st.Sources {
			if s.Input == is.Name {
				for _, n := range s.Alerts {
					is.AlertsTotal += n
				}
			}
		}
		is.AlertsPerS, is.RateWindowS = r.rates.rate(is.Name, is.AlertsTotal, now)
		st.Inputs = append(st.Inputs, is)
	}
	types := map[string]string{}
	for _, o := range r.outs {
		types[o.cfg.Name] = o.cfg.Type
	}
	r.mu.Unlock()
	if r.pipe != nil {
		for _, o := range r.pipe.OutputStatus() {
			os := OutputState{Name: o.Name, Type: types[o.Name], Up: o.Up, QueueBytes: o.QueueBytes,
				QueueCapacity: o.QueueCapacity, OldestPendingS: o.OldestPending.Seconds(), LastErrorAt: o.LastErrorAt}
			if o.LastError != "" {
				os.LastError, _ = sec.Cut(o.LastError, maxErrorText)
			}
			st.Outputs = append(st.Outputs, os)
		}
	}
	if r.spool != nil {
		st.Spool = &SpoolStatus{Bytes: r.spool.Stats().Bytes, Capacity: r.spool.Capacity()}
	}
	st.Warnings, st.WarningsTotal = r.warnings.Last()
	return st
}

func statusJSON(status func() Status) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(status())
	}
}

func statusPage(status func() Status) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/" {
			http.NotFound(w, req)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = pageTmpl.Execute(w, newPage(status()))
	}
}

// page is what the page's template renders: the status, when, and the
// counts of its summary line.
type page struct {
	Status
	Now          time.Time
	Silent, Down int
}

func newPage(st Status) page {
	p := page{Status: st, Now: time.Now()}
	for _, s := range st.Sources {
		if s.Silent {
			p.Silent++
		}
	}
	for _, o := range st.Outputs {
		if !o.Up {
			p.Down++
		}
	}
	return p
}

var pageTmpl = template.Must(template.New("status").Funcs(template.FuncMap{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"ago": func(now, t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return max(now.Sub(t), 0).Round(time.Second).String()
	},
	"dur": func(s float64) string { return (time.Duration(s) * time.Second).String() },
	"sum": func(m map[string]uint64) uint64 {
		var n uint64
		for _, v := range m {
			n += v
		}
		return n
	},
	"join":  func(l []string) string { return strings.Join(l, ", ") },
	"bytes": humanBytes,
	"pct": func(a, b int64) string {
		if b <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f %%", float64(a)/float64(b)*100)
	},
}).Parse(pageHTML))

// withStatus serves the status page at / and its JSON at /api/status,
// everything else by h.
func withStatus(h http.Handler, status func() Status) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/status", statusJSON(status))
	mux.HandleFunc("GET /{$}", statusPage(status))
	mux.Handle("/", h)
	return mux
}

const pageHTML = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>dtrelay status</title>
<meta name="viewport" content="width=device-width">
<style>
*{box-sizing:border-box}
body{font:13px/1.35 system-ui,sans-serif;margin:12px 20px;color:#222;background:#fff}
header{display:flex;align-items:baseline;gap:1.5em;flex-wrap:wrap;border-bottom:2px solid #333;padding-bottom:4px}
h1{font-size:1.35em;margin:0}h2{font-size:1.05em;margin:14px 0 4px}
#summary{display:flex;gap:8px;flex-wrap:wrap;margin:8px 0 0}
#summary span{border:1px solid #ccc;border-radius:4px;padding:3px 10px;background:#f7f7f7}
#summary span.bad{border-color:#c00;background:#fde2e2;color:#900;font-weight:bold}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:2px 8px;border-bottom:1px solid #ddd;vertical-align:top;white-space:nowrap}
th{background:#f0f0f0;font-weight:600;white-space:nowrap}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.t{white-space:nowrap;font-variant-numeric:tabular-nums}
td.wrap{white-space:normal;overflow-wrap:anywhere}
td.err{white-space:normal;overflow-wrap:anywhere;color:#900;font-family:ui-monospace,monospace;font-size:12px;width:50%}
tr.silent td{background:#fde2e2;color:#900;font-weight:bold}
.down{color:#b00;font-weight:bold}.up{color:#070}
tr.warn td.lvl{color:#a60}tr.error td.lvl,tr.fatal td.lvl,tr.panic td.lvl{color:#b00;font-weight:bold}
.muted{color:#777}
@media print{
 body{margin:0;font-size:10pt;color:#000}
 #refresh{display:none}
 th{background:none;border-bottom:1.5px solid #000}
 #summary span{background:none;border-color:#000}
 #summary span.bad,tr.silent td{background:none;color:#000;text-decoration:underline}
 td.err{color:#000}
 tr{break-inside:avoid}h2{break-after:avoid}
}
</style></head><body>
<div id="content">
<header><h1>dtrelay {{.Version}}</h1><span>up {{dur .UptimeS}} · {{ts .Now}}</span><span id="refresh" class="muted">refreshes every 5 s</span></header>
<div id="summary"><span>{{len .Inputs}} input(s)</span><span{{if .Silent}} class="bad"{{end}} id="sum-sources">{{len .Sources}} source(s), {{.Silent}} silent</span><span{{if .Down}} class="bad"{{end}} id="sum-outputs">{{len .Outputs}} output(s), {{.Down}} down</span><span>{{.WarningsTotal}} warning(s) since start</span></div>
<h2>Inputs</h2><table id="inputs"><tr><th>name</th><th>protocol</th><th>address</th><th class="n">connections</th><th class="n">alerts</th><th class="n">alerts/s</th></tr>
{{range .Inputs}}<tr><td>{{.Name}}</td><td>{{.Protocol}}</td><td>{{.Address}}</td><td class="n">{{.Connections}}</td><td class="n">{{.AlertsTotal}}</td><td class="n" title="over the last {{printf "%.0f" .RateWindowS}} s">{{printf "%.2f" .AlertsPerS}}</td></tr>{{end}}</table>
<h2>Sources (stalest first)</h2><table id="sources"><tr><th>input</th><th>source</th><th>last seen</th><th class="n">ago</th><th class="n">alerts</th><th class="n">connections</th><th>peers</th><th>state</th></tr>
{{range .Sources}}<tr class="{{if .Silent}}silent{{else}}ok{{end}}"><td>{{.Input}}</td><td>{{.Source}}</td><td class="t">{{ts .LastSeen}}</td><td class="n">{{ago $.Now .LastSeen}}</td><td class="n">{{sum .Alerts}}</td><td class="n">{{.Connections}}</td><td class="wrap">{{join .Peers}}</td><td>{{if .Silent}}SILENT{{else}}ok{{end}}</td></tr>{{end}}</table>
<h2>Outputs</h2><table id="outputs"><tr><th>name</th><th>type</th><th>state</th><th class="n">queue</th><th class="n">oldest pending</th><th>last error</th><th>at</th></tr>
{{range .Outputs}}<tr><td>{{.Name}}</td><td>{{.Type}}</td><td class="{{if .Up}}up{{else}}down{{end}}">{{if .Up}}up{{else}}DOWN{{end}}</td><td class="n">{{bytes .QueueBytes}} / {{bytes .QueueCapacity}} ({{pct .QueueBytes .QueueCapacity}})</td><td class="n">{{printf "%.1f" .OldestPendingS}} s</td>{{if .LastError}}<td class="err">{{.LastError}}</td><td class="t">{{ts .LastErrorAt}}</td>{{else}}<td class="muted">none</td><td></td>{{end}}</tr>{{end}}</table>
<h2>Spool</h2><p id="spool">{{with .Spool}}{{bytes .Bytes}} / {{bytes .Capacity}} ({{pct .Bytes .Capacity}}){{else}}no spool{{end}}</p>
<h2>Last warnings (latest first)</h2>{{if .Warnings}}<table id="warnings"><tr><th>time</th><th>level</th><th>message</th><th>fields</th></tr>
{{range .Warnings}}<tr class="{{.Level}}"><td class="t">{{ts .Time}}</td><td class="lvl">{{.Level}}</td><td class="wrap">{{.Message}}</td><td class="err">{{.Fields}}</td></tr>{{end}}</table>{{else}}<p id="warnings" class="muted">none since the start</p>{{end}}
</div>
<script>
// Refresh: fetch this page again and swap its content (server-rendered; no framework).
setInterval(async()=>{try{const r=await fetch(location.pathname,{cache:'no-store'});if(!r.ok)return;
const d=new DOMParser().parseFromString(await r.text(),'text/html');const c=d.getElementById('content');
if(c)document.getElementById('content').replaceWith(c);}catch(e){}},5000);
</script></body></html>`

// humanBytes shows n bytes in B, KiB, MiB or GiB.
func humanBytes(n int64) string {
	const k = 1024
	switch {
	case n < k:
		return fmt.Sprintf("%d B", n)
	case n < k*k:
		return fmt.Sprintf("%.1f KiB", float64(n)/k)
	case n < k*k*k:
		return fmt.Sprintf("%.1f MiB", float64(n)/(k*k))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(k*k*k))
}
