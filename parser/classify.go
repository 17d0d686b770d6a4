package parser

import (
	"unicode/utf8"
)

// DefaultMaxPayload is the payload size limit of a Classifier whose
// MaxPayload is 0: 256 KiB, the default max_message_size.
const DefaultMaxPayload = 256 << 10

// TestModelName is the model name of Darktrace's "Verify alert settings"
// test alert.
const TestModelName = "Unrestricted Test Model"

// maxPayloadLen is the largest payload Classify looks at whatever
// MaxPayload says: value offsets are int32.
const maxPayloadLen = 1<<31 - 1

// Classifier validates Darktrace JSON payloads and reads the fields routing
// needs into an Alert, in one pass over the payload with a purpose-made
// scanner: it validates the whole payload against the JSON grammar
// (RFC 8259) and records where the few values it reads lie, without
// copying the payload or building a tree.
//
// A Classifier is not safe for concurrent use: keep one per event loop (or
// take one from a pool for the duration of a read). It retains nothing of
// a payload after Classify returns. It keeps a buffer for unescaping the
// string fields it reads that hold escapes (rare), as large as the longest
// such field seen. The zero value is ready to use with DefaultMaxPayload.
type Classifier struct {
	// MaxPayload is the largest payload Classify parses, in bytes; larger
	// ones get ErrTooLarge before any parsing. 0 means DefaultMaxPayload.
	MaxPayload int
	// Strict additionally rejects payloads that are not valid UTF-8 (in
	// JSON only strings can hold non-ASCII bytes, so these are strings with
	// invalid UTF-8). Without it such bytes pass through, as with
	// encoding/json. The JSON grammar is checked fully either way: string
	// escapes, numbers, literals, structure, no raw control bytes in
	// strings. Escaped lone surrogates ("\ud800") are valid JSON and
	// accepted in both modes. Strict costs one utf8.Valid pass over the
	// payload.
	Strict bool

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

// Classify fills a from payload, one Darktrace JSON alert; app is the
// header's APP-NAME/TAG (Header.App), which alone marks audit records.
// Neither payload nor app is retained, and a holds no reference to them.
// It reads what routes, metrics and records use; ClassifyDetails also
// reads the event time, the ID and whether InsightIDR suppresses it.
//
// It returns ErrTooLarge for a payload over the size limit and ErrNotJSON
// for one that is not exactly one JSON object (RFC 8259, white space
// around it allowed; see Strict for UTF-8), or that nests objects and
// arrays more than 512 deep (the top-level object counting as 1); a then
// has Kind KindUnknown, Score -1 and nothing else set. Otherwise it
// returns nil. It makes no heap allocations, except to grow its unescape
// buffer the first times a field it reads holds escapes.
//
// When a key appears more than once in an object, the last one wins, at
// every level (top-level keys, model, model.now, model.then, actions);
// keys are compared after unescaping ("\u0070bid" is "pbid").
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
func (c *Classifier) Classify(payload, app []byte, a *Alert) error {
	return c.classify(payload, app, a, nil)
}

// ClassifyDetails is Classify that also fills d, for tests and for
// de-duplication; the hot path has no use for these fields and does not
// pay for them. On error d is zero. It makes no heap allocations either,
// on the same terms as Classify.
//
// Time (Unix ms, 0 absent), first present of: model breach "time",
// "creationTime"; AI Analyst "createdAt"; system status "last_updated";
// e-mail "time", "timestamp"; Antigena "time", "start"; audit and unknown
// "time", "timestamp", "createdAt". A number below 1e11 is taken as
// seconds (system status and Antigena send seconds, possibly fractional),
// otherwise as milliseconds. A string may hold such a number or a date
// "YYYY-MM-DD[T ]hh:mm:ss[.frac][Z|±hh:mm|±hhmm]" (no zone means UTC),
// parsed without allocating. Times at or before the Unix epoch count as
// absent.
//
// ID (truncated to MaxIDLen): "pbid" when it is a positive integer, else
// "id" (string or integer), else "uuid" (system status, e-mail); a model
// breach only by "pbid", an AI Analyst event only by "id". Antigena
// events carry "pbid": 0 when not tied to a breach; they then have no ID.
//
// Suppressed ("carries Antigena response data", which InsightIDR
// suppresses): every KindAntigena event, and a model breach or test alert
// whose model has a non-empty "actions.antigena" object, i.e. a model
// configured to trigger an Antigena/RESPOND action (the samples'
// "Antigena::…" models carry {"action": "quarantine", …}; every other
// model has "antigena": {}).
func (c *Classifier) ClassifyDetails(payload, app []byte, a *Alert, d *Details) error {
	*d = Details{}
	return c.classify(payload, app, a, d)
}

// classify is Classify, and ClassifyDetails when d is not nil.
func (c *Classifier) classify(payload, app []byte, a *Alert, d *Details) error {
	*a = Alert{Score: -1}
	limit := c.MaxPayload
	if limit <= 0 {
		limit = DefaultMaxPayload
	}
	if len(payload) > limit || len(payload) > maxPayloadLen {
		return ErrTooLarge
	}
	if !c.f.scan(payload) || (c.Strict && !utf8.Valid(payload)) {
		return ErrNotJSON
	}
	c.r.b = payload
	c.fill(app, a)
	if d != nil {
		c.fillDetails(a.Kind, d)
	}
	c.r.b = nil
	return nil
}

// fill applies the rules documented on Classify to the fields found.
func (c *Classifier) fill(app []byte, a *Alert) {
	f, r := &c.f, &c.r
	var category, priority jsonValue
	switch {
	case string(app) == tagDarktraceAudit:
		a.Kind = KindAudit
		category, priority = f.category, f.priority
	case f.iris.typ != typeNone:
		a.Kind = KindAntigena
		category, priority = f.category, f.priority
	case f.model.typ == typeObject && (f.pbid.typ != typeNone || f.triggered.typ != typeNone):
		m := f.effectiveModel()
		a.Kind = KindModelBreach
		if r.stringIs(m.name, TestModelName) {
			a.Kind = KindTest
		}
		a.Score = r.score(f.score, 1)
		category, priority = m.category, m.priority
	case f.aiaScore.typ != typeNone || f.summariser.typ != typeNone:
		a.Kind = KindAIAnalyst
		a.Score = r.score(f.aiaScore, 100)
		category, priority = f.category, f.priority
	case f.alertName.typ != typeNone && (f.priorityLevel.typ != typeNone || f.lastUpdated.typ != typeNone):
		a.Kind = KindSystemStatus
		category, priority = f.category, f.priority
	case f.anomaly.typ != typeNone && f.direction.typ != typeNone:
		a.Kind = KindEmail
		a.Score = r.score(f.anomaly, 100)
		category, priority = f.category, f.priority
	default:
		a.Kind = KindUnknown
		category, priority = f.category, f.priority
	}
	a.Priority = r.derivePriority(category, a.Score, f.priorityLevel, priority)
}

// fillDetails applies the rules documented on ClassifyDetails to the
// fields found, for a payload that fill classified as kind.
func (c *Classifier) fillDetails(kind Kind, d *Details) {
	f, r := &c.f, &c.r
	var none jsonValue
	switch kind {
	case KindAntigena:
		d.Time = r.firstTime(f.time, f.start, none)
		r.setID(d, f.pbid, f.id, f.uuid)
		d.Suppressed = true
	case KindModelBreach, KindTest:
		d.Time = r.firstTime(f.time, f.creationTime, none)
		r.setID(d, f.pbid, none, none)
		d.Suppressed = r.nonEmptyObject(f.effectiveModel().antigena)
	case KindAIAnalyst:
		d.Time = r.firstTime(f.createdAt, none, none)
		r.setID(d, none, f.id, none)
	case KindSystemStatus:
		d.Time = r.firstTime(f.lastUpdated, none, none)
		r.setID(d, none, f.id, f.uuid)
	case KindEmail:
		d.Time = r.firstTime(f.time, f.timestamp, none)
		r.setID(d, none, f.id, f.uuid)
	default: // KindAudit, KindUnknown
		d.Time = r.firstTime(f.time, f.timestamp, f.createdAt)
		r.setID(d, f.pbid, f.id, f.uuid)
	}
}

// effectiveModel returns the fields of model.now when it is an object,
// else of model.then when it is one, else of model itself.
func (f *fields) effectiveModel() *modelFields {
	switch {
	case f.now.typ == typeObject:
		return &f.lv[1]
	case f.then.typ == typeObject:
		return &f.lv[2]
	}
	return &f.lv[0]
}

// nonEmptyObject reports whether v is an object with at least one member
// (v.typ is only typeObject for a model's actions.antigena when actions
// itself is an object).
func (r *valueReader) nonEmptyObject(v jsonValue) bool {
	if v.typ != typeObject {
		return false
	}
	i := skipWS(r.b, int(v.start)+1)
	return r.b[i] != '}'
}
