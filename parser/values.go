package parser

import (
	"math"
	"strconv"
	"unsafe"

	"github.com/valyala/fastjson"
	"github.com/valyala/fastjson/fastfloat"
)

// The helpers below read fastjson values without allocating: fastjson's own
// Int64/Float64 build fmt errors on odd input, so numbers are read from
// their raw text (MarshalTo into a stack buffer) and checked here first.

// numBuf holds the raw text of one JSON number; longer numbers (never seen
// in Darktrace payloads) cost an allocation, nothing more.
type numBuf [40]byte

// valueReader reads field values. Its buffer lives in the Classifier
// (fastjson's MarshalTo leaks its argument, so a stack buffer would move
// to the heap on every call).
type valueReader struct{ buf numBuf }

// numText returns the text of a JSON number, or the contents of a JSON
// string, or nil for any other value. The result aliases buf or the
// parser's memory.
func numText(v *fastjson.Value, buf *numBuf) []byte {
	if v == nil {
		return nil
	}
	switch v.Type() {
	case fastjson.TypeNumber:
		return v.MarshalTo(buf[:0])
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		return b
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

// number returns v as a float64 when it is a number or a numeric string.
func (r *valueReader) number(v *fastjson.Value) (float64, bool) {
	return parseNumber(numText(v, &r.buf))
}

// score returns v / scale clamped to [0, 1], or -1 when v is absent, not a
// number, or negative.
func (r *valueReader) score(v *fastjson.Value, scale float64) float64 {
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

// firstTime returns the time of the first of vs (nil ones skipped) that
// holds a usable one, or 0.
func (r *valueReader) firstTime(a, b, c *fastjson.Value) int64 {
	for _, v := range [3]*fastjson.Value{a, b, c} {
		if v == nil {
			continue
		}
		if t := r.timeOf(v); t != 0 {
			return t
		}
	}
	return 0
}

// timeOf returns v as Unix milliseconds: a number (or numeric string) below
// 1e11 is seconds, otherwise milliseconds; other strings are parsed as
// dates. It returns 0 when v holds no usable time.
func (r *valueReader) timeOf(v *fastjson.Value) int64 {
	b := numText(v, &r.buf)
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
	if v.Type() == fastjson.TypeString {
		if ms, ok := parseDate(b); ok {
			return ms
		}
	}
	return 0
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

// setID stores the first usable of pbid (a positive integer), id (string
// or integer) and uuid (string) in a.ID, truncated to MaxIDLen.
func (r *valueReader) setID(a *Alert, pbid, id, uuid *fastjson.Value) {
	if b := numText(pbid, &r.buf); b != nil {
		if n, ok := parseUint(b); ok && n > 0 {
			a.IDLen = uint8(len(strconv.AppendUint(a.ID[:0], n, 10)))
			return
		}
	}
	for _, v := range [2]*fastjson.Value{id, uuid} {
		if v == nil {
			continue
		}
		switch v.Type() {
		case fastjson.TypeString:
			b, _ := v.StringBytes()
			if len(b) > 0 {
				a.IDLen = uint8(copy(a.ID[:], b))
				return
			}
		case fastjson.TypeNumber:
			b := v.MarshalTo(r.buf[:0])
			if _, ok := parseUint(b); ok {
				a.IDLen = uint8(copy(a.ID[:], b))
				return
			}
		}
	}
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

// stringIs reports whether v is the JSON string s.
func stringIs(v *fastjson.Value, s string) bool {
	if v == nil || v.Type() != fastjson.TypeString {
		return false
	}
	b, _ := v.StringBytes()
	return string(b) == s
}

// derivePriority applies the InsightIDR rule documented on Classify.
func (r *valueReader) derivePriority(category *fastjson.Value, score float64, level, priority *fastjson.Value) Priority {
	if category != nil && category.Type() == fastjson.TypeString {
		if b, _ := category.StringBytes(); equalFold(b, "informational") {
			return PriorityNone
		}
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
func (r *valueReader) priorityFrom(v *fastjson.Value) (Priority, bool) {
	b := numText(v, &r.buf)
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
