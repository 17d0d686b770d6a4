package parser

import (
	"testing"
	"time"
)

func TestParseDate(t *testing.T) {
	f := func(s string, want int64, ok bool) {
		t.Helper()
		got, gotOK := parseDate([]byte(s))
		if got != want || gotOK != ok {
			t.Errorf("parseDate(%q) = %d, %v; want %d, %v", s, got, gotOK, want, ok)
		}
	}
	f("1970-01-01T00:00:00Z", 0, true)
	f("2026-06-18 15:04:54.188000", 1781795094188, true) // the e-mail sample's "timestamp"
	f("2024-02-29T23:59:58.25+01:00", 1709247598250, true)
	f("2024-02-29T23:59:58.25+0100", 1709247598250, true)
	f("2024-02-29T23:59:58-05", 1709269198000, true)
	f("2000-03-01T00:00:00z", 951868800000, true)
	f("2023-07-0202:00:00", 0, false) // device "time" in the samples: no separator
	f("2024-13-01T00:00:00Z", 0, false)
	f("2024-01-01T24:00:00Z", 0, false)
	f("2024-01-01T00:00:00.Z", 0, false)
	f("2024-01-01T00:00:00Zx", 0, false)
	f("2024-01-01T00:00:00+1", 0, false)
	f("0000-01-01T00:00:00Z", 0, false)
	f("short", 0, false)

	// Cross-check against the time package over a spread of instants.
	for sec := int64(-1e9); sec < 4e9; sec += 86400*37 + 3671 {
		for _, zone := range []*time.Location{time.UTC, time.FixedZone("", 5*3600+1800), time.FixedZone("", -8*3600)} {
			tm := time.Unix(sec, 123e6).In(zone)
			s := tm.Format("2006-01-02T15:04:05.000Z07:00")
			got, ok := parseDate([]byte(s))
			if !ok || got != tm.UnixMilli() {
				t.Fatalf("parseDate(%q) = %d, %v; want %d", s, got, ok, tm.UnixMilli())
			}
		}
	}
}

func TestNumberSyntax(t *testing.T) {
	for s, want := range map[string]bool{
		"0": true, "-1": true, "+1": true, "1.5": true, "1e5": true, "1.5E-3": true, "0.674": true,
		"": false, "-": false, "1.": false, ".5": false, "1e": false, "1-2": false, "NaN": false,
		"Inf": false, " 1": false, "1 ": false, "0x10": false, "1.2.3": false,
	} {
		if got := isNumberSyntax([]byte(s)); got != want {
			t.Errorf("isNumberSyntax(%q) = %v, want %v", s, got, want)
		}
	}
	if f, ok := parseNumber([]byte("1e400")); ok {
		t.Errorf("parseNumber(1e400) = %v, true; want rejected (Inf)", f)
	}
}

func TestPriorityFrom(t *testing.T) {
	type want struct {
		p  Priority
		ok bool
	}
	var r valueReader
	var f fields
	for in, w := range map[string]want{
		`"critical"`: {PriorityHigh, true}, `"HIGH"`: {PriorityHigh, true}, `"Medium"`: {PriorityMedium, true},
		`"moderate"`: {PriorityMedium, true}, `"low"`: {PriorityLow, true}, `"Informational"`: {PriorityNone, true},
		`"info"`: {PriorityNone, true}, `"none"`: {PriorityNone, true}, `"urgent"`: {0, false}, `"hig"`: {0, false},
		`5`: {PriorityHigh, true}, `3`: {PriorityHigh, true}, `2.9`: {PriorityMedium, true}, `1`: {PriorityMedium, true},
		`0.5`: {PriorityLow, true}, `0`: {PriorityLow, true}, `"4"`: {PriorityHigh, true}, `-1`: {0, false},
		`60`: {PriorityHigh, true}, `59`: {PriorityMedium, true}, `20`: {PriorityMedium, true}, `19`: {PriorityLow, true},
		`null`: {0, false}, `true`: {0, false}, `[]`: {0, false}, `{}`: {0, false},
	} {
		b := []byte(`{"priority":` + in + `}`)
		if !f.scan(b) {
			t.Fatalf("scan(%s) failed", b)
		}
		r.b = b
		got, ok := r.priorityFrom(f.priority)
		if got != w.p || ok != w.ok {
			t.Errorf("priorityFrom(%s) = %v, %v; want %v, %v", in, got, ok, w.p, w.ok)
		}
	}
	if _, ok := r.priorityFrom(jsonValue{}); ok {
		t.Error("priorityFrom(absent) ok")
	}
}
