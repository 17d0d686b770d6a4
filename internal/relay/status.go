package relay

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"time"
)

// Status is what GET /api/status returns (JSON) and GET / shows (HTML):
//
//	{
//	  "version": "1.2.3", "uptime_s": 3600,
//	  "inputs":  [{"name", "protocol", "address", "connections", "alerts_total"}],
//	  "sources": [SourceStatus…, the stalest (oldest last_seen) first],
//	  "outputs": [{"name", "type", "up", "queue_bytes", "queue_capacity", "oldest_pending_s"}],
//	  "spool":   {"bytes", "capacity"} or null without a spool
//	}
//
// An input's connections are its open connections now, alerts_total the
// sum of its sources' alerts (every kind); a rate is the difference of two samples.
type Status struct {
	Version string         `json:"version"`
	UptimeS float64        `json:"uptime_s"`
	Inputs  []InputStatus  `json:"inputs"`
	Sources []SourceStatus `json:"sources"`
	Outputs []OutputState  `json:"outputs"`
	Spool   *SpoolStatus   `json:"spool"`
}

// InputStatus is one input of Status.
type InputStatus struct {
	Name        string `json:"name"`
	Protocol    string `json:"protocol"`
	Address     string `json:"address"`
	Connections int    `json:"connections"`
	AlertsTotal uint64 `json:"alerts_total"`
}

// OutputState is one output of Status.
type OutputState struct {
	Name           string  `json:"name"`
	Type           string  `json:"type"`
	Up             bool    `json:"up"`
	QueueBytes     int64   `json:"queue_bytes"`
	QueueCapacity  int64   `json:"queue_capacity"`
	OldestPendingS float64 `json:"oldest_pending_s"`
}

// SpoolStatus is the spool's use in Status.
type SpoolStatus struct {
	Bytes    int64 `json:"bytes"`
	Capacity int64 `json:"capacity"`
}

var processStart = time.Now()

// Status returns a snapshot of the relay for the status page.
func (r *Relay) Status() Status {
	st := Status{Version: Version, UptimeS: time.Since(processStart).Seconds(), Sources: r.Sources()}
	sort.SliceStable(st.Sources, func(i, j int) bool { return st.Sources[i].LastSeen.Before(st.Sources[j].LastSeen) })
	r.mu.Lock()
	for _, in := range r.ins {
		is := InputStatus{Name: in.cfg.Name, Protocol: in.cfg.Protocol, Address: in.cfg.Address}
		if in.l != nil && in.l.Addr() != nil {
			is.Address = in.l.Addr().String()
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
		st.Inputs = append(st.Inputs, is)
	}
	types := map[string]string{}
	for _, o := range r.outs {
		types[o.cfg.Name] = o.cfg.Type
	}
	r.mu.Unlock()
	if r.pipe != nil {
		for _, o := range r.pipe.OutputStatus() {
			st.Outputs = append(st.Outputs, OutputState{Name: o.Name, Type: types[o.Name], Up: o.Up, QueueBytes: o.QueueBytes,
				QueueCapacity: o.QueueCapacity, OldestPendingS: o.OldestPending.Seconds()})
		}
	}
	if r.spool != nil {
		st.Spool = &SpoolStatus{Bytes: r.spool.Stats().Bytes, Capacity: r.spool.Capacity()}
	}
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
		_ = pageTmpl.Execute(w, status())
	}
}

var pageTmpl = template.Must(template.New("status").Funcs(template.FuncMap{
	"ts": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
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
body{font:14px/1.4 system-ui,sans-serif;margin:1em 2em;color:#222;max-width:1400px}
h1{font-size:1.4em}h2{font-size:1.1em;margin:1.2em 0 .3em}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #ddd}
th{background:#f2f2f2}tr.silent td{background:#fde2e2;color:#900;font-weight:bold}
.down{color:#b00;font-weight:bold}.up{color:#070}
@media print{body{margin:0;font-size:11pt;color:#000}th{background:none}tr.silent td{background:none;text-decoration:underline}#refresh{display:none}}
</style></head><body>
<h1>dtrelay {{.Version}}</h1><p id="refresh">uptime {{printf "%.0f" .UptimeS}} s · refreshes every 5 s</p>
<div id="content">
<h2>Inputs</h2><table id="inputs"><tr><th>name</th><th>protocol</th><th>address</th><th>connections</th><th>alerts</th></tr>
{{range .Inputs}}<tr><td>{{.Name}}</td><td>{{.Protocol}}</td><td>{{.Address}}</td><td>{{.Connections}}</td><td>{{.AlertsTotal}}</td></tr>{{end}}</table>
<h2>Sources (stalest first)</h2><table id="sources"><tr><th>input</th><th>source</th><th>last seen</th><th>connections</th><th>state</th></tr>
{{range .Sources}}<tr class="{{if .Silent}}silent{{else}}ok{{end}}"><td>{{.Input}}</td><td>{{.Source}}</td><td>{{ts .LastSeen}}</td><td>{{.Connections}}</td><td>{{if .Silent}}SILENT{{else}}ok{{end}}</td></tr>{{end}}</table>
<h2>Outputs</h2><table id="outputs"><tr><th>name</th><th>type</th><th>state</th><th>queue</th><th>oldest pending</th></tr>
{{range .Outputs}}<tr><td>{{.Name}}</td><td>{{.Type}}</td><td class="{{if .Up}}up{{else}}down{{end}}">{{if .Up}}up{{else}}DOWN{{end}}</td><td>{{.QueueBytes}} / {{.QueueCapacity}} B ({{pct .QueueBytes .QueueCapacity}})</td><td>{{printf "%.1f" .OldestPendingS}} s</td></tr>{{end}}</table>
<h2>Spool</h2><p id="spool">{{with .Spool}}{{.Bytes}} / {{.Capacity}} B ({{pct .Bytes .Capacity}}){{else}}no spool{{end}}</p>
</div>
<script>
function e(s){return String(s).replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]))}
function pct(a,b){return b>0?(Math.floor(a/b*1000)/10)+' %':'-'}
function row(c,cells){return '<tr'+(c?' class="'+c+'"':'')+'>'+cells.map(x=>'<td>'+e(x)+'</td>').join('')+'</tr>'}
async function tick(){try{const s=await (await fetch('api/status')).json();
document.getElementById('inputs').innerHTML='<tr><th>name</th><th>protocol</th><th>address</th><th>connections</th><th>alerts</th></tr>'+(s.inputs||[]).map(i=>row('',[i.name,i.protocol,i.address,i.connections,i.alerts_total])).join('');
document.getElementById('sources').innerHTML='<tr><th>input</th><th>source</th><th>last seen</th><th>connections</th><th>state</th></tr>'+(s.sources||[]).map(x=>row(x.silent?'silent':'ok',[x.input,x.source,x.last_seen,x.connections,x.silent?'SILENT':'ok'])).join('');
document.getElementById('outputs').innerHTML='<tr><th>name</th><th>type</th><th>state</th><th>queue</th><th>oldest pending</th></tr>'+(s.outputs||[]).map(o=>row(o.up?'':'down',[o.name,o.type,o.up?'up':'DOWN',o.queue_bytes+' / '+o.queue_capacity+' B ('+pct(o.queue_bytes,o.queue_capacity)+')',o.oldest_pending_s.toFixed(1)+' s'])).join('');
document.getElementById('spool').textContent=s.spool?s.spool.bytes+' / '+s.spool.capacity+' B ('+pct(s.spool.bytes,s.spool.capacity)+')':'no spool';
document.getElementById('refresh').textContent='uptime '+Math.round(s.uptime_s)+' s · refreshes every 5 s';}catch(err){}}
setInterval(tick,5000);
</script></body></html>`
