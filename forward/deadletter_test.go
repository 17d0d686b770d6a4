package forward

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fastjson"

	"github.com/dtrelay/dtrelay/forward/intaketest"
)

// TestDeadLetterLineRoundTrips: what a replay reads back from a line is the
// record that was written, payload byte for byte (an LF between JSON tokens
// read back as a space), whatever the payload holds.
func TestDeadLetterLineRoundTrips(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	for _, tc := range []struct {
		name string
		r    Record
		want string // payload read back
	}{
		{"rfc3164", *outRecord([]byte(`{"pbid":1,"model":{"name":"a \"b\" \\ c"}}`)), `{"pbid":1,"model":{"name":"a \"b\" \\ c"}}`},
		{"lf_between_tokens", *outRecord([]byte("{\"a\":1,\n\"b\":2}")), `{"a":1, "b":2}`},
		{"not_json", Record{Payload: []byte("plain \"text\"\x01,\"payload\":x"), NotJSON: true, Pri: -1}, "plain \"text\"\x01,\"payload\":x"},
		{"invalid_json", Record{Payload: []byte(`{"a":`), Pri: 13, Timestamp: []byte("2025-01-02T03:04:05Z")}, `{"a":`},
		{"host_with_payload_key", Record{Payload: []byte(`{}`), Host: []byte(`h,"payload":{`), Pri: 0, Received: at.UnixNano()}, `{}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line := appendDeadLine(nil, "sek", "oversize", at, &tc.r)
			if !bytes.HasSuffix(line, []byte("}\n")) || bytes.Count(line, []byte{'\n'}) != 1 {
				t.Fatalf("not one line: %q", line)
			}
			if err := fastjson.ValidateBytes(line[:len(line)-1]); err != nil {
				t.Fatalf("not JSON: %v: %q", err, line)
			}
			var p fastjson.Parser
			var e DeadEvent
			if err := parseDeadLine(&p, line[:len(line)-1], &e); err != nil {
				t.Fatal(err)
			}
			r := e.Record
			if string(r.Payload) != tc.want || e.Output != "sek" || e.Reason != "oversize" || !e.Time.Equal(at) ||
				r.Pri != tc.r.Pri || r.NotJSON != tc.r.NotJSON || r.Received != tc.r.Received ||
				!bytes.Equal(r.Host, tc.r.Host) || !bytes.Equal(r.App, tc.r.App) || !bytes.Equal(r.Timestamp, tc.r.Timestamp) {
				t.Fatalf("read back %+v (%+v), want %+v", r, e, tc.r)
			}
		})
	}
}

// TestDeadLetterWriterFollowsAReplay: a relay holding the file open goes on
// writing into a new file once a replay moved the old one aside, and never
// into the file being replayed.
func TestDeadLetterWriterFollowsAReplay(t *testing.T) {
	dir := t.TempDir()
	relay := NewDeadLetter(dir, "out", 1<<20)
	defer relay.Close()
	replayer := NewDeadLetter(dir, "out", 1<<20)
	if err := relay.Write(outRecord([]byte(`{"n":1}`)), "rejected_413", time.Now()); err != nil {
		t.Fatal(err)
	}
	path, leftover, err := replayer.Take()
	if err != nil || leftover || path != relay.Path()+".replay" {
		t.Fatalf("Take = %q, %v, %v", path, leftover, err)
	}
	if err := relay.Write(outRecord([]byte(`{"n":2}`)), "rejected_413", time.Now()); err != nil {
		t.Fatal(err)
	}
	taken, _ := os.ReadFile(path)
	live, _ := os.ReadFile(relay.Path())
	if bytes.Count(taken, []byte{'\n'}) != 1 || !bytes.Contains(taken, []byte(`{"n":1}`)) ||
		bytes.Count(live, []byte{'\n'}) != 1 || !bytes.Contains(live, []byte(`{"n":2}`)) {
		t.Fatalf("taken %q, live %q", taken, live)
	}
	// An interrupted replay's file comes first, as it is.
	if p2, leftover, err := replayer.Take(); err != nil || !leftover || p2 != path {
		t.Fatalf("Take = %q, %v, %v; want the leftover", p2, leftover, err)
	}
	if fi, err := os.Stat(relay.Path()); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("dead-letter file: %v, %v (want mode 0640)", fi, err)
	}
}

// TestReplaySendsAgainAndKeepsWhatIsRefused: a replay to an accepting
// intake delivers the events and empties the file; what the intake refuses
// again, or what it could not take before the replay ended, is written back
// as it was, and nothing is lost.
func TestReplaySendsAgainAndKeepsWhatIsRefused(t *testing.T) {
	in := intaketest.NewSekoiaHTTP(t, testKey)
	s, _ := newTestSekoia(t, in, SekoiaHTTPConfig{})
	dl := NewDeadLetter(filepath.Join(t.TempDir(), "dl"), "sek", 1<<20)
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
	spec := OutputSpec{Name: "sek", Encoder: s.Encoder(), Sender: s, MaxEvents: 2}
	in.RefuseContaining([]byte(`"poison"`))
	st, err := Replay(context.Background(), dl, spec, zerolog.Nop())
	if err != nil || st != (ReplayStats{Read: 6, Delivered: 5, Kept: 1}) {
		t.Fatalf("Replay = %+v, %v", st, err)
	}
	outEqualEvents(t, in.Events(), payloads)
	sum, err := Summarize(dl)
	if err != nil || sum.Events != 1 || sum.Reasons["rejected_413"] != 1 || sum.InterruptedPath != "" {
		t.Fatalf("after the replay: %+v, %v", sum, err)
	}

	// The intake is down until the replay gives up: nothing is lost.
	in.RefuseContaining(nil)
	in.SetDown(true)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if st, err := Replay(ctx, dl, spec, zerolog.Nop()); err == nil || st.Kept != 1 || st.Delivered != 0 {
		t.Fatalf("Replay to a down intake = %+v, %v", st, err)
	}
	in.SetDown(false)
	if st, err := Replay(context.Background(), dl, spec, zerolog.Nop()); err != nil || st.Delivered != 1 {
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
