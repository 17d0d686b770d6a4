package parser

import (
	"github.com/valyala/fastjson"
)

// DefaultMaxPayload is the payload size limit of a Classifier whose
// MaxPayload is 0: 256 KiB, the default max_message_size.
const DefaultMaxPayload = 256 << 10

// TestModelName is the model name of Darktrace's "Verify alert settings"
// test alert.
const TestModelName = "Unrestricted Test Model"

// Classifier validates Darktrace JSON payloads and reads the fields routing
// needs into an Alert. It parses each payload once with its own
// fastjson.Parser and reads every field from that one parse.
//
// A Classifier is not safe for concurrent use: keep one per event loop (or
// take one from a pool for the duration of a read). It keeps a copy of the
// last payload (fastjson parses a private copy), so its memory grows to the
// largest payload it has seen, at most MaxPayload. The zero value is ready
// to use with DefaultMaxPayload.
type Classifier struct {
	// MaxPayload is the largest payload Classify parses, in bytes; larger
	// ones get ErrTooLarge before any parsing. 0 means DefaultMaxPayload.
	MaxPayload int
	// Strict adds a full validation pass (fastjson.Validate) before the
	// parse. Without it the parse alone decides what is JSON: it rejects
	// anything structurally broken (truncated, unbalanced, missing ':' or
	// ',', bad literals, trailing bytes, not an object) but accepts invalid
	// escape sequences ("\x"), sloppy numbers ("01", "1-2", NaN, Inf) and,
	// like Validate, raw control bytes in strings. Strict doubles the cost
	// (≈ 4.4 µs instead of 2.3 µs of CPU for a 1.5 KB model breach).
	Strict bool

	p fastjson.Parser
	f fields
	r valueReader
}

// NewClassifier returns a Classifier that rejects payloads larger than
// maxPayload bytes (0 or less: DefaultMaxPayload).
func NewClassifier(maxPayload int) *Classifier {
	if maxPayload < 0 {
		maxPayload = 0
	}
	return &Classifier{MaxPayload: maxPayload}
}

// fields holds the top-level members of one payload that classification
// reads, found in a single pass over the object. Values are valid until
// the next parse.
type fields struct {
	pbid, id, uuid, model, triggered, score, time, creationTime *fastjson.Value
	createdAt, aiaScore, summariser, category, iris, alertName  *fastjson.Value
	priorityLevel, priority, lastUpdated, direction, anomaly    *fastjson.Value
	timestamp, start                                            *fastjson.Value
}

func (f *fields) visit(key []byte, v *fastjson.Value) {
	switch string(key) {
	case "pbid":
		f.pbid = v
	case "id":
		f.id = v
	case "uuid":
		f.uuid = v
	case "model":
		f.model = v
	case "triggeredComponents":
		f.triggered = v
	case "score":
		f.score = v
	case "time":
		f.time = v
	case "creationTime":
		f.creationTime = v
	case "createdAt":
		f.createdAt = v
	case "aiaScore":
		f.aiaScore = v
	case "summariser":
		f.summariser = v
	case "category":
		f.category = v
	case "iris-event-type":
		f.iris = v
	case "alert_name":
		f.alertName = v
	case "priority_level":
		f.priorityLevel = v
	case "priority":
		f.priority = v
	case "last_updated":
		f.lastUpdated = v
	case "direction":
		f.direction = v
	case "anomaly_score":
		f.anomaly = v
	case "timestamp":
		f.timestamp = v
	case "start":
		f.start = v
	}
}

// Classify fills a from payload, one Darktrace JSON alert; app is the
// header's APP-NAME/TAG (Header.App), which alone marks audit records.
// Neither payload nor app is retained, and a holds no reference to them.
//
// It returns ErrTooLarge for a payload over the size limit and ErrNotJSON
// for one that is not a single JSON object (see Strict for how strictly
// that is checked); a then has Kind KindUnknown, Score -1 and nothing else
// set. Otherwise it returns nil. In steady state (after the parser has
// grown to the payload shapes seen) it makes no heap allocations; only a
// payload that looks like an object ('{' … '}') but fails to parse costs
// one (fastjson's error value).
//
// Kind, by the payload's shape (first match wins; DESIGN.md §2):
//   - KindAudit: app is "darktrace_audit".
//   - KindAntigena: has "iris-event-type" (a RESPOND/Antigena action event;
//     these also carry "pbid" and a string "model", hence checked first).
//   - KindModelBreach: "model" is an object and "pbid" or
//     "triggeredComponents" is present; KindTest instead when the model's
//     name is TestModelName.
//   - KindAIAnalyst: has "aiaScore" or "summariser".
//   - KindSystemStatus: has "alert_name" and "priority_level" or
//     "last_updated".
//   - KindEmail: has "anomaly_score" and "direction".
//   - KindUnknown: any other JSON object.
//
// The model of a breach is "model.now", else "model.then", else "model"
// itself (flat, as older masters and the test alert send it); its "name",
// "category", "priority" and "actions.antigena" are used below.
//
// Score (0..1, -1 absent): model breach "score" (0..1 already); AI Analyst
// "aiaScore" / 100; e-mail "anomaly_score" / 100. Numbers or numeric
// strings; negative or NaN values count as absent, values above 1 after
// scaling are clamped to 1. Other kinds have no score.
//
// Time (Unix ms, 0 absent), first present of: model breach "time",
// "creationTime"; AI Analyst "createdAt"; system status "last_updated";
// e-mail "time", "timestamp"; Antigena "time", "start"; audit and unknown
// "time", "timestamp", "createdAt". A number below 1e11 is taken as
// seconds (system status and Antigena send seconds, possibly fractional),
// otherwise as milliseconds. A string may hold such a number or a date
// "YYYY-MM-DD[T ]hh:mm:ss[.frac][Z|±hh:mm|±hhmm]" (no zone means UTC),
// parsed without allocating.
//
// ID (truncated to MaxIDLen): "pbid" when it is a positive integer, else
// "id" (string or integer), else "uuid" (system status, e-mail). Antigena
// events carry "pbid": 0 when not tied to a breach; they then have no ID.
//
// Priority, as InsightIDR derives it:
//  1. category "Informational" (any case; the model's category for a
//     breach, the top-level "category" otherwise) → PriorityNone;
//  2. with a score: ≥ 0.80 High, ≥ 0.50 Medium, else Low;
//  3. without: "priority_level" (system status), else "priority" (the
//     model's for a breach, else top-level). Words: critical/high → High,
//     medium/moderate → Medium, low → Low, informational/info/none → None.
//     Numbers (or numeric strings) 0–5: ≥ 3 High, ≥ 1 Medium, else Low;
//     above 5 they are the system-status 0–100 scale and are divided by 20
//     first (43 → Medium, 98 → High, matching the samples' priority_level);
//  4. nothing to go on (audit, most unknown payloads) → PriorityLow, so
//     that a route with min_priority: low still sees them.
//
// Suppressed ("carries Antigena response data", which InsightIDR
// suppresses): every KindAntigena event, and a model breach or test alert
// whose model has a non-empty "actions.antigena" object, i.e. a model
// configured to trigger an Antigena/RESPOND action (the samples'
// "Antigena::…" models carry {"action": "quarantine", …}; every other
// model has "antigena": {}).
func (c *Classifier) Classify(payload, app []byte, a *Alert) error {
	*a = Alert{Score: -1}
	limit := c.MaxPayload
	if limit <= 0 {
		limit = DefaultMaxPayload
	}
	if len(payload) > limit {
		return ErrTooLarge
	}
	// Cheap pre-check: fastjson builds error values with fmt (allocating),
	// so obvious non-objects never reach it.
	if !looksLikeObject(payload) {
		return ErrNotJSON
	}
	if c.Strict && fastjson.ValidateBytes(payload) != nil {
		return ErrNotJSON
	}
	v, err := c.p.ParseBytes(payload)
	if err != nil || v.Type() != fastjson.TypeObject {
		return ErrNotJSON
	}
	o, _ := v.Object()
	f := &c.f
	*f = fields{}
	o.Visit(f.visit)
	c.fill(app, a)
	return nil
}

// fill applies the rules documented on Classify to the fields found.
func (c *Classifier) fill(app []byte, a *Alert) {
	f := &c.f
	var category, priority *fastjson.Value
	switch {
	case string(app) == tagDarktraceAudit:
		a.Kind = KindAudit
		a.Time = c.r.firstTime(f.time, f.timestamp, f.createdAt)
		c.r.setID(a, f.pbid, f.id, f.uuid)
		category, priority = f.category, f.priority
	case f.iris != nil:
		a.Kind = KindAntigena
		a.Time = c.r.firstTime(f.time, f.start, nil)
		c.r.setID(a, f.pbid, f.id, f.uuid)
		a.Suppressed = true
		category, priority = f.category, f.priority
	case f.model != nil && f.model.Type() == fastjson.TypeObject && (f.pbid != nil || f.triggered != nil):
		m := effectiveModel(f.model)
		a.Kind = KindModelBreach
		if stringIs(m.Get("name"), TestModelName) {
			a.Kind = KindTest
		}
		a.Score = c.r.score(f.score, 1)
		a.Time = c.r.firstTime(f.time, f.creationTime, nil)
		c.r.setID(a, f.pbid, nil, nil)
		a.Suppressed = hasAntigenaAction(m)
		category, priority = m.Get("category"), m.Get("priority")
	case f.aiaScore != nil || f.summariser != nil:
		a.Kind = KindAIAnalyst
		a.Score = c.r.score(f.aiaScore, 100)
		a.Time = c.r.firstTime(f.createdAt, nil, nil)
		c.r.setID(a, nil, f.id, nil)
		category, priority = f.category, f.priority
	case f.alertName != nil && (f.priorityLevel != nil || f.lastUpdated != nil):
		a.Kind = KindSystemStatus
		a.Time = c.r.firstTime(f.lastUpdated, nil, nil)
		c.r.setID(a, nil, f.id, f.uuid)
		category, priority = f.category, f.priority
	case f.anomaly != nil && f.direction != nil:
		a.Kind = KindEmail
		a.Score = c.r.score(f.anomaly, 100)
		a.Time = c.r.firstTime(f.time, f.timestamp, nil)
		c.r.setID(a, nil, f.id, f.uuid)
		category, priority = f.category, f.priority
	default:
		a.Kind = KindUnknown
		a.Time = c.r.firstTime(f.time, f.timestamp, f.createdAt)
		c.r.setID(a, f.pbid, f.id, f.uuid)
		category, priority = f.category, f.priority
	}
	a.Priority = c.r.derivePriority(category, a.Score, f.priorityLevel, priority)
}

// effectiveModel returns model.now, else model.then, else model.
func effectiveModel(model *fastjson.Value) *fastjson.Object {
	o, _ := model.Object()
	for _, k := range [2]string{"now", "then"} {
		if v := o.Get(k); v != nil && v.Type() == fastjson.TypeObject {
			sub, _ := v.Object()
			return sub
		}
	}
	return o
}

// hasAntigenaAction reports whether m.actions.antigena is a non-empty object.
func hasAntigenaAction(m *fastjson.Object) bool {
	actions := m.Get("actions")
	if actions == nil || actions.Type() != fastjson.TypeObject {
		return false
	}
	ao, _ := actions.Object()
	ag := ao.Get("antigena")
	if ag == nil || ag.Type() != fastjson.TypeObject {
		return false
	}
	agO, _ := ag.Object()
	return agO.Len() > 0
}

// looksLikeObject reports whether b, JSON white space aside, starts with '{' and
// ends with '}'.
func looksLikeObject(b []byte) bool {
	i, j := 0, len(b)
	for i < j && isJSONSpace(b[i]) {
		i++
	}
	for j > i && isJSONSpace(b[j-1]) {
		j--
	}
	return j-i >= 2 && b[i] == '{' && b[j-1] == '}'
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
