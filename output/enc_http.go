package output

import (
	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/internal/jsonenc"
)

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
func (e NDJSONEncoder) Append(dst []byte, r *forward.Record) ([]byte, error) {
	if r.NotJSON {
		return dst, forward.ErrSkipNotJSON
	}
	if e.MaxPayload > 0 && len(r.Payload) > e.MaxPayload {
		return dst, forward.ErrSkipOversize
	}
	return append(jsonenc.AppendNoLF(dst, r.Payload), '\n'), nil
}

// SekoiaBatchEncoder writes each JSON payload as a JSON string followed by a
// comma, the element of the "jsons" array of Sekoia's /batch endpoint.
// Payloads over SekoiaMaxEvent bytes are skipped with ErrSkipOversize,
// NotJSON records with ErrSkipNotJSON. It has no state; Append allocates
// nothing beyond growing dst.
type SekoiaBatchEncoder struct{}

// Append implements Encoder.
func (SekoiaBatchEncoder) Append(dst []byte, r *forward.Record) ([]byte, error) {
	if r.NotJSON {
		return dst, forward.ErrSkipNotJSON
	}
	if len(r.Payload) > SekoiaMaxEvent {
		return dst, forward.ErrSkipOversize
	}
	return append(jsonenc.AppendString(dst, r.Payload), ','), nil
}
