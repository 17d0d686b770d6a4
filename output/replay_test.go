package output

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/internal/intaketest"
)

// TestReplaySendsAgainAndKeepsWhatIsRefused: a replay to an accepting
// intake delivers the events and empties the file; what the intake refuses
// again, or what it could not take before the replay ended, is written back
// as it was, and nothing is lost.
func TestReplaySendsAgainAndKeepsWhatIsRefused(t *testing.T) {
	in := intaketest.NewSekoiaHTTP(t, testKey)
	s, _ := newTestSekoia(t, in, SekoiaHTTPConfig{})
	dl := forward.NewDeadLetter(filepath.Join(t.TempDir(), "dl"), "sek", 1<<20)
	payloads := outAlerts(5, 400)
	poison := []byte(`{"poison":1}`)
	for _, p := range append(payloads, poison) {
		if err := dl.Write(outRecord(p), "rejected_413", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(dl.Path()+".tmp", nil, 0o600); err != nil { // unrelated files stay
		t.Fatal(err)
	}
	spec := forward.OutputSpec{Name: "sek", Encoder: s.Encoder(), Sender: s, MaxEvents: 2}
	in.RefuseContaining([]byte(`"poison"`))
	st, err := forward.Replay(context.Background(), dl, spec, zerolog.Nop())
	if err != nil || st != (forward.ReplayStats{Read: 6, Delivered: 5, Kept: 1}) {
		t.Fatalf("Replay = %+v, %v", st, err)
	}
	outEqualEvents(t, in.Events(), payloads)
	sum, err := forward.Summarize(dl)
	if err != nil || sum.Events != 1 || sum.Reasons["rejected_413"] != 1 || sum.InterruptedPath != "" {
		t.Fatalf("after the replay: %+v, %v", sum, err)
	}

	// The intake is down until the replay gives up: nothing is lost.
	in.RefuseContaining(nil)
	in.SetDown(true)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if st, err := forward.Replay(ctx, dl, spec, zerolog.Nop()); err == nil || st.Kept != 1 || st.Delivered != 0 {
		t.Fatalf("Replay to a down intake = %+v, %v", st, err)
	}
	in.SetDown(false)
	if st, err := forward.Replay(context.Background(), dl, spec, zerolog.Nop()); err != nil || st.Delivered != 1 {
		t.Fatalf("Replay = %+v, %v", st, err)
	}
	outEqualEvents(t, in.Events(), append(payloads, poison))
	if _, err := os.Stat(dl.Path()); !os.IsNotExist(err) {
		t.Fatalf("dead-letter file still there: %v", err)
	}
	if _, err := os.Stat(dl.Path() + ".replay"); !os.IsNotExist(err) {
		t.Fatalf("replay file left: %v", err)
	}
}
