package output

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	syslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/octetcounting"
	"github.com/leodido/go-syslog/v4/rfc5424"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/internal/alloctest"
)

// oc frames msg with octet-counting.
func oc(msg string) string { return fmt.Sprintf("%d %s", len(msg), msg) }

const encKey = `k"e\y]1`                               // every byte SD-PARAM escaping concerns
const encSD = `[SEKOIA@53288 intake_key="k\"e\\y\]1"]` // its escaped form

func TestSyslogEncoderGolden(t *testing.T) {
	payload := `{"pbid":1,"model":{"name":"Test"}}`
	r3164 := outRecord([]byte(payload))
	raw5424 := []byte(`<134>1 2022-03-10T10:11:10+00:00 dt5 darktrace - - - ` + payload)
	r5424 := &forward.Record{Raw: raw5424, Timestamp: raw5424[7:32], Host: raw5424[33:36], App: raw5424[37:46],
		Payload: raw5424[53:], Pri: 134, Received: outReceived}
	rawBare := []byte(payload)
	rBare := &forward.Record{Raw: rawBare, Payload: rawBare, Pri: -1, Received: outReceived}
	badTS := []byte("2022-03-10 10:11:10Z+junk")
	rBadTS := &forward.Record{Raw: rawBare, Payload: rawBare, Timestamp: badTS, Host: []byte("h\xffst x"),
		App: []byte(strings.Repeat("a", 60)), Pri: 7, Received: outReceived}
	withLF := []byte("{\"a\":1,\n\"b\":2}")
	rLF := &forward.Record{Raw: append([]byte("<13>"), withLF...), Payload: withLF, Pri: 13, Received: outReceived}
	notJSON := []byte("<165>Aug  5 03:34:46 dt-master darktrace hello world")
	rNot := &forward.Record{Raw: notJSON, Payload: notJSON[41:], Pri: 165, Received: outReceived, NotJSON: true}

	cases := []struct {
		name    string
		cfg     SyslogEncoderConfig
		r       *forward.Record
		want    string
		wantErr error
	}{
		{"sekoia_rfc3164_in_uses_reception_time", SyslogEncoderConfig{Format: FormatSekoia, IntakeKey: encKey}, r3164,
			oc(`<165>1 2024-08-05T03:34:46.123Z dt-master darktrace - LOG ` + encSD + ` ` + payload), nil},
		{"sekoia_rfc5424_in_keeps_timestamp", SyslogEncoderConfig{Format: FormatSekoia, IntakeKey: encKey}, r5424,
			oc(`<134>1 2022-03-10T10:11:10+00:00 dt5 darktrace - LOG ` + encSD + ` ` + payload), nil},
		{"sekoia_bare_json_defaults", SyslogEncoderConfig{Format: FormatSekoia, IntakeKey: "K"}, rBare,
			oc(`<165>1 2024-08-05T03:34:46.123Z - - - LOG [SEKOIA@53288 intake_key="K"] ` + payload), nil},
		{"sekoia_newline_framing", SyslogEncoderConfig{Format: FormatSekoia, Framing: FramingNewline, IntakeKey: "K"}, r3164,
			`<165>1 2024-08-05T03:34:46.123Z dt-master darktrace - LOG [SEKOIA@53288 intake_key="K"] ` + payload + "\n", nil},
		{"rfc5424_bad_timestamp_and_header_bytes_sanitised", SyslogEncoderConfig{Format: FormatRFC5424}, rBadTS,
			oc(`<7>1 2024-08-05T03:34:46.123Z h_st_x ` + strings.Repeat("a", 48) + ` - LOG - ` + payload), nil},
		{"rfc5424_newline_payload_lf_becomes_space", SyslogEncoderConfig{Format: FormatRFC5424, Framing: FramingNewline}, rLF,
			"<13>1 2024-08-05T03:34:46.123Z - - - LOG - {\"a\":1, \"b\":2}\n", nil},
		{"rfc5424_octet_counting_keeps_lf", SyslogEncoderConfig{Format: FormatRFC5424}, rLF,
			oc("<13>1 2024-08-05T03:34:46.123Z - - - LOG - {\"a\":1,\n\"b\":2}"), nil},
		{"original_octet_counting", SyslogEncoderConfig{Format: FormatOriginal}, r3164,
			oc(`<165>Aug  5 03:34:46 dt-master darktrace ` + payload), nil},
		{"original_newline", SyslogEncoderConfig{Format: FormatOriginal, Framing: FramingNewline}, r3164,
			`<165>Aug  5 03:34:46 dt-master darktrace ` + payload + "\n", nil},
		{"original_carries_not_json", SyslogEncoderConfig{Format: FormatOriginal, Framing: FramingNewline}, rNot,
			string(notJSON) + "\n", nil},
		{"sekoia_skips_not_json", SyslogEncoderConfig{Format: FormatSekoia, IntakeKey: "K"}, rNot, "", forward.ErrSkipNotJSON},
		{"rfc5424_skips_not_json", SyslogEncoderConfig{Format: FormatRFC5424}, rNot, "", forward.ErrSkipNotJSON},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := NewSyslogEncoder(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			prefix := []byte("previous")
			got, err := e.Append(prefix, tc.r)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if string(got[:len(prefix)]) != "previous" {
				t.Fatalf("dst prefix changed: %q", got)
			}
			if g := string(got[len(prefix):]); g != tc.want {
				t.Fatalf("got\n%q\nwant\n%q", g, tc.want)
			}
		})
	}
}

func TestSekoiaFormatSkipsOversizeOnly(t *testing.T) {
	big := outRecord(outAlert(1, SekoiaMaxEvent+1))
	limit := outRecord(outAlert(1, SekoiaMaxEvent))
	if len(limit.Payload) != SekoiaMaxEvent {
		t.Fatalf("test payload is %d bytes", len(limit.Payload))
	}
	sek, _ := NewSyslogEncoder(SyslogEncoderConfig{Format: FormatSekoia, IntakeKey: "K"})
	if _, err := sek.Append(nil, big); !errors.Is(err, forward.ErrSkipOversize) {
		t.Fatalf("sekoia, %d bytes: err = %v, want forward.ErrSkipOversize", len(big.Payload), err)
	}
	if _, err := sek.Append(nil, limit); err != nil {
		t.Fatalf("sekoia, exactly the limit: %v", err)
	}
	for _, f := range []string{FormatRFC5424, FormatOriginal} {
		e, _ := NewSyslogEncoder(SyslogEncoderConfig{Format: f})
		if _, err := e.Append(nil, big); err != nil {
			t.Fatalf("%s must carry large events: %v", f, err)
		}
	}
}

func TestSyslogEncoderConfigErrors(t *testing.T) {
	for _, cfg := range []SyslogEncoderConfig{
		{Format: "json"},
		{Format: FormatSekoia},
		{Format: FormatRFC5424, Framing: "lf"},
	} {
		if _, err := NewSyslogEncoder(cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
	e, err := NewSyslogEncoder(SyslogEncoderConfig{IntakeKey: "K"})
	if err != nil || e.format != FormatSekoia {
		t.Fatalf("empty format with a key: %v, %q", err, e.format)
	}
}

// TestSekoiaFormatParsesStrictly runs encoded streams through
// leodido/go-syslog's strict RFC 6587 + RFC 5424 parser: each message must
// parse, carry the key (unescaped) and have the payload as MSG, byte for byte.
func TestSekoiaFormatParsesStrictly(t *testing.T) {
	f := func(t *testing.T, payloads [][]byte) {
		e, err := NewSyslogEncoder(SyslogEncoderConfig{Format: FormatSekoia, IntakeKey: encKey})
		if err != nil {
			t.Fatal(err)
		}
		b := outBatch(t, e, payloads...)
		var got [][]byte
		p := octetcounting.NewParser(syslog.WithListener(func(res *syslog.Result) {
			if res.Error != nil {
				t.Fatalf("message %d does not parse: %v", len(got), res.Error)
			}
			m := res.Message.(*rfc5424.SyslogMessage)
			if k := (*m.StructuredData)["SEKOIA@53288"]["intake_key"]; k != encKey {
				t.Fatalf("key = %q", k)
			}
			if *m.Appname != "darktrace" || *m.Hostname != "dt-master" || *m.MsgID != "LOG" {
				t.Fatalf("header = %q %q %q", *m.Hostname, *m.Appname, *m.MsgID)
			}
			got = append(got, []byte(*m.Message))
		}), syslog.WithMaxMessageLength(1<<20))
		p.Parse(bytes.NewReader(b.Data))
		outEqualEvents(t, got, payloads)
	}
	t.Run("synthetic", func(t *testing.T) { f(t, outAlerts(50, 1500)) })
	t.Run("large", func(t *testing.T) {
		f(t, [][]byte{outAlert(0, 9999), outAlert(1, 10_000), outAlert(2, SekoiaMaxEvent)})
	})
	t.Run("real_samples", func(t *testing.T) { f(t, outSamples(t)) })
}

func TestSyslogEncodersDoNotAllocate(t *testing.T) {
	r := outRecord(outAlert(1, 1500))
	for _, cfg := range []SyslogEncoderConfig{
		{Format: FormatSekoia, IntakeKey: "0123456789abcdef0123456789abcdef"},
		{Format: FormatSekoia, Framing: FramingNewline, IntakeKey: "K"},
		{Format: FormatRFC5424},
		{Format: FormatOriginal},
		{Format: FormatOriginal, Framing: FramingNewline},
	} {
		e, _ := NewSyslogEncoder(cfg)
		dst := make([]byte, 0, 64<<10)
		allocs := alloctest.PerRun(1000, func() {
			r.Received += 1e9 // a new second each time: the slow path of the time cache
			dst, _ = e.Append(dst[:0], r)
		})
		if allocs != 0 {
			t.Errorf("%+v: %v allocations per record", cfg, allocs)
		}
	}
}

func BenchmarkSyslogEncoder(b *testing.B) {
	for _, size := range []int{1500, 4000} {
		for _, cfg := range []SyslogEncoderConfig{
			{Format: FormatSekoia, IntakeKey: "0123456789abcdef0123456789abcdef"},
			{Format: FormatRFC5424, Framing: FramingNewline},
			{Format: FormatOriginal, Framing: FramingNewline},
		} {
			b.Run(fmt.Sprintf("%s/%s/%d", cfg.Format, cmp.Or(cfg.Framing, FramingOctetCounting), size), func(b *testing.B) {
				r := outRecord(outAlert(1, size))
				e, _ := NewSyslogEncoder(cfg)
				dst := make([]byte, 0, 64<<10)
				b.SetBytes(int64(len(r.Payload)))
				b.ReportAllocs()
				for b.Loop() {
					dst, _ = e.Append(dst[:0], r)
				}
			})
		}
	}
}

// flatBytes returns b's bytes in order, from AppendBuffers.
func flatBytes(b *forward.Batch) []byte {
	return bytes.Join(b.AppendBuffers(nil), nil)
}

// TestSplitEncodingMatchesAppend: a vectored batch (AppendSplit, as the
// batcher builds it over plain TCP) holds exactly the bytes and event
// boundaries of the flat one (Append), for every octet-counting format and
// for records with and without PRI, timestamp and header fields; skips are
// the same.
func TestSplitEncodingMatchesAppend(t *testing.T) {
	var recs []*forward.Record
	for i, p := range append(outAlerts(30, 1500), outAlert(99, 20_000), outAlert(98, SekoiaMaxEvent+1), []byte{}) {
		r := outRecord(p)
		switch i % 5 {
		case 1:
			r.Pri = -1
		case 2:
			r.Timestamp = []byte("2024-03-10T10:11:10.123456+00:00")
		case 3:
			r.Host, r.App = nil, nil
		case 4:
			r.NotJSON = true
		}
		recs = append(recs, r)
	}
	for _, cfg := range []SyslogEncoderConfig{
		{Format: FormatSekoia, IntakeKey: `k"e]y\`},
		{Format: FormatRFC5424},
		{Format: FormatOriginal},
	} {
		e, err := NewSyslogEncoder(cfg)
		if err != nil {
			t.Fatal(err)
		}
		se := splitSyslogEncoder{e}
		flat, vec := &forward.Batch{}, &forward.Batch{}
		for i, r := range recs {
			data, ferr := e.Append(flat.Data, r)
			verr := vec.AppendSplit(se, r)
			if !errors.Is(verr, ferr) {
				t.Fatalf("%+v record %d: split error %v, append error %v", cfg, i, verr, ferr)
			}
			if ferr == nil {
				flat.Data = data
				flat.Ends = append(flat.Ends, len(data))
			}
		}
		if !vec.Vectored() || len(vec.Data) != 0 {
			t.Fatalf("%+v: batch not vectored", cfg)
		}
		if !bytes.Equal(flatBytes(vec), flat.Data) {
			t.Fatalf("%+v: vectored bytes differ from Append's", cfg)
		}
		if !slices.Equal(vec.Ends, flat.Ends) || vec.Size() != len(flat.Data) {
			t.Fatalf("%+v: ends %v, want %v", cfg, vec.Ends, flat.Ends)
		}
	}
}

// TestSyslogEncoderIsSplitOnlyOverPlainTCPWithOctetCounting: TLS and LF
// framing keep flat batches (TLS would make a record per slice; LF framing
// rewrites the payload).
func TestSyslogEncoderIsSplitOnlyOverPlainTCPWithOctetCounting(t *testing.T) {
	for _, tc := range []struct {
		tls     bool
		framing string
		split   bool
	}{{false, "", true}, {false, FramingOctetCounting, true}, {false, FramingNewline, false}, {true, "", false}, {true, FramingNewline, false}} {
		s, err := NewSyslogSender(SyslogConfig{Address: "127.0.0.1:1", TLS: tc.tls,
			SyslogEncoderConfig: SyslogEncoderConfig{Format: FormatRFC5424, Framing: tc.framing}}, nil, "x", zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := s.Encoder().(forward.SplitEncoder); ok != tc.split {
			t.Errorf("tls %v framing %q: split encoder %v, want %v", tc.tls, tc.framing, ok, tc.split)
		}
	}
}

func TestSplitSyslogEncoderDoesNotAllocate(t *testing.T) {
	r := outRecord(outAlert(1, 1500))
	for _, cfg := range []SyslogEncoderConfig{
		{Format: FormatSekoia, IntakeKey: "0123456789abcdef0123456789abcdef"},
		{Format: FormatOriginal},
	} {
		e, _ := NewSyslogEncoder(cfg)
		se := splitSyslogEncoder{e}
		b := &forward.Batch{}
		for range 1000 { // grow the batch once, as the batcher's steady state
			_ = b.AppendSplit(se, r)
		}
		i := 0
		allocs := alloctest.PerRun(1000, func() {
			if i%1000 == 0 {
				b.Reset()
			}
			i++
			r.Received += 1e9
			_ = b.AppendSplit(se, r)
		})
		if allocs != 0 {
			t.Errorf("%+v: %v allocations per record", cfg, allocs)
		}
	}
}

func BenchmarkSyslogEncoderSplit(b *testing.B) {
	for _, size := range []int{1500, 4000} {
		b.Run(fmt.Sprintf("sekoia/octet-counting/%d", size), func(b *testing.B) {
			r := outRecord(outAlert(1, size))
			e, _ := NewSyslogEncoder(SyslogEncoderConfig{Format: FormatSekoia, IntakeKey: "0123456789abcdef0123456789abcdef"})
			se := splitSyslogEncoder{e}
			batch := &forward.Batch{}
			b.SetBytes(int64(len(r.Payload)))
			b.ReportAllocs()
			for b.Loop() {
				if batch.Len() == 1000 {
					batch.Reset()
				}
				_ = batch.AppendSplit(se, r)
			}
		})
	}
}
