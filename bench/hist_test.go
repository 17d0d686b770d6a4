package bench

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/internal/alloctest"
)

func TestHistBuckets(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	prev := -1
	for v := uint64(0); v < 5000; v++ {
		i := histIndex(v)
		if i < prev {
			t.Fatalf("index not monotonic at %d", v)
		}
		prev = i
	}
	for k := 0; k < 100000; k++ {
		v := r.Uint64() >> (r.IntN(63) + 1)
		i := histIndex(v)
		lo, hi := histLow(i), histLow(i+1)
		if v < lo || v >= hi {
			t.Fatalf("value %d in bucket %d [%d, %d)", v, i, lo, hi)
		}
		if hi-lo > 1 && float64(hi-lo)/float64(lo) > 1.0/histSub+1e-9 {
			t.Fatalf("bucket %d [%d, %d) wider than 1/%d", i, lo, hi, histSub)
		}
	}
	if i := histIndex(1<<63 - 1); i >= histBuckets {
		t.Fatalf("largest duration maps to bucket %d of %d", i, histBuckets)
	}
}

func TestHistQuantiles(t *testing.T) {
	f := func(name string, values []time.Duration, q float64, want time.Duration) {
		t.Helper()
		var h Histogram
		for _, v := range values {
			h.Record(v)
		}
		got := h.Quantile(q)
		if d := got - want; d < -want/50 || d > want/50 {
			t.Errorf("%s: q%.4g = %v, want %v ±2%%", name, q, got, want)
		}
	}
	uniform := make([]time.Duration, 0, 10000)
	for i := 1; i <= 10000; i++ {
		uniform = append(uniform, time.Duration(i)*time.Microsecond)
	}
	f("uniform p50", uniform, 0.5, 5*time.Millisecond)
	f("uniform p99", uniform, 0.99, 9900*time.Microsecond)
	f("uniform p99.9", uniform, 0.999, 9990*time.Microsecond)
	f("uniform max", uniform, 1, 10*time.Millisecond)
	// 990 fast and 10 slow: p99 is fast, p99.9 slow.
	skewed := make([]time.Duration, 0, 1000)
	for i := 0; i < 990; i++ {
		skewed = append(skewed, 2*time.Millisecond)
	}
	for i := 0; i < 10; i++ {
		skewed = append(skewed, 800*time.Millisecond)
	}
	f("skewed p99", skewed, 0.99, 2*time.Millisecond)
	f("skewed p99.9", skewed, 0.999, 800*time.Millisecond)
	f("one value", []time.Duration{42 * time.Microsecond}, 0.5, 42*time.Microsecond)
	var empty Histogram
	if empty.Quantile(0.5) != 0 || empty.Count() != 0 {
		t.Error("empty histogram not zero")
	}
	var neg Histogram
	neg.Record(-time.Second)
	if neg.Quantile(1) != 0 {
		t.Errorf("negative recorded as %v", neg.Quantile(1))
	}
}

func TestHistConcurrentAndMerge(t *testing.T) {
	var a, b Histogram
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10000; i++ {
				a.Record(time.Duration(i) * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	b.Record(time.Hour)
	b.Merge(&a)
	if a.Count() != 40000 || b.Count() != 40001 || b.Max() != time.Hour {
		t.Fatalf("counts %d %d max %v", a.Count(), b.Count(), b.Max())
	}
}

func TestHistRecordNoAlloc(t *testing.T) {
	var h Histogram
	if n := alloctest.PerRun(1000, func() { h.Record(1234567) }); n != 0 {
		t.Errorf("Record allocates %v times", n)
	}
}

func BenchmarkHistRecord(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Record(time.Duration(i))
	}
}
