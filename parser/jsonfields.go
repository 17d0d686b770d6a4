package parser

import (
	"unicode/utf16"
	"unicode/utf8"
)

// jsonType is the type of a value the scanner recorded; typeNone means
// the key was absent.
type jsonType uint8

const (
	typeNone jsonType = iota
	typeString
	typeNumber
	typeObject
	typeArray
	typeTrue
	typeFalse
	typeNull
)

// jsonValue is where one recorded value lies in the payload: for a string
// its contents between the quotes (still escaped when esc), for any other
// type its whole text. Offsets are int32: Classify rejects larger payloads.
type jsonValue struct {
	start, end int32
	typ        jsonType
	esc        bool // a string holding at least one backslash escape
}

// modelFields are the members of a model object (model, model.now or
// model.then) that classification reads; antigena is actions.antigena.
type modelFields struct {
	name, category, priority, actions, antigena jsonValue
}

// fields holds the values of the top-level members of one payload that
// classification reads (the names are the JSON keys), and the model's.
// Offsets are into the payload last given to scan.
//
// Duplicate keys: the last one wins, at every level (as in encoding/json
// and JavaScript). A later duplicate of "model", "now", "then" or
// "actions" discards what was recorded under the earlier one.
type fields struct {
	pbid, id, uuid, model, triggered, score, time, creationTime jsonValue
	createdAt, aiaScore, summariser, category, iris, alertName  jsonValue
	priorityLevel, priority, lastUpdated, direction, anomaly    jsonValue
	timestamp, start, currentGroup                              jsonValue

	now, then jsonValue      // model.now, model.then
	lv        [3]modelFields // model, model.now, model.then
}

// scanCtx says which object the capturing scanner is in.
type scanCtx uint8

const (
	ctxNone  scanCtx = iota // nothing recorded below here
	ctxTop                  // the payload's object
	ctxModel                // model, model.now, model.then (lv index = ctx-ctxModel)
	ctxNow
	ctxThen
	ctxActions // model.actions, model.now.actions, model.then.actions
	ctxActionsNow
	ctxActionsThen
)

// scan validates b as exactly one JSON object, with optional white space
// around it, and records the members classification reads. It reports
// whether b is such an object; f is only meaningful when it is.
func (f *fields) scan(b []byte) bool {
	*f = fields{}
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	if i = f.object(b, i+1, 1, ctxTop); i < 0 {
		return false
	}
	return skipWS(b, i) == len(b)
}

// object scans the members of an object whose '{' is just before b[i], at
// nesting depth depth, recording those that cx asks for. It returns the
// index just past the closing '}', or -1.
func (f *fields) object(b []byte, i, depth int, cx scanCtx) int {
	if i < len(b) && b[i] <= ' ' {
		i = skipWS(b, i)
	}
	if i < len(b) && b[i] == '}' {
		return i + 1
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return -1
		}
		ks := i + 1
		end, esc := skipString(b, ks)
		if end < 0 {
			return -1
		}
		slot, sub := f.slot(cx, b[ks:end-1], esc)
		i = end
		if i < len(b) && b[i] <= ' ' {
			i = skipWS(b, i)
		}
		if i >= len(b) || b[i] != ':' {
			return -1
		}
		i++
		if i < len(b) && b[i] <= ' ' {
			i = skipWS(b, i)
		}
		switch {
		case slot == nil:
			i = skipValue(b, i, depth)
		case sub != ctxNone:
			f.reset(sub)
			if i < len(b) && b[i] == '{' {
				if depth >= maxNesting {
					return -1
				}
				start := i
				if i = f.object(b, i+1, depth+1, sub); i >= 0 {
					*slot = jsonValue{start: int32(start), end: int32(i), typ: typeObject}
				}
				break
			}
			i = recordValue(b, i, depth, slot)
		default:
			i = recordValue(b, i, depth, slot)
		}
		if i < 0 {
			return -1
		}
		if i < len(b) && b[i] <= ' ' {
			i = skipWS(b, i)
		}
		if i >= len(b) {
			return -1
		}
		switch b[i] {
		case ',':
			i++
			if i < len(b) && b[i] <= ' ' {
				i = skipWS(b, i)
			}
			continue
		case '}':
			return i + 1
		}
		return -1
	}
}

// recordValue scans the value at b[i] into *v and returns the index past it.
func recordValue(b []byte, i, depth int, v *jsonValue) int {
	if i >= len(b) {
		return -1
	}
	var t jsonType
	switch b[i] {
	case '"':
		end, esc := skipString(b, i+1)
		if end >= 0 {
			*v = jsonValue{start: int32(i + 1), end: int32(end - 1), typ: typeString, esc: esc}
		}
		return end
	case '{':
		t = typeObject
	case '[':
		t = typeArray
	case 't':
		t = typeTrue
	case 'f':
		t = typeFalse
	case 'n':
		t = typeNull
	default:
		t = typeNumber
	}
	end := skipValue(b, i, depth)
	if end >= 0 {
		*v = jsonValue{start: int32(i), end: int32(end), typ: t}
	}
	return end
}

// maxKeyRaw is the longest escaped key that can still unescape to one of
// the keys recorded (at most 19 bytes, each written as \u00XX at worst).
const maxKeyRaw = 128

// slot returns where the value of key (raw, escaped when esc) goes in the
// object cx, and the context to scan it in when it is an object of
// interest; nil when the key is not recorded.
func (f *fields) slot(cx scanCtx, key []byte, esc bool) (*jsonValue, scanCtx) {
	if cx == ctxNone {
		return nil, ctxNone
	}
	if esc {
		if len(key) > maxKeyRaw {
			return nil, ctxNone
		}
		var buf [maxKeyRaw]byte
		key = unescape(buf[:0], key) // never longer than the raw key
	}
	switch cx {
	case ctxTop:
		return f.topSlot(key)
	case ctxModel, ctxNow, ctxThen:
		lv := &f.lv[cx-ctxModel]
		switch string(key) {
		case "name":
			return &lv.name, ctxNone
		case "category":
			return &lv.category, ctxNone
		case "priority":
			return &lv.priority, ctxNone
		case "actions":
			return &lv.actions, ctxActions + (cx - ctxModel)
		case "now":
			if cx == ctxModel {
				return &f.now, ctxNow
			}
		case "then":
			if cx == ctxModel {
				return &f.then, ctxThen
			}
		}
	case ctxActions, ctxActionsNow, ctxActionsThen:
		if string(key) == "antigena" {
			return &f.lv[cx-ctxActions].antigena, ctxNone
		}
	}
	return nil, ctxNone
}

// topSlot maps a top-level key to its field.
func (f *fields) topSlot(key []byte) (*jsonValue, scanCtx) {
	switch string(key) {
	case "pbid":
		return &f.pbid, ctxNone
	case "id":
		return &f.id, ctxNone
	case "uuid":
		return &f.uuid, ctxNone
	case "model":
		return &f.model, ctxModel
	case "triggeredComponents":
		return &f.triggered, ctxNone
	case "score":
		return &f.score, ctxNone
	case "time":
		return &f.time, ctxNone
	case "creationTime":
		return &f.creationTime, ctxNone
	case "createdAt":
		return &f.createdAt, ctxNone
	case "aiaScore":
		return &f.aiaScore, ctxNone
	case "summariser":
		return &f.summariser, ctxNone
	case "category":
		return &f.category, ctxNone
	case "iris-event-type":
		return &f.iris, ctxNone
	case "alert_name":
		return &f.alertName, ctxNone
	case "priority_level":
		return &f.priorityLevel, ctxNone
	case "priority":
		return &f.priority, ctxNone
	case "last_updated":
		return &f.lastUpdated, ctxNone
	case "direction":
		return &f.direction, ctxNone
	case "anomaly_score":
		return &f.anomaly, ctxNone
	case "timestamp":
		return &f.timestamp, ctxNone
	case "start":
		return &f.start, ctxNone
	case "currentGroup":
		return &f.currentGroup, ctxNone
	}
	return nil, ctxNone
}

// reset forgets what was recorded inside the object a key of context sub
// led to, when that key appears again (the last duplicate wins).
func (f *fields) reset(sub scanCtx) {
	switch sub {
	case ctxModel:
		f.now, f.then, f.lv = jsonValue{}, jsonValue{}, [3]modelFields{}
	case ctxNow, ctxThen:
		f.lv[sub-ctxModel] = modelFields{}
	case ctxActions, ctxActionsNow, ctxActionsThen:
		f.lv[sub-ctxActions].antigena = jsonValue{}
	}
}

// unescape appends the contents of a valid JSON string s (between the
// quotes) to dst with its escapes decoded, exactly as fastjson decodes
// them: a \u escape of a surrogate followed by another \u escape is
// decoded as a pair (U+FFFD when the two do not form one, both consumed);
// a surrogate escape not followed by one is kept as its six characters.
// The result is never longer than s.
func unescape(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			j := i + 1
			for j < len(s) && s[j] != '\\' {
				j++
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		c = s[i+1]
		i += 2
		switch c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := rune(hex4(s[i:]))
			i += 4
			if !utf16.IsSurrogate(r) {
				dst = utf8.AppendRune(dst, r)
				break
			}
			if i+6 > len(s) || s[i] != '\\' || s[i+1] != 'u' {
				dst = append(dst, s[i-6:i]...)
				break
			}
			dst = utf8.AppendRune(dst, utf16.DecodeRune(r, rune(hex4(s[i+2:]))))
			i += 6
		default: // '"', '\\', '/'
			dst = append(dst, c)
		}
	}
	return dst
}

// hex4 decodes the four hex digits at the start of b (already validated).
func hex4(b []byte) uint16 {
	var v uint16
	for _, c := range b[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		v = v<<4 | uint16(c)
	}
	return v
}
