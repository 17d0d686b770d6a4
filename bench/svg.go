package bench

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// Chart geometry shared by the SVG charts.
const (
	chartW, chartH                 = 760, 300 // default size
	padL, padR, padT, padB float64 = 70, 150, 30, 60
)

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#7f7f7f"}

// relayColor gives each relay a stable color: dtrelay blue, rsyslog red,
// syslog-ng green, the copy reference gray.
func relayColor(name string, i int) string {
	switch name {
	case "dtrelay":
		return palette[0]
	case "rsyslog":
		return palette[1]
	case "syslog-ng":
		return palette[2]
	case "copy":
		return palette[6]
	}
	return palette[3+i%3]
}

// niceMax rounds v up to a round number (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8
// times a power of ten).
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// fmtNum formats an axis or bar label compactly (12k, 1.5M).
func fmtNum(v float64) string {
	switch {
	case v >= 1e6:
		return trimZero(fmt.Sprintf("%.1f", v/1e6)) + "M"
	case v >= 1e4:
		return trimZero(fmt.Sprintf("%.0f", v/1e3)) + "k"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 1:
		return trimZero(fmt.Sprintf("%.1f", v))
	}
	return trimZero(fmt.Sprintf("%.3f", v))
}

func trimZero(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

type series struct {
	name  string
	color string
	xs    []float64
	ys    []float64
}

// lineChart draws series as lines over a linear x axis from 0.
func lineChart(b *strings.Builder, title, xLabel, yLabel string, ss []series) {
	var xMax, yMax float64
	for _, s := range ss {
		for i := range s.xs {
			xMax, yMax = math.Max(xMax, s.xs[i]), math.Max(yMax, s.ys[i])
		}
	}
	xMax, yMax = niceMax(xMax), niceMax(yMax)
	pw, ph := chartW-padL-padR, chartH-padT-padB
	w := float64(chartW)
	x := func(v float64) float64 { return padL + v/xMax*pw }
	y := func(v float64) float64 { return padT + ph - v/yMax*ph }
	svgOpen(b, title, w)
	for i := 0; i <= 5; i++ {
		v := yMax * float64(i) / 5
		fmt.Fprintf(b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.0f" y="%.1f" text-anchor="end" class="ax">%s</text>`,
			padL, padL+pw, y(v), y(v), padL-6, y(v)+4, fmtNum(v))
		xv := xMax * float64(i) / 5
		fmt.Fprintf(b, `<text x="%.1f" y="%.0f" text-anchor="middle" class="ax">%s</text>`, x(xv), padT+ph+16, fmtNum(xv))
	}
	axisLabels(b, xLabel, yLabel, w)
	for i, s := range ss {
		var pts strings.Builder
		for j := range s.xs {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(s.xs[j]), y(s.ys[j]))
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, s.color, pts.String())
		legend(b, i, s.name, s.color, w)
	}
	b.WriteString("</svg>\n")
}

type barGroup struct {
	label  string
	values []float64 // one per series, NaN for none
}

// barChart draws grouped vertical bars: one group per label, one bar per
// series name. With logScale the y axis is logarithmic.
func barChart(b *strings.Builder, title, yLabel string, names, colors []string, groups []barGroup, logScale bool) {
	var yMax, yMin = 0.0, math.Inf(1)
	for _, g := range groups {
		for _, v := range g.values {
			if !math.IsNaN(v) {
				yMax = math.Max(yMax, v)
				if v > 0 {
					yMin = math.Min(yMin, v)
				}
			}
		}
	}
	// Wide enough for every bar and a two-line group label.
	w := math.Max(chartW, padL+padR+float64(len(groups)*(len(names)*20+36)))
	pw, ph := w-padL-padR, chartH-padT-padB
	var y func(float64) float64
	var ticks []float64
	if logScale {
		// A decade below the smallest bar when it sits near a power of
		// ten, so every bar shows.
		lo := math.Pow(10, math.Floor(math.Log10(math.Min(yMin, yMax)/2)))
		if math.IsInf(yMin, 1) || lo <= 0 {
			lo = 0.001
		}
		hi := math.Pow(10, math.Ceil(math.Log10(math.Max(yMax, lo*10))))
		y = func(v float64) float64 {
			v = math.Max(v, lo)
			return padT + ph - math.Log10(v/lo)/math.Log10(hi/lo)*ph
		}
		for t := lo; t <= hi*1.0001; t *= 10 {
			ticks = append(ticks, t)
		}
	} else {
		yMax = niceMax(yMax)
		y = func(v float64) float64 { return padT + ph - v/yMax*ph }
		for i := 0; i <= 5; i++ {
			ticks = append(ticks, yMax*float64(i)/5)
		}
	}
	svgOpen(b, title, w)
	for _, t := range ticks {
		fmt.Fprintf(b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.0f" y="%.1f" text-anchor="end" class="ax">%s</text>`,
			padL, padL+pw, y(t), y(t), padL-6, y(t)+4, fmtNum(t))
	}
	axisLabels(b, "", yLabel, w)
	gw := pw / float64(max(len(groups), 1))
	bw := gw * 0.8 / float64(max(len(names), 1))
	for gi, g := range groups {
		gx := padL + float64(gi)*gw + gw*0.1
		for si, v := range g.values {
			if math.IsNaN(v) {
				continue
			}
			top := y(v)
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s</title></rect>`,
				gx+float64(si)*bw, top, bw*0.92, padT+ph-top, colors[si], html.EscapeString(g.label), html.EscapeString(names[si]), fmtNum(v))
			if bw >= 22 {
				fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" class="val">%s</text>`, gx+float64(si)*bw+bw*0.46, top-3, fmtNum(v))
			}
		}
		// "tcp->https 1.5KB c4" on two lines: route, then size and conns.
		l1, l2, _ := strings.Cut(g.label, " ")
		fmt.Fprintf(b, `<text x="%.1f" y="%.0f" text-anchor="middle" class="ax">%s<tspan x="%.1f" dy="13">%s</tspan></text>`,
			gx+gw*0.4, padT+ph+16, html.EscapeString(l1), gx+gw*0.4, html.EscapeString(l2))
	}
	for i, n := range names {
		legend(b, i, n, colors[i], w)
	}
	b.WriteString("</svg>\n")
}

func svgOpen(b *strings.Builder, title string, w float64) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%d" viewBox="0 0 %.0f %d" role="img">`, w, chartH, w, chartH)
	fmt.Fprintf(b, `<text x="%.0f" y="18" class="title">%s</text>`, padL, html.EscapeString(title))
	fmt.Fprintf(b, `<line x1="%.0f" x2="%.0f" y1="%.0f" y2="%.0f" stroke="#333"/>`, padL, padL, padT, chartH-padB)
	fmt.Fprintf(b, `<line x1="%.0f" x2="%.0f" y1="%.0f" y2="%.0f" stroke="#333"/>`, padL, w-padR, chartH-padB, chartH-padB)
}

func axisLabels(b *strings.Builder, xLabel, yLabel string, w float64) {
	if xLabel != "" {
		fmt.Fprintf(b, `<text x="%.0f" y="%.0f" text-anchor="middle" class="ax">%s</text>`, padL+(w-padL-padR)/2, chartH-padB+36, html.EscapeString(xLabel))
	}
	fmt.Fprintf(b, `<text transform="translate(16 %.0f) rotate(-90)" text-anchor="middle" class="ax">%s</text>`, padT+(chartH-padT-padB)/2, html.EscapeString(yLabel))
}

func legend(b *strings.Builder, i int, name, color string, w float64) {
	ly := padT + 10 + float64(i)*20
	fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="12" height="12" fill="%s"/><text x="%.0f" y="%.0f" class="ax">%s</text>`,
		w-padR+14, ly-10, color, w-padR+32, ly, html.EscapeString(name))
}
