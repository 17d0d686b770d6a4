package forward

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/valyala/fastjson"
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
		{"rfc3164", *testRecord([]byte(`{"pbid":1,"model":{"name":"a \"b\" \\ c"}}`)), `{"pbid":1,"model":{"name":"a \"b\" \\ c"}}`},
		{"lf_between_tokens", *testRecord([]byte("{\"a\":1,\n\"b\":2}")), `{"a":1, "b":2}`},
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
	if err := relay.Write(testRecord([]byte(`{"n":1}`)), "rejected_413", time.Now()); err != nil {
		t.Fatal(err)
	}
	path, leftover, err := replayer.Take()
	if err != nil || leftover || path != relay.Path()+".replay" {
		t.Fatalf("Take = %q, %v, %v", path, leftover, err)
	}
	if err := relay.Write(testRecord([]byte(`{"n":2}`)), "rejected_413", time.Now()); err != nil {
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

// testRecord returns a record as the pipeline would give it for an RFC 3164
// line from a Darktrace master carrying payload.
func testRecord(payload []byte) *Record {
	raw := append([]byte("<165>Aug  5 03:34:46 dt-master darktrace "), payload...)
	return &Record{
		Raw:      raw,
		Payload:  raw[len(raw)-len(payload):],
		Host:     raw[21:30],
		App:      raw[31:40],
		Pri:      165,
		Received: time.Date(2024, 8, 5, 3, 34, 46, 123_456_789, time.UTC).UnixNano(),
	}
}
