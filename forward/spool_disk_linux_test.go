package forward

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/internal/testdisk"
	"github.com/dtrelay/dtrelay/spool"
)

// TestSpoolSmallDiskKeepsReading is issue 10 item 1 as the pipeline met it:
// a spool with the default 10 GiB max_size (64 MiB segments) on an 8 MiB
// disk, an output delivering from memory. Intake used to stop for good once
// the disk was full (2034 alerts read, all delivered), stop then reported
// delivered records as lost, and the next start failed. Now three times the
// disk goes through; nothing is lost, dropped or reported lost; and the
// spool opens again on that disk and keeps working.
//
// "flood" feeds as fast as it can: the output falls behind (reads the
// spool); with block, intake waits for it, with drop_oldest the disk drops
// what the output had not read, counted exactly. "keep_up" feeds a read at
// a time once the output delivered the previous one, as a relay at 1000
// alerts/s: nothing may be dropped then, whatever when_full says.
func TestSpoolSmallDiskKeepsReading(t *testing.T) {
	for _, tc := range []struct {
		whenFull string
		keepUp   bool
	}{{spool.WhenFullBlock, false}, {spool.WhenFullDropOldest, false}, {spool.WhenFullDropOldest, true}} {
		name := tc.whenFull + "/flood"
		if tc.keepUp {
			name = tc.whenFull + "/keep_up"
		}
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(testdisk.Small(t), "spool")
			opts := spool.Options{Dir: dir, MaxSize: 10 << 30, FsyncInterval: 100 * time.Millisecond, WhenFull: tc.whenFull,
				MaxRecord: SpoolRecordSize(256 << 10)}
			out := &recSender{}
			spec := OutputSpec{Name: "out", Encoder: lineEncoder{}, Sender: out, QueueSize: 1 << 20, MaxEvents: 200}
			sp, p, set := spoolPipeline(t, opts, spec)
			const n, perRead = 16000, 40 // 1.5 KB alerts: ~25 MiB on disk
			var in []string
			for i := range n {
				in = append(in, "<165>Aug  5 03:34:46 dt.example.com darktrace "+sizedAlert(i, 1500))
			}
			if tc.keepUp {
				deadline := time.Now().Add(60 * time.Second)
				for i := 0; i < n; i += perRead {
					feedWithin(t, p, in[i:i+perRead], perRead, 5*time.Second)
					for len(out.got()) < i+perRead && time.Now().Before(deadline) {
						time.Sleep(100 * time.Microsecond)
					}
				}
			} else {
				feedWithin(t, p, in, perRead, 60*time.Second)
			}
			dropped := metricInt(t, set, "dtrelay_spool_dropped_total")
			waitFor(t, "every event delivered or dropped", func() bool { return len(out.got())+dropped >= n })
			if lost := p.Stop(context.Background()); lost != 0 {
				t.Fatalf("Stop: %d lost", lost)
			}
			if err := sp.Close(); err != nil {
				t.Fatalf("spool Close (nothing is lost): %v", err)
			}
			seen := map[string]bool{}
			j := 0 // delivered in order: a subsequence of what was sent
			for _, e := range out.got() {
				if seen[e] {
					t.Fatalf("delivered twice: %.40q", e)
				}
				seen[e] = true
				for j < n && sizedAlert(j, 1500)+"\n" != e {
					j++
				}
				if j == n {
					t.Fatalf("event out of order: %.40q", e)
				}
			}
			if len(out.got())+dropped != n {
				t.Fatalf("delivered %d + dropped %d, want %d", len(out.got()), dropped, n)
			}
			if dropped > 0 && (tc.whenFull == spool.WhenFullBlock || tc.keepUp) {
				t.Fatalf("%d dropped", dropped)
			}
			t.Logf("%d delivered, %d dropped", len(out.got()), dropped)
			for _, m := range []string{`dtrelay_spool_rejected_total{reason="too_large"}`, "dtrelay_spool_unspooled_total"} {
				if v := metricInt(t, set, m); v != 0 {
					t.Errorf("%s = %d, want 0", m, v)
				}
			}

			// The next start on that disk works, and so does the spool.
			out2 := &recSender{}
			spec.Sender = out2
			sp, p, _ = spoolPipeline(t, opts, spec)
			defer sp.Close()
			feedWithin(t, p, []string{line(n)}, 1, 5*time.Second)
			waitFor(t, "an event after the restart", func() bool { return len(out2.got()) == 1 })
			p.Stop(context.Background())
			if got := out2.got(); len(got) != 1 || got[0] != fmt.Sprintf("%s\n", alert(n)) {
				t.Fatalf("after the restart: %q (nothing delivered may be replayed)", got)
			}
		})
	}
}
