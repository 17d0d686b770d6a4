package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	syslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/rfc3164"
	"github.com/leodido/go-syslog/v4/rfc5424"
	"github.com/valyala/fastjson"

	"github.com/dtrelay/dtrelay/internal/alloctest"
)

// shapeKeys are the top-level keys that tell each family apart (DESIGN.md §2).
var shapeKeys = map[Family][]string{
	FamilyModelBreach:  {"pbid", "model", "triggeredComponents", "score", "time"},
	FamilyTest:         {"pbid", "model", "triggeredComponents", "score", "time"},
	FamilyAIAnalyst:    {"aiaScore", "summariser", "id", "createdAt", "category"},
	FamilyAntigena:     {"iris-event-type"},
	FamilySystemStatus: {"alert_name", "priority_level", "last_updated"},
	FamilyEmail:        {"direction", "anomaly_score"},
	FamilyAudit:        {"username", "endpoint"},
}

func TestTemplateEveryFamilyAndSize(t *testing.T) {
	var p fastjson.Parser
	for _, f := range Families() {
		for _, size := range []int{400, 500, 1500, 4000, 14000, 100000} {
			tp, err := NewTemplate(f, size)
			if err != nil {
				t.Fatalf("NewTemplate(%s, %d): %v", f, size, err)
			}
			alert := tp.Append(nil, 1234567, 1700000000123456789)
			if d := len(alert) - size; d < -size/50-2 || d > size/50+2 {
				t.Errorf("%s at %d bytes: got %d bytes", f, size, len(alert))
			}
			v, err := p.ParseBytes(alert)
			if err != nil {
				t.Fatalf("%s at %d bytes is not JSON: %v\n%s", f, size, err, alert)
			}
			if !bytes.HasPrefix(alert, []byte(`{"dtbench_seq":1234567,"dtbench_ts":1700000000123456789,`)) {
				t.Errorf("%s: fields not first: %.80s", f, alert)
			}
			for _, k := range shapeKeys[f] {
				if !v.Exists(k) {
					t.Errorf("%s at %d bytes lacks %q", f, size, k)
				}
			}
			if f == FamilyTest && string(v.GetStringBytes("model", "name")) != "Unrestricted Test Model" {
				t.Errorf("test alert model name %q", v.GetStringBytes("model", "name"))
			}
			if f == FamilyModelBreach && v.GetInt("pbid") != 1234567 {
				t.Errorf("pbid %d, want the sequence number", v.GetInt("pbid"))
			}
		}
	}
}

func TestTemplateSizeLimits(t *testing.T) {
	for _, size := range []int{0, MinAlertSize - 1, MaxAlertSize + 1} {
		if _, err := NewTemplate(FamilyEmail, size); err == nil {
			t.Errorf("NewTemplate(size %d) succeeded", size)
		}
	}
}

func TestGeneratorUniqueAndMixed(t *testing.T) {
	g, err := NewGenerator(DefaultMix(), 500, 14000)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	seen := map[string]bool{}
	fams := map[Family]int{}
	var buf []byte
	for seq := uint64(0); seq < n; seq++ {
		buf = g.Append(buf[:0], seq, int64(seq)*1000)
		got, ts, ok := ScanAlert(buf)
		if !ok || got != seq || ts != int64(seq)*1000 {
			t.Fatalf("ScanAlert = %d, %d, %v; want %d", got, ts, ok, seq)
		}
		if seen[string(buf)] {
			t.Fatalf("alert %d repeats an earlier one", seq)
		}
		seen[string(buf)] = true
		fams[g.Pick(seq).Family]++
	}
	for f, w := range DefaultMix() {
		want := float64(n) * float64(w) / 100
		if got := float64(fams[f]); got < want*0.8-20 || got > want*1.2+20 {
			t.Errorf("%s: %v alerts, want about %v", f, got, want)
		}
	}
	if m := g.MeanSize(); m < 500 || m > 14000 {
		t.Errorf("mean size %v out of range", m)
	}
}

func TestAppendUUIDUnique(t *testing.T) {
	seen := map[string]bool{}
	for seq := uint64(0); seq < 5000; seq++ {
		u := string(appendUUID(nil, seq*7919))
		if len(u) != 36 || u[8] != '-' || u[13] != '-' || u[18] != '-' || u[23] != '-' || seen[u] {
			t.Fatalf("bad or repeated uuid %q", u)
		}
		seen[u] = true
	}
}

func TestParseMix(t *testing.T) {
	f := func(in string, want Mix, ok bool) {
		t.Helper()
		got, err := ParseMix(in)
		if (err == nil) != ok {
			t.Fatalf("ParseMix(%q) error %v", in, err)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("ParseMix(%q)[%s] = %d, want %d", in, k, got[k], v)
			}
		}
	}
	f("model_breach=3,email", Mix{FamilyModelBreach: 3, FamilyEmail: 1}, true)
	f("all", Mix{FamilyAudit: 1, FamilyTest: 1}, true)
	f("", DefaultMix(), true)
	f("nope=1", nil, false)
	f("email=-1", nil, false)
	if _, err := NewGenerator(Mix{FamilyEmail: 0}, 1000, 1000); err == nil {
		t.Error("NewGenerator with an empty mix succeeded")
	}
}

func TestTemplateAppendNoAlloc(t *testing.T) {
	tp, _ := NewTemplate(FamilyAIAnalyst, 4000)
	buf := make([]byte, 0, 8192)
	if a := alloctest.PerRun(100, func() { buf = tp.Append(buf[:0], 99, 1) }); a != 0 {
		t.Errorf("Template.Append allocates %v times", a)
	}
}

// TestMessagesParse checks both header styles against go-syslog's strict
// parsers, and the octet-counted framing's length.
func TestMessagesParse(t *testing.T) {
	g, _ := NewGenerator(Mix{FamilyModelBreach: 1, FamilyAudit: 1}, 1500, 1500)
	now := time.Date(2024, 3, 5, 3, 4, 5, 0, time.Local)
	for _, style := range []HeaderStyle{Header3164, Header5424} {
		var parser syslog.Machine
		if style == Header3164 {
			parser = rfc3164.NewParser(rfc3164.WithYear(rfc3164.CurrentYear{}))
		} else {
			parser = rfc5424.NewParser()
		}
		b := NewMessageBuilder(g, style, FramingOctet)
		for seq := uint64(0); seq < 40; seq++ {
			framed := b.AppendFramed(nil, seq, now)
			sp := bytes.IndexByte(framed, ' ')
			n, _ := strconv.Atoi(string(framed[:sp]))
			msg := framed[sp+1:]
			if n != len(msg) {
				t.Fatalf("octet count %d for %d bytes", n, len(msg))
			}
			m, err := parser.Parse(msg)
			if err != nil {
				t.Fatalf("%s: %v\n%.120s", style, err, msg)
			}
			base := baseOf(m)
			app := g.Pick(seq).Family.App()
			payload := *base.Message
			if style == Header3164 {
				// Darktrace's tag has no colon: a strict RFC 3164 parser
				// leaves it at the start of the message.
				var ok bool
				if payload, ok = strings.CutPrefix(payload, app+" "); !ok {
					t.Fatalf("RFC 3164 message does not start with tag %q: %.40q", app, payload)
				}
			} else if *base.Appname != app {
				t.Errorf("RFC 5424 app %q, want %q", *base.Appname, app)
			}
			if *base.Hostname != Host || *base.Priority != 165 {
				t.Errorf("%s header: host %q pri %d", style, *base.Hostname, *base.Priority)
			}
			if err := fastjson.Validate(payload); err != nil || !fastjson.Exists([]byte(payload), "dtbench_seq") {
				t.Errorf("%s message is not the JSON alert (%v): %.60s", style, err, payload)
			}
		}
		lf := NewMessageBuilder(g, style, FramingLF).AppendFramed(nil, 1, now)
		if lf[len(lf)-1] != '\n' || bytes.Count(lf, []byte{'\n'}) != 1 {
			t.Errorf("LF framing: %q", lf[len(lf)-20:])
		}
	}
	m3164 := NewMessageBuilder(g, Header3164, FramingLF).AppendMessage(nil, 0, now)
	if !bytes.HasPrefix(m3164, []byte("<165>Mar  5 03:04:05 "+Host+" ")) {
		t.Errorf("RFC 3164 header %.60q", m3164)
	}
}

func baseOf(m syslog.Message) *syslog.Base {
	switch v := m.(type) {
	case *rfc3164.SyslogMessage:
		return &v.Base
	case *rfc5424.SyslogMessage:
		return &v.Base
	}
	return nil
}

// TestFamiliesMatchRealSamples checks that each generated family carries the
// identifying keys a real Darktrace sample of that family has.
func TestFamiliesMatchRealSamples(t *testing.T) {
	dir := filepath.Join("..", "..", "shared", "testdata", "darktrace-samples")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("real samples not available (%s): %v", dir, err)
	}
	samples := map[string]Family{
		"test_simplemodel.json": FamilyModelBreach,
		"test_aianalyst.json":   FamilyAIAnalyst,
		"test_summurizer.json":  FamilyAntigena,
		"test_email.json":       FamilyEmail,
	}
	var p fastjson.Parser
	for file, f := range samples {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		real, err := p.ParseBytes(b)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		tp, _ := NewTemplate(f, 3000)
		var gp fastjson.Parser
		gen, err := gp.ParseBytes(tp.Append(nil, 1, 1))
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range shapeKeys[f] {
			if real.Exists(k) && !gen.Exists(k) {
				t.Errorf("%s: real sample %s has %q, generated alert does not", f, file, k)
			}
			if !real.Exists(k) {
				t.Errorf("%s: test expects %q, which real sample %s lacks", f, k, file)
			}
		}
	}
}
