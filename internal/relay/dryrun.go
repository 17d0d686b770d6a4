package relay

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/dtrelay/dtrelay/config"
	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/parser"
)

// DryRun is `dtrelay check --route FILE`: for each line of samples (a
// Darktrace JSON payload, or a whole syslog line starting with '<'), it
// writes to w which routes the alert takes and which outputs it goes to,
// as the configuration's router decides (de-duplication included: a
// second send of one alert in the file shows as deduplicated). Nothing is
// sent anywhere. Lines are numbered from 1; empty lines are skipped.
func DryRun(cfg *config.Config, samples io.Reader, w io.Writer) error {
	outIdx, inIdx := map[string]int{}, map[string]int{}
	ro := forward.RouterOptions{Outputs: len(cfg.Outputs), Mode: cfg.RouteMode}
	for i, oc := range cfg.Outputs {
		outIdx[oc.Name] = i
		if (oc.Type == config.TypeSyslog || oc.Type == config.TypeRELP) && oc.Format == "original" {
			ro.NotJSON = append(ro.NotJSON, i)
		}
		ro.OutputDedup = append(ro.OutputDedup, dedupSpec(oc.Dedup))
		ro.OutputNames = append(ro.OutputNames, oc.Name)
	}
	for i, ic := range cfg.Inputs {
		inIdx[ic.Name] = i
	}
	routes, err := buildRoutes(cfg.Routes, inIdx, outIdx)
	if err != nil {
		return err
	}
	router, err := forward.NewRouter(routes, ro)
	if err != nil {
		return err
	}
	var (
		cls   parser.Classifier
		hdr   parser.Header
		al    parser.Alert
		fl    parser.Fields
		trace forward.RouteTrace
	)
	sc := bufio.NewScanner(samples)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	now := time.Now().UnixNano()
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimRight(sc.Bytes(), "\r")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		in := forward.RouteInput{Now: now, Fields: &fl}
		payload, app := line, []byte("darktrace")
		if line[0] == '<' {
			parser.Scan(line, &hdr)
			payload, app, in.Host = hdr.Payload.Bytes(line), hdr.App.Bytes(line), hdr.Host.Bytes(line)
		}
		in.App, in.Payload = app, payload
		if err := cls.ClassifyFields(payload, app, &al, &fl); err != nil {
			in.NotJSON, in.Fields = true, nil
			al = parser.Alert{Kind: parser.KindUnknown, Priority: parser.PriorityNone, Score: -1}
		}
		in.Kind, in.Priority, in.Score = al.Kind, al.Priority, al.Score
		mask := router.Explain(&in, &trace)
		fmt.Fprintf(w, "line %d: %s\n  -> %s\n", n, describeAlert(&in, &fl), describeRoute(&trace, mask, cfg))
	}
	return sc.Err()
}

// describeAlert is what the dry run says the alert is.
func describeAlert(in *forward.RouteInput, fl *parser.Fields) string {
	if in.NotJSON {
		return "not a JSON object (goes only to outputs with format original)"
	}
	parts := []string{in.Kind.String()}
	if len(fl.Model) > 0 {
		parts = append(parts, strconv.Quote(string(fl.Model)))
	}
	if len(fl.Category) > 0 {
		parts = append(parts, "category "+string(fl.Category))
	}
	if in.Score >= 0 {
		parts = append(parts, "score "+strconv.FormatFloat(in.Score, 'g', 4, 64))
	}
	parts = append(parts, "priority "+in.Priority.String())
	if len(in.Host) > 0 {
		parts = append(parts, "from "+string(in.Host))
	}
	if len(in.App) > 0 && string(in.App) != "darktrace" {
		parts = append(parts, "tag "+string(in.App))
	}
	return strings.Join(parts, ", ")
}

// describeRoute is where the dry run says the alert goes.
func describeRoute(t *forward.RouteTrace, mask uint64, cfg *config.Config) string {
	if t.Dropped != "" {
		return "dropped by route " + t.Dropped + " (counted dtrelay_route_filtered_total)"
	}
	var s []string
	if len(cfg.Routes) > 0 {
		if len(t.Routes) == 0 {
			s = append(s, "no route matches")
		} else {
			s = append(s, "routes "+strings.Join(t.Routes, ", "))
		}
	}
	if len(t.Deduplicated) > 0 {
		s = append(s, "duplicate for "+strings.Join(t.Deduplicated, ", "))
	}
	var outs []string
	for i, oc := range cfg.Outputs {
		if mask&(1<<uint(i)) != 0 {
			outs = append(outs, oc.Name)
		}
	}
	if len(outs) == 0 {
		s = append(s, "no output (counted filtered)")
	} else {
		s = append(s, "outputs "+strings.Join(outs, ", "))
	}
	return strings.Join(s, " -> ")
}
