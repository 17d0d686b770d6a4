package receiver

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dtrelay/dtrelay/internal/alloctest"
)

var update = flag.Bool("update", false, "rewrite testdata/framing/*/want.txt and stats.txt from the Framer's output")

const framingDir = "../testdata/framing"

// recordSink keeps a copy of every frame it is given.
type recordSink struct {
	frames  [][]byte
	flushes int
}

func (r *recordSink) Frame(b []byte) { r.frames = append(r.frames, bytes.Clone(b)) }
func (r *recordSink) Flush()         { r.flushes++ }

// countSink counts frames without keeping them (allocation tests).
type countSink struct{ frames, bytes int }

func (c *countSink) Frame(b []byte) { c.frames++; c.bytes += len(b) }
func (c *countSink) Flush()         {}

// framingCase is one folder under testdata/framing: in.bin is the raw
// stream, max the optional frame size limit, want.txt the frames, stats.txt
// the counters after the end of the stream.
type framingCase struct {
	name  string
	dir   string
	in    []byte
	max   int
	want  [][]byte
	stats string
}

func loadFramingCases(t testing.TB) []framingCase {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(framingDir, "*", "in.bin"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("cannot find framing cases in %s: %v", framingDir, err)
	}
	var cases []framingCase
	for _, in := range dirs {
		dir := filepath.Dir(in)
		c := framingCase{name: filepath.Base(dir), dir: dir, max: DefaultMaxMessageSize}
		if c.in, err = os.ReadFile(in); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "max")); err == nil {
			if c.max, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
				t.Fatalf("%s/max: %v", dir, err)
			}
		}
		if b, err := os.ReadFile(filepath.Join(dir, "want.txt")); err == nil {
			if c.want, err = decodeFrames(b); err != nil {
				t.Fatalf("%s/want.txt: %v", dir, err)
			}
		} else if !*update {
			t.Fatalf("%s: %v (run with -update to create it)", dir, err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "stats.txt")); err == nil {
			c.stats = string(b)
		}
		cases = append(cases, c)
	}
	return cases
}

// encodeFrames writes one frame per line; a frame holding an LF or another
// control byte, or starting with a double quote, is written Go-quoted.
func encodeFrames(frames [][]byte) []byte {
	var b bytes.Buffer
	for _, f := range frames {
		if needsQuote(f) {
			b.WriteString(strconv.Quote(string(f)))
		} else {
			b.Write(f)
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func needsQuote(f []byte) bool {
	if len(f) > 0 && f[0] == '"' {
		return true
	}
	for _, c := range f {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return true
		}
	}
	return !utf8.Valid(f)
}

func decodeFrames(b []byte) ([][]byte, error) {
	var frames [][]byte
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		if len(line) > 0 && line[0] == '"' {
			s, err := strconv.Unquote(string(line))
			if err != nil {
				return nil, fmt.Errorf("cannot unquote %q: %w", line, err)
			}
			line = []byte(s)
		}
		frames = append(frames, line)
	}
	return frames, nil
}

func formatStats(s FramerStats) string {
	return fmt.Sprintf("frames %d\noversize %d\ntruncated %d\n", s.Frames, s.Oversize, s.Truncated)
}

// feedChunks feeds in to a new Framer in pieces cut at the given offsets and
// ends the stream; it returns the frames and stats.
func feedChunks(in []byte, max int, cuts []int) ([][]byte, FramerStats) {
	f := NewFramer(max)
	var rec recordSink
	var st FramerStats
	prev := 0
	for _, c := range append(cuts, len(in)) {
		f.Feed(in[prev:c], &rec)
		st.add(f.TakeStats())
		prev = c
	}
	f.End()
	st.add(f.TakeStats())
	return rec.frames, st
}

func diffFrames(got, want [][]byte) string {
	if len(got) != len(want) {
		return fmt.Sprintf("got %d frames, want %d:\n got: %q\nwant: %q", len(got), len(want), got, want)
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			return fmt.Sprintf("frame %d:\n got %q\nwant %q", i, got[i], want[i])
		}
	}
	return ""
}

func TestFramerGolden(t *testing.T) {
	for _, c := range loadFramingCases(t) {
		t.Run(c.name, func(t *testing.T) {
			whole, st := feedChunks(c.in, c.max, nil)
			if st.Bytes != uint64(len(c.in)) {
				t.Errorf("stats.Bytes = %d, want %d", st.Bytes, len(c.in))
			}
			if *update {
				writeGolden(t, c, whole, st)
				return
			}
			if d := diffFrames(whole, c.want); d != "" {
				t.Fatalf("fed whole: %s", d)
			}
			if got := formatStats(st); got != c.stats {
				t.Fatalf("fed whole: stats\n%s\nwant\n%s", got, c.stats)
			}
			check := func(how string, cuts []int) {
				t.Helper()
				got, gst := feedChunks(c.in, c.max, cuts)
				if d := diffFrames(got, c.want); d != "" {
					t.Fatalf("%s: %s", how, d)
				}
				if gst != st {
					t.Fatalf("%s: stats %+v, want %+v", how, gst, st)
				}
			}
			for i := 0; i <= len(c.in); i++ {
				check(fmt.Sprintf("split at %d", i), []int{i})
			}
			bytewise := make([]int, 0, len(c.in))
			for i := 1; i < len(c.in); i++ {
				bytewise = append(bytewise, i)
			}
			check("byte by byte", bytewise)
			for _, step := range []int{2, 3, 7, 64} {
				var cuts []int
				for i := step; i < len(c.in); i += step {
					cuts = append(cuts, i)
				}
				check(fmt.Sprintf("every %d bytes", step), cuts)
			}
		})
	}
}

func writeGolden(t *testing.T, c framingCase, frames [][]byte, st FramerStats) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(c.dir, "want.txt"), encodeFrames(frames), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, "stats.txt"), []byte(formatStats(st)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFramerDatagram(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want []string
		st   FramerStats
	}{
		{"one message without LF", "<165>May 14 09:24:00 h darktrace {}", 0, []string{"<165>May 14 09:24:00 h darktrace {}"}, FramerStats{Frames: 1}},
		{"one message with LF", "<165>a {}\n", 0, []string{"<165>a {}"}, FramerStats{Frames: 1}},
		{"several LF-separated", "a\r\nb\n\nc", 0, []string{"a", "b", "c"}, FramerStats{Frames: 3}},
		{"octet counted", "3 abc4 defg", 0, []string{"abc", "defg"}, FramerStats{Frames: 2}},
		{"octet count past the end", "9 abc", 0, nil, FramerStats{Truncated: 1}},
		{"digits only", "123", 0, []string{"123"}, FramerStats{Frames: 1}},
		{"oversize datagram", strings.Repeat("x", 20), 10, nil, FramerStats{Oversize: 1}},
		{"oversize octet frame", "20 abc", 10, nil, FramerStats{Oversize: 1}},
		{"oversize line then good", strings.Repeat("x", 20) + "\nok", 10, []string{"ok"}, FramerStats{Frames: 1, Oversize: 1}},
		{"blank", " \r\n\t", 0, nil, FramerStats{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFramer(tt.max)
			var rec recordSink
			f.FeedDatagram([]byte(tt.in), &rec)
			if f.Pending() {
				t.Fatal("datagram left a pending frame")
			}
			want := make([][]byte, len(tt.want))
			for i, w := range tt.want {
				want[i] = []byte(w)
			}
			if d := diffFrames(rec.frames, want); d != "" {
				t.Fatal(d)
			}
			st := f.TakeStats()
			tt.st.Bytes = uint64(len(tt.in))
			if st != tt.st {
				t.Fatalf("stats %+v, want %+v", st, tt.st)
			}
		})
	}
}

func TestFramerPending(t *testing.T) {
	f := NewFramer(16)
	var rec recordSink
	steps := []struct {
		in      string
		pending bool
	}{
		{"", false},
		{"  \n", false},
		{"12", true},   // maybe an octet count
		{" abc", true}, // octet body, 9 bytes to go
		{"defghijkl", false},
		{"partial line", true},
		{"\n", false},
		{"99 ", true}, // oversize octet frame being skipped
		{strings.Repeat("z", 99), false},
		{strings.Repeat("y", 17), true}, // oversize line being discarded
		{"\n", false},
	}
	for i, s := range steps {
		f.Feed([]byte(s.in), &rec)
		if f.Pending() != s.pending {
			t.Fatalf("step %d (%q): Pending() = %v, want %v", i, s.in, f.Pending(), s.pending)
		}
	}
	if d := diffFrames(rec.frames, [][]byte{[]byte("abcdefghijkl"), []byte("partial line")}); d != "" {
		t.Fatal(d)
	}
	if st := f.TakeStats(); st.Oversize != 2 {
		t.Fatalf("oversize = %d, want 2", st.Oversize)
	}
}

func TestFramerScratchBoundedAndReleased(t *testing.T) {
	const max = 256 << 10
	f := NewFramer(max)
	var sink countSink
	line := bytes.Repeat([]byte("a"), max)
	line = append(line, '\r', '\n')
	// A huge LF line in 1000-byte pieces: scratch grows, never past the
	// limit (plus the CR), and is released once the line is complete.
	for i := 0; i < len(line); i += 1000 {
		f.Feed(line[i:min(i+1000, len(line))], &sink)
		if cap(f.scratch) > max+1 {
			t.Fatalf("scratch cap %d > limit %d", cap(f.scratch), max+1)
		}
	}
	if sink.frames != 1 || sink.bytes != max {
		t.Fatalf("got %d frames, %d bytes; want 1 frame of %d", sink.frames, sink.bytes, max)
	}
	if cap(f.scratch) > shrinkScratchAbove {
		t.Fatalf("scratch of cap %d kept after the frame", cap(f.scratch))
	}
	// The same for an octet-counted frame.
	frame := append([]byte(strconv.Itoa(max)+" "), line[:max]...)
	for i := 0; i < len(frame); i += 777 {
		f.Feed(frame[i:min(i+777, len(frame))], &sink)
	}
	if sink.frames != 2 || cap(f.scratch) > shrinkScratchAbove {
		t.Fatalf("frames %d, scratch cap %d", sink.frames, cap(f.scratch))
	}
}

// TestFramerSplitFrameCopiesOnce checks that a frame arriving in many small
// reads is appended to the scratch buffer, not re-copied: the scratch buffer
// is reallocated only a logarithmic number of times for an LF line and
// never (beyond the first allocation) for an octet-counted frame.
func TestFramerSplitFrameCopiesOnce(t *testing.T) {
	const size = 200 << 10
	f := NewFramer(256 << 10)
	var sink countSink
	frame := append([]byte(strconv.Itoa(size)+" "), bytes.Repeat([]byte("o"), size)...)
	f.Feed(frame[:100], &sink)
	first := &f.scratch[:1][0]
	for i := 100; i < len(frame); i += 10 {
		f.Feed(frame[i:min(i+10, len(frame))], &sink)
		if f.Pending() && &f.scratch[:1][0] != first {
			t.Fatalf("octet scratch reallocated at offset %d", i)
		}
	}
	if sink.frames != 1 {
		t.Fatalf("frames = %d", sink.frames)
	}
	reallocs := 0
	var last *byte
	line := append(bytes.Repeat([]byte("l"), size), '\n')
	for i := 0; i < len(line); i += 10 {
		f.Feed(line[i:min(i+10, len(line))], &sink)
		if f.Pending() && cap(f.scratch) > 0 {
			if p := &f.scratch[:1][0]; p != last {
				reallocs++
				last = p
			}
		}
	}
	if sink.frames != 2 || reallocs > 12 {
		t.Fatalf("frames %d, scratch reallocated %d times for one line", sink.frames, reallocs)
	}
}

func TestFramerZeroAllocs(t *testing.T) {
	alert := []byte(`<165>1 2024-05-14T09:21:07+00:00 dt-master-01 darktrace - - - {"pbid":48213,"score":0.674,"model":{"name":"Anomalous Connection::Data Sent to Rare Domain"}}`)
	var stream []byte
	for range 8 {
		stream = append(stream, alert...)
		stream = append(stream, '\n')
		stream = append(stream, strconv.Itoa(len(alert))+" "...)
		stream = append(stream, alert...)
	}
	f := NewFramer(0)
	var sink countSink
	tests := []struct {
		name string
		run  func()
	}{
		{"whole", func() { f.Feed(stream, &sink) }},
		{"split in two", func() {
			f.Feed(stream[:len(stream)/2+7], &sink)
			f.Feed(stream[len(stream)/2+7:], &sink)
		}},
		{"many pieces", func() {
			for i := 0; i < len(stream); i += 61 {
				f.Feed(stream[i:min(i+61, len(stream))], &sink)
			}
		}},
		{"datagram", func() { f.FeedDatagram(alert, &sink) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run() // warm the scratch buffer
			sink.frames = 0
			if a := alloctest.PerRun(100, tt.run); a != 0 {
				t.Fatalf("%v allocations per run, want 0", a)
			}
			if sink.frames == 0 {
				t.Fatal("no frames delivered")
			}
		})
	}
}

func FuzzFramer(f *testing.F) {
	for _, c := range loadFramingCases(f) {
		f.Add(c.in, uint16(len(c.in)/2), uint16(c.max))
	}
	f.Fuzz(func(t *testing.T, in []byte, split, max uint16) {
		lim := int(max%512) + 1
		cut := int(split) % (len(in) + 1)
		whole, wst := feedChunks(in, lim, nil)
		two, tst := feedChunks(in, lim, []int{cut})
		if d := diffFrames(two, whole); d != "" {
			t.Fatalf("split at %d, max %d: %s", cut, lim, d)
		}
		if tst != wst {
			t.Fatalf("split at %d, max %d: stats %+v, want %+v", cut, lim, tst, wst)
		}
		for _, fr := range whole {
			if len(fr) == 0 || len(fr) > lim {
				t.Fatalf("frame of %d bytes with limit %d", len(fr), lim)
			}
			if isBlank(fr[0]) || isBlank(fr[len(fr)-1]) {
				t.Fatalf("frame %q not trimmed", fr)
			}
		}
		var rec recordSink
		NewFramer(lim).FeedDatagram(in, &rec)
	})
}
