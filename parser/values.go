package parser

import (
	"math"
	"strconv"
	"unsafe"

	"github.com/valyala/fastjson/fastfloat"
)

// valueReader reads the values the scanner recorded, from the payload
// being classified, without allocating in steady state.
//
// b is the payload during one Classify call and nil outside it. esc holds
// the unescaped contents of the last escaped string read; it grows to the
// longest such string (escapes are rare in the fields read, so it usually
// stays nil) and is reused.
type valueReader struct {
	b   []byte
	esc []byte
}

// text returns the raw text of a number, the contents of a string
// (unescaped into r.esc when it holds escapes, so only valid until the
// next call), or nil for any other value or an absent one.
func (r *valueReader) text(v jsonValue) []byte {
	switch v.typ {
	case typeNumber:
		return r.b[v.start:v.end]
	case typeString:
		s := r.b[v.start:v.end]
		if !v.esc {
			return s
		}
		r.esc = unescape(r.esc[:0], s)
		return r.esc
	}
	return nil
}

// parseNumber parses b as a decimal number (JSON syntax, leading '+'
// allowed, surrounding spaces not). NaN and Inf are rejected.
func parseNumber(b []byte) (float64, bool) {
	if !isNumberSyntax(b) {
		return 0, false
	}
	f := fastfloat.ParseBestEffort(unsafe.String(unsafe.SliceData(b), len(b)))
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// isNumberSyntax reports whether b is [+-]digits[.digits][(e|E)[+-]digits].
func isNumberSyntax(b []byte) bool {
	i := 0
	if i < len(b) && (b[i] == '-' || b[i] == '+') {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && isDigit(b[i]) {
			i++
			n++
		}
		return n
	}
	if digits() == 0 {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '-' || b[i] == '+') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(b)
}

// parseDate parses "YYYY-MM-DD[T ]hh:mm:ss[.frac][Z|±hh:mm|±hhmm|±hh]"
// into Unix milliseconds; no zone means UTC.
func parseDate(b []byte) (int64, bool) {
	if len(b) < len("YYYY-MM-DDThh:mm:ss") || b[4] != '-' || b[7] != '-' ||
		(b[10] != 'T' && b[10] != ' ' && b[10] != 't') || b[13] != ':' || b[16] != ':' {
		return 0, false
	}
	year, ok1 := digitsAt(b, 0, 4)
	month, ok2 := digitsAt(b, 5, 2)
	day, ok3 := digitsAt(b, 8, 2)
	hour, ok4 := digitsAt(b, 11, 2)
	minute, ok5 := digitsAt(b, 14, 2)
	sec, ok6 := digitsAt(b, 17, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || year < 1 || month < 1 || month > 12 ||
		day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 60 {
		return 0, false
	}
	i := 19
	ms := 0
	if i < len(b) && (b[i] == '.' || b[i] == ',') {
		i++
		n := 0
		for i < len(b) && isDigit(b[i]) {
			if n < 3 {
				ms = ms*10 + int(b[i]-'0')
			}
			n++
			i++
		}
		if n == 0 {
			return 0, false
		}
		for ; n < 3; n++ {
			ms *= 10
		}
	}
	offset := 0 // seconds east of UTC
	if i < len(b) {
		switch b[i] {
		case 'Z', 'z':
			i++
		case '+', '-':
			sign := 1
			if b[i] == '-' {
				sign = -1
			}
			i++
			oh, ok := digitsAt(b, i, 2)
			if !ok || oh > 23 {
				return 0, false
			}
			i += 2
			om := 0
			if i < len(b) && b[i] == ':' {
				i++
			}
			if i < len(b) {
				if om, ok = digitsAt(b, i, 2); !ok || om > 59 {
					return 0, false
				}
				i += 2
			}
			offset = sign * (oh*3600 + om*60)
		}
	}
	if i != len(b) {
		return 0, false
	}
	days := daysFromCivil(year, month, day)
	secs := days*86400 + int64(hour*3600+minute*60+sec-offset)
	return secs*1000 + int64(ms), true
}

// digitsAt parses b[i:i+n] as an unsigned decimal.
func digitsAt(b []byte, i, n int) (int, bool) {
	if i < 0 || i+n > len(b) {
		return 0, false
	}
	v := 0
	for _, c := range b[i : i+n] {
		if !isDigit(c) {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// daysFromCivil returns the days since 1970-01-01 of a proleptic Gregorian
// date (H. Hinnant's algorithm), for year ≥ 1.
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	yoe := y - era*400
	mp := (m + 9) % 12 // March = 0
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// parseUint parses b as a plain unsigned decimal that fits in 63 bits.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// number returns v as a float64 when it is a number or a numeric string.
func (r *valueReader) number(v jsonValue) (float64, bool) {
	return parseNumber(r.text(v))
}

// score returns v / scale clamped to [0, 1], or -1 when v is absent, not a
// number, or negative.
func (r *valueReader) score(v jsonValue, scale float64) float64 {
	f, ok := r.number(v)
	if !ok || f < 0 {
		return -1
	}
	f /= scale
	if f > 1 {
		f = 1
	}
	return f
}

// firstTime returns the time of the first of a, b, c that holds a usable
// one, or 0.
func (r *valueReader) firstTime(a, b, c jsonValue) int64 {
	for _, v := range [3]jsonValue{a, b, c} {
		if t := r.timeOf(v); t != 0 {
			return t
		}
	}
	return 0
}

// timeOf returns v as Unix milliseconds: a number (or numeric string) below
// 1e11 is seconds, otherwise milliseconds; other strings are parsed as
// dates. It returns 0 when v holds no usable time, which includes times
// at or before the Unix epoch.
func (r *valueReader) timeOf(v jsonValue) int64 {
	b := r.text(v)
	if b == nil {
		return 0
	}
	if f, ok := parseNumber(b); ok {
		if f <= 0 || f >= 1e17 {
			return 0
		}
		if f < 1e11 {
			f *= 1000
		}
		return int64(f)
	}
	if v.typ == typeString {
		if ms, ok := parseDate(b); ok && ms > 0 {
			return ms
		}
	}
	return 0
}

// setID stores the first usable of pbid (a positive integer), id (string
// or integer) and uuid (string) in d.ID, truncated to MaxIDLen.
func (r *valueReader) setID(d *Details, pbid, id, uuid jsonValue) {
	if b := r.text(pbid); b != nil {
		if n, ok := parseUint(b); ok && n > 0 {
			d.IDLen = uint8(len(strconv.AppendUint(d.ID[:0], n, 10)))
			return
		}
	}
	for _, v := range [2]jsonValue{id, uuid} {
		switch v.typ {
		case typeString:
			if b := r.text(v); len(b) > 0 {
				d.IDLen = uint8(copy(d.ID[:], b))
				return
			}
		case typeNumber:
			if b := r.text(v); isUint(b) {
				d.IDLen = uint8(copy(d.ID[:], b))
				return
			}
		}
	}
}

// isUint reports whether parseUint accepts b.
func isUint(b []byte) bool {
	_, ok := parseUint(b)
	return ok
}

// stringIs reports whether v is the JSON string s.
func (r *valueReader) stringIs(v jsonValue, s string) bool {
	if v.typ != typeString || (!v.esc && int(v.end-v.start) != len(s)) {
		return false
	}
	return string(r.text(v)) == s
}

// isInformational reports whether v is the string "informational" in any
// ASCII case.
func (r *valueReader) isInformational(v jsonValue) bool {
	return v.typ == typeString && equalFold(r.text(v), "informational")
}

// derivePriority applies the InsightIDR rule documented on Classify.
func (r *valueReader) derivePriority(category jsonValue, score float64, level, priority jsonValue) Priority {
	if r.isInformational(category) {
		return PriorityNone
	}
	if score >= 0 {
		switch {
		case score >= 0.80:
			return PriorityHigh
		case score >= 0.50:
			return PriorityMedium
		}
		return PriorityLow
	}
	if p, ok := r.priorityFrom(level); ok {
		return p
	}
	if p, ok := r.priorityFrom(priority); ok {
		return p
	}
	return PriorityLow
}

// priorityFrom maps a priority word or number to a Priority.
func (r *valueReader) priorityFrom(v jsonValue) (Priority, bool) {
	b := r.text(v)
	if b == nil {
		return 0, false
	}
	if f, ok := parseNumber(b); ok {
		if f < 0 {
			return 0, false
		}
		if f > 5 {
			f /= 20 // system-status priority, 0–100
		}
		switch {
		case f >= 3:
			return PriorityHigh, true
		case f >= 1:
			return PriorityMedium, true
		}
		return PriorityLow, true
	}
	switch {
	case equalFold(b, "critical"), equalFold(b, "high"):
		return PriorityHigh, true
	case equalFold(b, "medium"), equalFold(b, "moderate"):
		return PriorityMedium, true
	case equalFold(b, "low"):
		return PriorityLow, true
	case equalFold(b, "informational"), equalFold(b, "info"), equalFold(b, "none"):
		return PriorityNone, true
	}
	return 0, false
}

// equalFold reports whether b equals the lower-case ASCII word s, ignoring
// ASCII case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
