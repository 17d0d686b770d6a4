package poller

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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
			params: url.Values{"historicmodelonly": {"true"}, "includeacknowledged": {"true"}},
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

var errTruncated = errors.New("truncated")

// splitArray calls fn with the bounds of each element of the JSON array in
// b: b[off:end] is the element exactly as it appears, from its first to its
// last byte. It checks the array's structure (brackets, strings, commas),
// not the elements' contents. A leading UTF-8 BOM is skipped.
func splitArray(b []byte, secrets *secret.Set, fn func(off, end int)) error {
	i := skipWS(b, 0)
	if bytes.HasPrefix(b[i:], []byte("\xef\xbb\xbf")) {
		i = skipWS(b, i+3)
	}
	if i >= len(b) || b[i] != '[' {
		return fmt.Errorf("%w: starts with %s", ErrBadResponse, snippet(b[i:], 40, secrets))
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return trailing(b, i+1)
	}
	for {
		end, err := skipValue(b, i)
		if err != nil {
			return fmt.Errorf("%w: element at byte %d: %w", ErrBadResponse, i, err)
		}
		fn(i, end)
		i = skipWS(b, end)
		if i >= len(b) {
			return fmt.Errorf("%w: %w after byte %d", ErrBadResponse, errTruncated, end)
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case ']':
			return trailing(b, i+1)
		default:
			return fmt.Errorf("%w: %s at byte %d where , or ] was expected", ErrBadResponse, snippet(b[i:i+1], 1, secrets), i)
		}
	}
}

func trailing(b []byte, i int) error {
	if i = skipWS(b, i); i != len(b) {
		return fmt.Errorf("%w: data after the array at byte %d", ErrBadResponse, i)
	}
	return nil
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// maxDepth bounds the nesting of arrays and objects (fastjson's limit is
// 300).
const maxDepth = 1000

// skipValue returns the end of the JSON value starting at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errTruncated
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		var small [64]byte
		stack := small[:0] // the closers expected
		for j := i; j < len(b); j++ {
			switch c := b[j]; c {
			case '"':
				end, err := skipString(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				if len(stack) == maxDepth {
					return 0, fmt.Errorf("nested deeper than %d", maxDepth)
				}
				stack = append(stack, c+2) // '{'+2 == '}', '['+2 == ']'
			case '}', ']':
				if len(stack) == 0 || stack[len(stack)-1] != c {
					return 0, fmt.Errorf("unbalanced %q", c)
				}
				stack = stack[:len(stack)-1]
				if len(stack) == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, errTruncated
	case ',', ']', '}', ':':
		return 0, fmt.Errorf("unexpected %q", b[i])
	}
	j := i
	for j < len(b) {
		switch b[j] {
		case ',', ']', '}', ' ', '\n', '\r', '\t':
			return j, nil
		}
		j++
	}
	return j, nil
}

// skipString returns the end of the JSON string starting at b[i] == '"'.
func skipString(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, errTruncated
}
