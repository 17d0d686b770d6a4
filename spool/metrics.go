package spool

import (
	"github.com/VictoriaMetrics/metrics"

	"github.com/dtrelay/dtrelay/internal/promlabel"
)

// spoolMetrics are the spool's counters; gauges read the Spool on scrape.
type spoolMetrics struct {
	set                                  *metrics.Set
	corrupt, corruptBytes, dropped       *metrics.Counter
	writeErrors, appended, appendedBytes *metrics.Counter
	rejectedTooLarge                     *metrics.Counter
	blocked                              *metrics.FloatCounter
	replayed, redelivered                map[string]*metrics.Counter
	gauges                               []string
}

func newMetrics(set *metrics.Set, consumers []string) *spoolMetrics {
	m := &spoolMetrics{
		set:           set,
		corrupt:       set.GetOrCreateCounter("dtrelay_spool_corrupt_total"),
		corruptBytes:  set.GetOrCreateCounter("dtrelay_spool_corrupt_bytes_total"),
		dropped:       set.GetOrCreateCounter("dtrelay_spool_dropped_total"),
		writeErrors:   set.GetOrCreateCounter("dtrelay_spool_write_errors_total"),
		appended:      set.GetOrCreateCounter("dtrelay_spool_appended_total"),
		appendedBytes: set.GetOrCreateCounter("dtrelay_spool_appended_bytes_total"),
		blocked:       set.GetOrCreateFloatCounter("dtrelay_spool_blocked_seconds_total"),
		// A record that can never fit, refused by Append.
		rejectedTooLarge: set.GetOrCreateCounter(`dtrelay_spool_rejected_total{reason="too_large"}`),
		replayed:         make(map[string]*metrics.Counter, len(consumers)),
		redelivered:      make(map[string]*metrics.Counter, len(consumers)),
	}
	for _, c := range consumers {
		label := `{consumer="` + promlabel.Escape(c) + `"}`
		m.replayed[c] = set.GetOrCreateCounter("dtrelay_spool_replayed_total" + label)
		m.redelivered[c] = set.GetOrCreateCounter("dtrelay_spool_redelivered_total" + label)
	}
	return m
}

// registerGauges exposes the gauges of s; unregister removes them.
func (m *spoolMetrics) registerGauges(s *Spool) {
	gauge := func(name string, f func(st Stats) float64) {
		m.set.GetOrCreateGauge(name, func() float64 { return f(s.Stats()) })
		m.gauges = append(m.gauges, name)
	}
	gauge("dtrelay_spool_bytes", func(st Stats) float64 { return float64(st.Bytes) })
	// max_size: the bound of dtrelay_spool_bytes (the disk may end it sooner).
	m.set.GetOrCreateGauge("dtrelay_spool_capacity_bytes", func() float64 { return float64(s.opts.MaxSize) })
	m.gauges = append(m.gauges, "dtrelay_spool_capacity_bytes")
	gauge("dtrelay_spool_segments", func(st Stats) float64 { return float64(st.Segments) })
	gauge("dtrelay_spool_oldest_age_seconds", func(st Stats) float64 { return st.OldestAge.Seconds() })
	gauge("dtrelay_spool_blocked_appends", func(st Stats) float64 { return float64(st.Blocked) })
	m.set.GetOrCreateGauge("dtrelay_spool_unclaimed_records", func() float64 { return float64(s.unclaimedRecords()) })
	m.gauges = append(m.gauges, "dtrelay_spool_unclaimed_records")
}

func (m *spoolMetrics) unregister() {
	for _, name := range m.gauges {
		m.set.UnregisterMetric(name)
	}
	m.gauges = nil
}
