package poller

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"

	"github.com/valyala/fastjson"

	"github.com/dtrelay/dtrelay/internal/secret"
)

// endpoint is one API endpoint polled, with its fixed query parameters and
// the way its events are keyed for de-duplication.
type endpoint struct {
	name   string // metric label and state key
	path   string
	params url.Values
	key    func(dst []byte, v *fastjson.Value) []byte // appends the key; dst unchanged when the fields are missing
}

// endpoints are the endpoints a Poller polls (see doc.go for the choice of
// parameters).
func endpoints() []*endpoint {
	return []*endpoint{
		{
			name: "modelbreaches", path: "/modelbreaches",
			params: url.Values{"creationtime": {"true"}, "historicmodelonly": {"true"}, "includeacknowledged": {"true"}},
			key:    breachKey,
		},
		{
			name: "aianalyst/incidentevents", path: "/aianalyst/incidentevents",
			params: url.Values{"includeacknowledged": {"true"}, "includeallpinned": {"false"}},
			key:    incidentKey,
		},
	}
}

// breachKey keys a model breach by its pbid.
func breachKey(dst []byte, v *fastjson.Value) []byte {
	id := v.Get("pbid")
	if id == nil || (id.Type() != fastjson.TypeNumber && id.Type() != fastjson.TypeString) {
		return dst
	}
	return id.MarshalTo(append(dst, "pbid:"...))
}

// incidentKey keys an AI Analyst incident event by its id and the incident
// it currently belongs to.
func incidentKey(dst []byte, v *fastjson.Value) []byte {
	id := v.GetStringBytes("id")
	if len(id) == 0 {
		return dst
	}
	dst = append(append(append(dst, "id:"...), id...), '|')
	return append(dst, v.GetStringBytes("currentGroup")...)
}

// hashKey keys an event that lacks the fields its endpoint is keyed by.
func hashKey(ev []byte) string {
	sum := sha256.Sum256(ev)
	return "sha256:" + hex.EncodeToString(sum[:16])
}

// Reasons an element of a response is dropped (errors_total labels).
const (
	dropNotObject = "not_object"
	dropInvalid   = "invalid_event"
	dropOversize  = "oversize"
)

// extractor turns a response body into events. It is used by one goroutine
// at a time and reuses its storage between calls.
type extractor struct {
	parser  fastjson.Parser
	compact bytes.Buffer // compacted elements, back to back
	items   []item
	spans   []span // where items' events are, while extracting
	keyBuf  []byte
	maxSize int
	secrets *secret.Set // redacted from the bytes an error quotes; may be nil
}

// span locates an event in the body, or in compact when compacted.
type span struct {
	off, n    int
	compacted bool
}

// item is one element of a response: the event to forward (ev), or the
// reason it is dropped (drop), and its de-duplication key.
type item struct {
	ev   []byte
	key  string
	drop string
}

// extract returns the elements of the JSON array body, in order. It checks
// the array's structure first: on error, nothing is returned. The items and
// their ev slices (into body or x's storage) are valid until the next call.
func (x *extractor) extract(body []byte, ep *endpoint) ([]item, error) {
	x.compact.Reset()
	x.items, x.spans = x.items[:0], x.spans[:0]
	err := splitArray(body, x.secrets, func(off, end int) {
		el := body[off:end]
		it := item{}
		sp := span{off: off, n: len(el)}
		switch {
		case el[0] != '{':
			it.key, it.drop = hashKey(el), dropNotObject
		case bytes.ContainsAny(el, "\r\n"):
			sp.off, sp.compacted = x.compact.Len(), true
			if err := json.Compact(&x.compact, el); err != nil {
				it.key, it.drop = hashKey(el), dropInvalid
				break
			}
			sp.n = x.compact.Len() - sp.off
			x.classify(x.compact.Bytes()[sp.off:], ep, &it)
		default:
			x.classify(el, ep, &it)
		}
		x.items = append(x.items, it)
		x.spans = append(x.spans, sp)
	})
	if err != nil {
		x.items = x.items[:0]
		return nil, err
	}
	for i := range x.items {
		if x.items[i].drop != "" {
			continue
		}
		sp := x.spans[i]
		if sp.compacted {
			x.items[i].ev = x.compact.Bytes()[sp.off : sp.off+sp.n]
		} else {
			x.items[i].ev = body[sp.off : sp.off+sp.n]
		}
	}
	return x.items, nil
}

// classify validates the object ev and fills in its key (or drop reason).
func (x *extractor) classify(ev []byte, ep *endpoint, it *item) {
	v, err := x.parser.ParseBytes(ev)
	if err != nil {
		it.key, it.drop = hashKey(ev), dropInvalid
		return
	}
	if x.keyBuf = ep.key(x.keyBuf[:0], v); len(x.keyBuf) > 0 {
		it.key = string(x.keyBuf)
	} else {
		it.key = hashKey(ev)
	}
	if len(ev) > x.maxSize {
		it.drop = dropOversize
	}
}

// splitArray calls fn with the bounds of each element of the JSON array in
// b, in order: b[off:end] is the element exactly as it appears, from its
// first to its last byte. It returns an error unless b is one valid JSON
// array (encoding/json's grammar, elements included), with white space
// and a leading UTF-8 BOM allowed around it; fn may have been called for
// the elements before the error. It runs once per poll, so it is
// encoding/json's Decoder that does the work: the RawMessage it copies
// each element into serves only to tell where the element starts.
func splitArray(b []byte, secrets *secret.Set, fn func(off, end int)) error {
	base := len(b) - len(bytes.TrimLeft(b, " \t\r\n"))
	if rest, ok := bytes.CutPrefix(b[base:], []byte("\xef\xbb\xbf")); ok {
		base = len(b) - len(rest)
	}
	dec := json.NewDecoder(bytes.NewReader(b[base:]))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return fmt.Errorf("%w: starts with %s", ErrBadResponse, snippet(b[base:], 40, secrets))
	}
	var raw json.RawMessage // reused: Decode appends to raw[:0]
	for dec.More() {
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("%w: element at byte %d: %w", ErrBadResponse, base+int(dec.InputOffset()), err)
		}
		end := base + int(dec.InputOffset())
		fn(end-len(raw), end)
	}
	if _, err := dec.Token(); err != nil { // not More: the ']', or an error
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("%w: at byte %d: %w", ErrBadResponse, base+int(dec.InputOffset()), err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the array at byte %d", ErrBadResponse, base+int(dec.InputOffset()))
	}
	return nil
}
