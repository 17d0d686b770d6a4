package forward

import (
	"fmt"
	"strings"

	"github.com/VictoriaMetrics/metrics"

	"github.com/dtrelay/dtrelay/parser"
)

// MaxOutputs is the most outputs a pipeline can have: a record's routing is
// a bit mask.
const MaxOutputs = 64

// Match selects alerts. Every field set must match (an empty one matches
// all): Kinds, MinPriority and Inputs as before; Models (globs on the model
// name, '*' any run of bytes, '?' one byte), Categories (the model's or the
// alert's category, compared without case), the score range (when
// ScoreRange: MinScore <= score <= MaxScore; an alert without a score does
// not match), Sources (globs on the syslog HOSTNAME) and Tags (the syslog
// APP-NAME/TAG exactly: "darktrace", "darktrace_audit").
type Match struct {
	Kinds       []parser.Kind
	MinPriority parser.Priority
	Inputs      []int

	Models             []string
	Categories         []string
	ScoreRange         bool
	MinScore, MaxScore float64
	Sources            []string
	Tags               []string
}

// RouteSpec is one entry of the configuration's routes, with names already
// resolved to indexes. An alert takes the route when Match matches and Not
// (when set) does not. A Drop route sends it nowhere, counted
// dtrelay_route_filtered_total{route}; Dedup, when set, sends an alert
// whose identity took this route within the window no further on it.
type RouteSpec struct {
	Name string
	Match
	Not     *Match
	Outputs []int
	Drop    bool
	Dedup   *DedupSpec
}

// Route modes (Options.RouteMode): every matching route's outputs, or the
// first matching route's only.
const (
	RouteAll   = "all"
	RouteFirst = "first"
)

// matcher is a Match compiled for the hot path.
type matcher struct {
	kinds   uint32 // bit per parser.Kind; all ones = any
	minPrio parser.Priority
	inputs  uint64 // bit per input index; all ones = any

	models, sources    []string
	categories, tags   []string
	scored             bool
	minScore, maxScore float64
}

func compileMatch(m *Match) (matcher, error) {
	c := matcher{kinds: ^uint32(0), minPrio: m.MinPriority, inputs: ^uint64(0),
		models: m.Models, sources: m.Sources, categories: m.Categories, tags: m.Tags,
		scored: m.ScoreRange, minScore: m.MinScore, maxScore: m.MaxScore}
	if len(m.Kinds) > 0 {
		c.kinds = 0
		for _, k := range m.Kinds {
			c.kinds |= 1 << uint(k)
		}
	}
	if len(m.Inputs) > 0 {
		c.inputs = 0
		for _, i := range m.Inputs {
			if i < 0 || i >= 64 {
				return c, fmt.Errorf("forward: route input index %d out of range", i)
			}
			c.inputs |= 1 << uint(i)
		}
	}
	return c, nil
}

// needsFields reports whether the matcher reads parser.Fields.
func (m *matcher) needsFields() bool { return len(m.models) > 0 || len(m.categories) > 0 }

// matches reports whether in matches every set criterion.
func (m *matcher) matches(in *RouteInput) bool {
	if m.kinds&(1<<uint(in.Kind)) == 0 || in.Priority < m.minPrio || m.inputs&(1<<uint(in.Input&63)) == 0 {
		return false
	}
	if m.scored && (in.Score < 0 || in.Score < m.minScore || in.Score > m.maxScore) {
		return false
	}
	if len(m.tags) > 0 && !anyEqual(m.tags, in.App, false) {
		return false
	}
	if len(m.sources) > 0 && !anyGlob(m.sources, in.Host) {
		return false
	}
	if len(m.models) > 0 && (in.Fields == nil || !anyGlob(m.models, in.Fields.Model)) {
		return false
	}
	if len(m.categories) > 0 && (in.Fields == nil || !anyEqual(m.categories, in.Fields.Category, true)) {
		return false
	}
	return true
}

type route struct {
	name    string
	match   matcher
	not     *matcher
	outputs uint64
	drop    bool
	dedup   *dedupSet
	// dropped counts what this drop route sent nowhere.
	dropped *metrics.Counter
}

// Router decides which outputs a record goes to. Its routes are immutable
// after construction; it is safe for concurrent use (a de-duplication set
// takes its own lock).
type Router struct {
	routes  []route
	first   bool   // RouteFirst
	all     uint64 // every output
	notJSON uint64 // outputs that carry non-JSON messages (syslog, format original)
	fields  bool   // some route reads parser.Fields, or de-duplicates
	// outDedup[i], when not nil, de-duplicates what goes to output i.
	outDedup []*dedupSet
}

// RouteInput is what Route decides on: the record's classification and
// header, and the fields routes read (Fields is nil unless NeedsFields).
// Payload is hashed for de-duplication when Fields has no identity.
type RouteInput struct {
	Kind     parser.Kind
	Priority parser.Priority
	Score    float64
	Input    int
	NotJSON  bool
	Host     []byte
	App      []byte
	Fields   *parser.Fields
	Payload  []byte
	Now      int64 // Unix ns, for de-duplication windows
}

// RouterOptions are what NewRouter needs besides the routes.
type RouterOptions struct {
	Outputs int
	// NotJSON lists the outputs that accept messages whose payload is not
	// JSON.
	NotJSON []int
	// Mode is RouteAll (the default) or RouteFirst.
	Mode string
	// OutputDedup[i], when not nil, de-duplicates output i; OutputNames
	// name them (metrics, state files).
	OutputDedup []*DedupSpec
	OutputNames []string
	Metrics     *metrics.Set
}

// NewRouter builds a Router. Without routes every record goes to every
// output.
func NewRouter(routes []RouteSpec, o RouterOptions) (*Router, error) {
	if o.Outputs > MaxOutputs {
		return nil, fmt.Errorf("forward: at most %d outputs, have %d", MaxOutputs, o.Outputs)
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewSet()
	}
	r := &Router{all: 1<<uint(o.Outputs) - 1}
	if o.Outputs == MaxOutputs {
		r.all = ^uint64(0)
	}
	switch o.Mode {
	case "", RouteAll:
	case RouteFirst:
		r.first = true
	default:
		return nil, fmt.Errorf("forward: unknown route mode %q", o.Mode)
	}
	for _, i := range o.NotJSON {
		r.notJSON |= 1 << uint(i)
	}
	for i, rs := range routes {
		m, err := compileMatch(&rs.Match)
		if err != nil {
			return nil, err
		}
		name := rs.Name
		if name == "" {
			name = fmt.Sprintf("route%d", i+1)
		}
		rt := route{name: name, match: m, drop: rs.Drop}
		if rs.Not != nil {
			n, err := compileMatch(rs.Not)
			if err != nil {
				return nil, err
			}
			rt.not = &n
			r.fields = r.fields || n.needsFields()
		}
		r.fields = r.fields || m.needsFields()
		for _, o2 := range rs.Outputs {
			if o2 < 0 || o2 >= o.Outputs {
				return nil, fmt.Errorf("forward: route output index %d out of range", o2)
			}
			rt.outputs |= 1 << uint(o2)
		}
		if rs.Drop {
			rt.dropped = o.Metrics.GetOrCreateCounter(fmt.Sprintf(`dtrelay_route_filtered_total{route=%q}`, name))
		}
		if rs.Dedup != nil {
			r.fields = true
			rt.dedup = newDedupSet("route-"+name, *rs.Dedup,
				o.Metrics.GetOrCreateCounter(fmt.Sprintf(`dtrelay_route_deduplicated_total{route=%q}`, name)))
		}
		r.routes = append(r.routes, rt)
	}
	for i, d := range o.OutputDedup {
		if d == nil {
			continue
		}
		if r.outDedup == nil {
			r.outDedup = make([]*dedupSet, o.Outputs)
		}
		name := fmt.Sprint(i)
		if i < len(o.OutputNames) {
			name = o.OutputNames[i]
		}
		r.fields = true
		r.outDedup[i] = newDedupSet("output-"+name, *d,
			o.Metrics.GetOrCreateCounter(fmt.Sprintf(`dtrelay_output_deduplicated_total{output=%q}`, name)))
	}
	return r, nil
}

// NeedsFields reports whether some route reads RouteInput.Fields (or
// de-duplicates, keying on Fields.Identity): the producer then classifies
// with parser.Classifier.ClassifyFields.
func (r *Router) NeedsFields() bool { return r.fields }

// Route returns the mask of outputs a record goes to; 0 means none. When a
// drop route decided, it counts the record in that route's counter.
func (r *Router) Route(in *RouteInput) uint64 { return r.route(in, nil) }

// RouteTrace says how Explain decided: the routes taken, the drop route
// that dropped the alert, and the routes and outputs that found it a
// duplicate.
type RouteTrace struct {
	Routes       []string
	Dropped      string
	Deduplicated []string
}

// Explain is Route that also fills t (dtrelay check --route: the dry run).
// It counts and remembers as Route does.
func (r *Router) Explain(in *RouteInput, t *RouteTrace) uint64 {
	*t = RouteTrace{}
	return r.route(in, t)
}

func (r *Router) route(in *RouteInput, t *RouteTrace) uint64 {
	mask := r.all
	if len(r.routes) > 0 {
		mask = r.routeMask(in, t)
	}
	if in.NotJSON {
		mask &= r.notJSON
	}
	if r.outDedup != nil && mask != 0 {
		var key uint64
		for i, d := range r.outDedup {
			if d == nil || mask&(1<<uint(i)) == 0 {
				continue
			}
			if key == 0 {
				key = dedupKey(in)
			}
			if d.seen(key, in.Now) {
				mask &^= 1 << uint(i)
				if t != nil {
					t.Deduplicated = append(t.Deduplicated, d.name)
				}
			}
		}
	}
	return mask
}

func (r *Router) routeMask(in *RouteInput, t *RouteTrace) uint64 {
	var mask uint64
	var key uint64
	for i := range r.routes {
		rt := &r.routes[i]
		if !rt.match.matches(in) || (rt.not != nil && rt.not.matches(in)) {
			continue
		}
		if rt.drop {
			// A drop route is a filter: in mode all it drops what any
			// other route would take; in mode first, what no earlier route
			// took.
			rt.dropped.Inc()
			if t != nil {
				t.Dropped, t.Routes = rt.name, nil
			}
			return 0
		}
		if t != nil {
			t.Routes = append(t.Routes, rt.name)
		}
		out := rt.outputs
		if rt.dedup != nil {
			if key == 0 {
				key = dedupKey(in)
			}
			if rt.dedup.seen(key, in.Now) {
				out = 0
				if t != nil {
					t.Deduplicated = append(t.Deduplicated, rt.dedup.name)
				}
			}
		}
		mask |= out
		if r.first {
			return mask
		}
	}
	return mask
}

// anyGlob reports whether s matches one of the patterns.
func anyGlob(patterns []string, s []byte) bool {
	for _, p := range patterns {
		if glob(p, s) {
			return true
		}
	}
	return false
}

// anyEqual reports whether s equals one of the values (ignoring ASCII case
// when fold).
func anyEqual(values []string, s []byte, fold bool) bool {
	for _, v := range values {
		if fold && strings.EqualFold(v, string(s)) || !fold && v == string(s) {
			return true
		}
	}
	return false
}

// glob reports whether s matches pattern, where '*' matches any run of
// bytes (empty included) and '?' any one byte; every other byte matches
// itself. It allocates nothing and backtracks only to the last '*'.
func glob(pattern string, s []byte) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
