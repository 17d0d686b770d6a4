package bench

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// Progress shows the current run: on a terminal a bar redrawn in place with
// the live received rate, otherwise a plain line every few seconds. Its
// methods are safe for concurrent use.
type Progress struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	every    time.Duration // plain-line period
	label    string
	sc       Scenario
	prev     Point
	lastLine time.Time
}

// NewProgress writes progress to w, as a redrawn bar when tty is true.
func NewProgress(w io.Writer, tty bool) *Progress {
	return &Progress{w: w, tty: tty, every: 2 * time.Second}
}

// Start begins a run's display.
func (p *Progress) Start(relay string, sc Scenario, round, rounds int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.label = fmt.Sprintf("[%d/%d] %-9s %s", round, rounds, relay, sc.Name())
	p.sc, p.prev, p.lastLine = sc, Point{}, time.Now()
	if !p.tty {
		fmt.Fprintf(p.w, "%s: started\n", p.label)
	}
}

// Sample updates the display with a new sample.
func (p *Progress) Sample(pt Point) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rate := 0.0
	if dt := pt.T - p.prev.T; dt > 0 && pt.Received >= p.prev.Received {
		rate = float64(pt.Received-p.prev.Received) / dt
	}
	p.prev = pt
	frac := 0.0
	switch {
	case p.sc.Duration > 0:
		frac = pt.T / p.sc.Duration.Seconds()
	case p.sc.Count > 0:
		frac = float64(pt.Sent) / float64(p.sc.Count)
	}
	frac = min(max(frac, 0), 1)
	if p.tty {
		const width = 30
		n := int(frac * width)
		fmt.Fprintf(p.w, "\r\033[K%s [%s%s] %3.0f%% %9s/s  sent %s  recv %s",
			p.label, strings.Repeat("#", n), strings.Repeat("-", width-n), frac*100, fmtNum(rate), fmtNum(float64(pt.Sent)), fmtNum(float64(pt.Received)))
		return
	}
	if time.Since(p.lastLine) >= p.every {
		p.lastLine = time.Now()
		fmt.Fprintf(p.w, "%s: %3.0f%% %s alerts/s, sent %d, received %d\n", p.label, frac*100, fmtNum(rate), pt.Sent, pt.Received)
	}
}

// End finishes a run's display with its outcome.
func (p *Progress) End(r *RunResult) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
	status := "ok"
	switch {
	case r.Error != "":
		status = "ERROR " + r.Error
	case r.Lost > 0:
		status = fmt.Sprintf("LOST %d", r.Lost)
	}
	fmt.Fprintf(p.w, "%s: %s alerts/s, %.2f µs CPU/alert, p99 %.2f ms, sent %d, received %d, %s\n",
		p.label, fmtNum(r.AlertsPerSec), r.CPUPerAlert, r.P99, r.Sent, r.Received, status)
}
