package parser

import (
	"strconv"

	"github.com/valyala/fastjson"
)

// FastjsonOracle is the classifier as it was before the purpose-made
// scanner (one fastjson parse, then field reads), kept as a test oracle:
// for every valid JSON object that fastjson parses (nesting below its
// MaxDepth of 300 values), Classifier.ClassifyDetails must give the same
// Alert and Details (and Classifier.Classify the same Alert).
//
// It applies the rules documented on Classify with one deliberate change
// from the old code: a duplicate key wins when it is the last one at every
// level (the old code took the last top-level key but the first one inside
// the model, through fastjson's Object.Get). It does not check the size
// limit, and its verdict on what is JSON is fastjson's (lenient); compare
// verdicts with encoding/json instead. Not safe for concurrent use.
type FastjsonOracle struct {
	p   fastjson.Parser
	f   oracleFields
	buf [40]byte
}

// oracleFields are the top-level members, as fields.visit collected them.
type oracleFields struct {
	pbid, id, uuid, model, triggered, score, time, creationTime *fastjson.Value
	createdAt, aiaScore, summariser, category, iris, alertName  *fastjson.Value
	priorityLevel, priority, lastUpdated, direction, anomaly    *fastjson.Value
	timestamp, start                                            *fastjson.Value
}

func (f *oracleFields) visit(key []byte, v *fastjson.Value) {
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

// Classify fills a and d from payload as Classifier.ClassifyDetails
// documents it.
func (o *FastjsonOracle) Classify(payload, app []byte, a *Alert, d *Details) error {
	*a, *d = Alert{Score: -1}, Details{}
	v, err := o.p.ParseBytes(payload)
	if err != nil || v.Type() != fastjson.TypeObject {
		return ErrNotJSON
	}
	obj, _ := v.Object()
	f := &o.f
	*f = oracleFields{}
	obj.Visit(f.visit)
	var category, priority *fastjson.Value
	switch {
	case string(app) == tagDarktraceAudit:
		a.Kind = KindAudit
		d.Time = o.firstTime(f.time, f.timestamp, f.createdAt)
		o.setID(d, f.pbid, f.id, f.uuid)
		category, priority = f.category, f.priority
	case f.iris != nil:
		a.Kind = KindAntigena
		d.Time = o.firstTime(f.time, f.start, nil)
		o.setID(d, f.pbid, f.id, f.uuid)
		d.Suppressed = true
		category, priority = f.category, f.priority
	case f.model != nil && f.model.Type() == fastjson.TypeObject && (f.pbid != nil || f.triggered != nil):
		m := oracleModel(f.model)
		a.Kind = KindModelBreach
		if oracleStringIs(lastGet(m, "name"), TestModelName) {
			a.Kind = KindTest
		}
		a.Score = o.score(f.score, 1)
		d.Time = o.firstTime(f.time, f.creationTime, nil)
		o.setID(d, f.pbid, nil, nil)
		d.Suppressed = oracleAntigena(m)
		category, priority = lastGet(m, "category"), lastGet(m, "priority")
	case f.aiaScore != nil || f.summariser != nil:
		a.Kind = KindAIAnalyst
		a.Score = o.score(f.aiaScore, 100)
		d.Time = o.firstTime(f.createdAt, nil, nil)
		o.setID(d, nil, f.id, nil)
		category, priority = f.category, f.priority
	case f.alertName != nil && (f.priorityLevel != nil || f.lastUpdated != nil):
		a.Kind = KindSystemStatus
		d.Time = o.firstTime(f.lastUpdated, nil, nil)
		o.setID(d, nil, f.id, f.uuid)
		category, priority = f.category, f.priority
	case f.anomaly != nil && f.direction != nil:
		a.Kind = KindEmail
		a.Score = o.score(f.anomaly, 100)
		d.Time = o.firstTime(f.time, f.timestamp, nil)
		o.setID(d, nil, f.id, f.uuid)
		category, priority = f.category, f.priority
	default:
		a.Kind = KindUnknown
		d.Time = o.firstTime(f.time, f.timestamp, f.createdAt)
		o.setID(d, f.pbid, f.id, f.uuid)
		category, priority = f.category, f.priority
	}
	a.Priority = o.derivePriority(category, a.Score, f.priorityLevel, priority)
	return nil
}

// lastGet returns the value of the last member of o named key (Visit
// unescapes keys), or nil.
func lastGet(o *fastjson.Object, key string) *fastjson.Value {
	var v *fastjson.Value
	o.Visit(func(k []byte, x *fastjson.Value) {
		if string(k) == key {
			v = x
		}
	})
	return v
}

// oracleModel returns model.now, else model.then, else model.
func oracleModel(model *fastjson.Value) *fastjson.Object {
	o, _ := model.Object()
	for _, k := range [2]string{"now", "then"} {
		if v := lastGet(o, k); v != nil && v.Type() == fastjson.TypeObject {
			sub, _ := v.Object()
			return sub
		}
	}
	return o
}

// oracleAntigena reports whether m.actions.antigena is a non-empty object.
func oracleAntigena(m *fastjson.Object) bool {
	actions := lastGet(m, "actions")
	if actions == nil || actions.Type() != fastjson.TypeObject {
		return false
	}
	ao, _ := actions.Object()
	ag := lastGet(ao, "antigena")
	if ag == nil || ag.Type() != fastjson.TypeObject {
		return false
	}
	agO, _ := ag.Object()
	return agO.Len() > 0
}

// numText returns the raw text of a number, the unescaped contents of a
// string, or nil.
func (o *FastjsonOracle) numText(v *fastjson.Value) []byte {
	if v == nil {
		return nil
	}
	switch v.Type() {
	case fastjson.TypeNumber:
		return v.MarshalTo(o.buf[:0])
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		return b
	}
	return nil
}

func (o *FastjsonOracle) score(v *fastjson.Value, scale float64) float64 {
	f, ok := parseNumber(o.numText(v))
	if !ok || f < 0 {
		return -1
	}
	f /= scale
	if f > 1 {
		f = 1
	}
	return f
}

func (o *FastjsonOracle) firstTime(a, b, c *fastjson.Value) int64 {
	for _, v := range [3]*fastjson.Value{a, b, c} {
		if v == nil {
			continue
		}
		if t := o.timeOf(v); t != 0 {
			return t
		}
	}
	return 0
}

func (o *FastjsonOracle) timeOf(v *fastjson.Value) int64 {
	b := o.numText(v)
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
		if ms, ok := parseDate(b); ok && ms > 0 {
			return ms
		}
	}
	return 0
}

func (o *FastjsonOracle) setID(d *Details, pbid, id, uuid *fastjson.Value) {
	if b := o.numText(pbid); b != nil {
		if n, ok := parseUint(b); ok && n > 0 {
			d.IDLen = uint8(len(strconv.AppendUint(d.ID[:0], n, 10)))
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
				d.IDLen = uint8(copy(d.ID[:], b))
				return
			}
		case fastjson.TypeNumber:
			b := v.MarshalTo(o.buf[:0])
			if _, ok := parseUint(b); ok {
				d.IDLen = uint8(copy(d.ID[:], b))
				return
			}
		}
	}
}

func oracleStringIs(v *fastjson.Value, s string) bool {
	if v == nil || v.Type() != fastjson.TypeString {
		return false
	}
	b, _ := v.StringBytes()
	return string(b) == s
}

func (o *FastjsonOracle) derivePriority(category *fastjson.Value, score float64, level, priority *fastjson.Value) Priority {
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
	if p, ok := o.priorityFrom(level); ok {
		return p
	}
	if p, ok := o.priorityFrom(priority); ok {
		return p
	}
	return PriorityLow
}

func (o *FastjsonOracle) priorityFrom(v *fastjson.Value) (Priority, bool) {
	b := o.numText(v)
	if b == nil {
		return 0, false
	}
	if f, ok := parseNumber(b); ok {
		if f < 0 {
			return 0, false
		}
		if f > 5 {
			f /= 20
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
