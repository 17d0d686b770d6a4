package poller

import (
	"testing"
	"time"
)

// TestDeadOutputDoesNotStallOthers (issue 13 item 3): while the Sekoia
// intake is down (503), a healthy file output keeps receiving what the
// poller polls, with or without a spool; once the intake is back it gets
// everything, once. Full length (30 s) with -poller.long.
func TestDeadOutputDoesNotStallOthers(t *testing.T) {
	for _, withSpool := range []bool{false, true} {
		name := "memory"
		if withSpool {
			name = "spool"
		}
		t.Run(name, func(t *testing.T) {
			m, rg, f, r := startOutageRun(t, true, withSpool)
			rg.intake.SetDown(true)
			time.Sleep(200 * time.Millisecond) // the poll under way may still reach the intake
			before := len(rg.fileEvents())
			time.Sleep(outage(30 * time.Second))
			during := len(rg.fileEvents()) - before
			// 10 ms per event: a file output that is not stalled gets most of them.
			if min := int(outage(30*time.Second)/(10*time.Millisecond)) / 2; during < min {
				t.Errorf("the file output got %d events during the intake's outage, want at least %d", during, min)
			}
			rg.intake.SetDown(false)
			want := f.stop()
			waitFor(t, 30*time.Second, "every event at the intake", func() bool { return rg.intake.Count() >= len(want) })
			waitFor(t, 10*time.Second, "every event in the file", func() bool { return len(rg.fileEvents()) >= len(want) })
			n := len(m.requestsTo(breachesEP, 200))
			waitFor(t, 5*time.Second, "more polls", func() bool { return len(m.requestsTo(breachesEP, 200)) >= n+3 })
			r.stop()
			rg.stop(t)
			checkOnce(t, "intake", rg.intake.Events(), want)
			checkOnce(t, "file", rg.fileEvents(), want)
		})
	}
}
