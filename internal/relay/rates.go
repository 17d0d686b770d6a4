package relay

import (
	"sync"
	"time"
)

// RateWindow is the span over which the status page's input rates are
// computed: alerts per second over about the last RateWindow.
const RateWindow = 10 * time.Second

// rateEvery is the period of the rate sampler.
const rateEvery = time.Second

// rateSampler keeps, once a second, the alerts received so far by each
// input (its sources' counters, summed): the status page's rate of an
// input is the difference between now and the sample about RateWindow
// old. It reads the counters the sources table keeps anyway, once a
// second: no cost per message.
type rateSampler struct {
	mu      sync.Mutex
	samples [int(RateWindow/rateEvery) + 2]rateSample
	next    int
}

type rateSample struct {
	at     time.Time
	totals map[string]uint64 // by input
}

// add records totals taken at at.
func (s *rateSampler) add(at time.Time, totals map[string]uint64) {
	s.mu.Lock()
	s.samples[s.next] = rateSample{at: at, totals: totals}
	s.next = (s.next + 1) % len(s.samples)
	s.mu.Unlock()
}

// rate returns input's alerts per second between the sample closest to
// RateWindow before now (none older than that by more than a period) and
// total at now, and the seconds it spans; 0, 0 without a sample at least
// a period old.
func (s *rateSampler) rate(input string, total uint64, now time.Time) (float64, float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var base *rateSample
	for i := range s.samples {
		x := &s.samples[i]
		age := now.Sub(x.at)
		if x.at.IsZero() || age < rateEvery/2 || age > RateWindow+rateEvery/2 {
			continue
		}
		if base == nil || x.at.Before(base.at) {
			base = x
		}
	}
	if base == nil {
		return 0, 0
	}
	span := now.Sub(base.at).Seconds()
	old := base.totals[input] // 0 for an input added since: all it received is recent
	if total < old {
		old = 0
	}
	return float64(total-old) / span, span
}

// inputTotals returns the alerts of every kind received by each input
// since the start, summed over its sources.
func (t *sourceTable) inputTotals() map[string]uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make(map[string]uint64, len(t.inputs))
	for name, in := range t.inputs {
		var n uint64
		sum := func(s *source) {
			s.mu.Lock()
			for _, k := range s.kinds {
				n += k
			}
			s.mu.Unlock()
		}
		for _, s := range in.byName {
			sum(s)
		}
		for _, s := range in.byPeer {
			sum(s)
		}
		out[name] = n
	}
	return out
}

// runRates samples the inputs' totals every rateEvery until stop is closed.
func (r *Relay) runRates(stop <-chan struct{}) {
	r.rates.add(time.Now(), r.sources.inputTotals())
	t := time.NewTicker(rateEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			r.rates.add(now, r.sources.inputTotals())
		}
	}
}
