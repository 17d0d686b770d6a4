package forward

import "slices"

// The HTTP encoders write each event with its separator, so that a run of
// events in Batch.Data is already a request body (or the middle of one) and
// the sender needs no copy:
//
//	NDJSONEncoder       payload LF        body: the events as they are
//	                                       (sekoia-http "plain": the events without the last LF,
//	                                        i.e. the payloads joined with LF)
//	SekoiaBatchEncoder  "payload",        body: {"intake_key":"K","jsons":[ events without the last comma ]}

// NDJSONEncoder writes each JSON payload followed by LF: one line per event.
// It is the encoding of the generic http output (NDJSON) and, with
// MaxPayload set to SekoiaMaxEvent, of sekoia-http's /plain/batch endpoint.
// Each LF inside a payload is written as a space (see SyslogEncoder: the JSON
// value is unchanged). NotJSON records are skipped with ErrSkipNotJSON.
// NDJSONEncoder has no state; Append allocates nothing beyond growing dst.
type NDJSONEncoder struct {
	// MaxPayload, when > 0, skips larger payloads with ErrSkipOversize.
	MaxPayload int
}

// Append implements Encoder.
func (e NDJSONEncoder) Append(dst []byte, r *Record) ([]byte, error) {
	if r.NotJSON {
		return dst, ErrSkipNotJSON
	}
	if e.MaxPayload > 0 && len(r.Payload) > e.MaxPayload {
		return dst, ErrSkipOversize
	}
	return append(appendNoLF(dst, r.Payload), '\n'), nil
}

// SekoiaBatchEncoder writes each JSON payload as a JSON string followed by a
// comma, the element of the "jsons" array of Sekoia's /batch endpoint.
// Payloads over SekoiaMaxEvent bytes are skipped with ErrSkipOversize,
// NotJSON records with ErrSkipNotJSON. It has no state; Append allocates
// nothing beyond growing dst.
type SekoiaBatchEncoder struct{}

// Append implements Encoder.
func (SekoiaBatchEncoder) Append(dst []byte, r *Record) ([]byte, error) {
	if r.NotJSON {
		return dst, ErrSkipNotJSON
	}
	if len(r.Payload) > SekoiaMaxEvent {
		return dst, ErrSkipOversize
	}
	return append(appendJSONString(dst, r.Payload), ','), nil
}

// appendJSONString appends s as a quoted JSON string: '"' and '\' are
// backslash-escaped, control characters written as \n, \r, \t or \u00XX;
// every other byte (UTF-8 included) is copied as is. It measures the result
// first, grows dst once and fills it without further bounds work: about
// twice as fast as appending run by run on alerts, which hold a quote every
// ten bytes or so (see BenchmarkHTTPEncoder).
func appendJSONString(dst, s []byte) []byte {
	n := len(s) + 2
	for _, c := range s {
		n += int(jsonEscapeLen[c])
	}
	off := len(dst)
	dst = slices.Grow(dst, n)[:off+n]
	out := dst[off:]
	out[0] = '"'
	j := 1
	for _, c := range s {
		switch jsonEscapeLen[c] {
		case 0:
			out[j] = c
			j++
		case 1:
			out[j], out[j+1] = '\\', jsonEscapeChar[c]
			j += 2
		default:
			const hex = "0123456789abcdef"
			out[j], out[j+1], out[j+2], out[j+3], out[j+4], out[j+5] = '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf]
			j += 6
		}
	}
	out[j] = '"'
	return dst
}

// jsonEscapeLen[c] is how many bytes escaping c adds: 1 for '"', '\\', LF,
// CR and tab (a backslash pair), 5 for the other control characters
// (\u00XX), 0 for the rest.
var jsonEscapeLen = [256]uint8{
	0: 5, 5, 5, 5, 5, 5, 5, 5, 5, '\t': 1, '\n': 1, 5, 5, '\r': 1, 5, 5,
	5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
	'"': 1, '\\': 1,
}

// jsonEscapeChar[c] is the letter after the backslash for the one-byte
// escapes.
var jsonEscapeChar = [256]byte{'\t': 't', '\n': 'n', '\r': 'r', '"': '"', '\\': '\\'}
