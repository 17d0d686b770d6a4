package forward

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/internal/logtest"
)

// TestRecordVersion0ReadsAsBefore: the records of a spool written before
// the version byte existed (testdata/record_v0.golden, written by the
// encoder of commit 619cbf2) decode to exactly what they were given, and
// differ from the current encoding only in the version byte.
func TestRecordVersion0ReadsAsBefore(t *testing.T) {
	v0 := parseRecords(t, filepath.Join("testdata", "record_v0.golden"))
	checkDecodes(t, v0)
	for i, rec := range encodeCases(t) {
		if len(v0[i]) != len(rec) {
			t.Fatalf("%s: %d bytes in version 0, %d now", recordCases[i].name, len(v0[i]), len(rec))
		}
		for j := range rec {
			if want := rec[j]; j == recVersionOffset {
				if v0[i][j] != 0 || want != recordVersion {
					t.Errorf("%s: version byte %d in version 0, %d now", recordCases[i].name, v0[i][j], want)
				}
			} else if v0[i][j] != want {
				t.Errorf("%s: byte %d is %#x in version 0, %#x now", recordCases[i].name, j, v0[i][j], want)
			}
		}
	}
}

// TestRecordProblems: what fromDisk refuses, and why.
func TestRecordProblems(t *testing.T) {
	good := encodeCases(t)[0]
	f := func(name, want string, edit func(rec []byte) []byte) {
		t.Helper()
		rec := edit(bytes.Clone(good))
		if got := recordProblem(rec); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	same := func(rec []byte) []byte { return rec }
	f("version 1", "", same)
	f("version 0", "", func(rec []byte) []byte { rec[recVersionOffset] = 0; return rec })
	f("reserved bytes set (a change older readers may ignore)", "", func(rec []byte) []byte {
		rec[45], rec[46], rec[47] = 1, 2, 3
		return rec
	})
	f("shorter than a header", "spool_corrupt", func(rec []byte) []byte { return rec[:recHeaderSize-1] })
	f("length disagrees", "spool_corrupt", func(rec []byte) []byte { return rec[:len(rec)-1] })
	f("span past the frame", "spool_corrupt", func(rec []byte) []byte {
		rec[16] = byte(len(rec) - recHeaderSize + 1) // payload end
		return rec
	})
	// A newer version may change everything but byte 44: its version wins
	// over a length that does not add up under this build's layout.
	f("version 2", "spool_unknown_version", func(rec []byte) []byte { rec[recVersionOffset] = 2; return rec })
	f("version 255, another header size", "spool_unknown_version", func(rec []byte) []byte {
		rec[recVersionOffset], rec[0] = 255, 0
		return rec[:recVersionOffset+1]
	})
}

// fieldsEncoder writes every decoded field of a record, so that a test
// sees what an output would be given.
type fieldsEncoder struct{}

func (fieldsEncoder) Append(dst []byte, r *Record) ([]byte, error) {
	return append(dst, describeRecord(r)...), nil
}

// TestSpoolReadsVersion0Records: version-0 records, as a spool of an older
// build holds them, reach an output field for field as they were received,
// through the spool reader and fromDisk.
func TestSpoolReadsVersion0Records(t *testing.T) {
	dir := t.TempDir()
	sp := openSpool(t, dir, "out")
	defer sp.Close()
	v0 := parseRecords(t, filepath.Join("testdata", "record_v0.golden"))
	for _, rec := range v0 {
		setRecordMask(rec, 1) // output 0, the only one here
		if _, err := sp.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	s := &recSender{}
	p, _ := newSpooledPipeline(t, sp, OutputSpec{Name: "out", Encoder: fieldsEncoder{}, Sender: s, QueueSize: 1 << 20, NotJSON: true})
	waitFor(t, "the spooled records", func() bool { return len(s.got()) >= len(v0) })
	p.Stop(context.Background())
	got := s.got()
	if len(got) != len(recordCases) {
		t.Fatalf("%d records delivered, want %d", len(got), len(recordCases))
	}
	for i, c := range recordCases {
		want := c.wantRecord()
		if w := describeRecord(&want); got[i] != w {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got[i], w)
		}
	}
}

// TestSpoolUnknownVersionIsCountedLoggedAndKept: a spooled record written
// by a newer dtrelay (a version above this build's) is never forwarded: it
// is counted under its own reason, logged as a newer build's, and its
// segment is kept on disk after the spool has done with it. A record that
// does not decode is counted and logged as corrupt. The records around
// them are delivered.
func TestSpoolUnknownVersionIsCountedLoggedAndKept(t *testing.T) {
	dir := t.TempDir()
	sp := openSpool(t, dir, "out")
	defer sp.Close()
	recs := encodeCases(t)
	// Two records of the next version: one whose bytes happen to decode
	// under this build's layout (they would be forwarded wrong), one whose
	// length field disagrees with it.
	newer := bytes.Clone(recs[1])
	newer[recVersionOffset] = recordVersion + 1
	newer[0] ^= 0xff
	plausible := bytes.Clone(recs[0])
	plausible[recVersionOffset] = recordVersion + 1
	corrupt := bytes.Clone(recs[2])[:len(recs[2])-1]
	for _, rec := range [][]byte{recs[0], newer, recs[1], plausible, corrupt, recs[2]} {
		setRecordMask(rec, 1)
		if _, err := sp.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	var logs logtest.Buffer
	s := &recSender{}
	set := metrics.NewSet()
	p, err := New(Options{Inputs: []InputSpec{{Name: "tcp"}},
		Outputs:    []OutputSpec{{Name: "out", Encoder: fieldsEncoder{}, Sender: s, QueueSize: 1 << 20, NotJSON: true}},
		MaxPayload: 256 << 10, Spool: sp, Metrics: set, Log: zerolog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	dropped := func(reason string) string {
		return metric(set, `dtrelay_output_dropped_total{output="out",reason="`+reason+`"}`)
	}
	waitFor(t, "the decodable records", func() bool { return len(s.got()) >= 3 })
	waitFor(t, "the refused records counted", func() bool {
		return dropped("spool_unknown_version") == "2" && dropped("spool_corrupt") == "1"
	})
	p.Stop(context.Background())
	got := s.got()
	if len(got) != 3 {
		t.Fatalf("%d records delivered, want the 3 decodable ones:\n%s", len(got), strings.Join(got, "\n"))
	}
	for i, c := range recordCases {
		want := c.wantRecord()
		if w := describeRecord(&want); got[i] != w {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got[i], w)
		}
	}
	l := logs.String()
	for _, want := range []string{"written by a newer dtrelay", `"record_version":2`, `"max_version":1`,
		`reason=\"spool_unknown_version\"`, "kept_segment", `reason=\"spool_corrupt\"`} {
		if !strings.Contains(l, want) {
			t.Errorf("log lacks %q:\n%s", want, l)
		}
	}
	kept, err := filepath.Glob(filepath.Join(dir, "*.seg.kept"))
	if err != nil || len(kept) != 1 {
		t.Fatalf("kept segments: %v %v", kept, err)
	}
	b, err := os.ReadFile(kept[0])
	if err != nil || !bytes.Contains(b, newer) {
		t.Fatalf("the kept segment does not hold the newer record (%v)", err)
	}
}
