package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// nodeBudget bounds the work spent on one document: every key, list item and
// value costs one unit. It is far above any real configuration and keeps
// alias-heavy documents ("billion laughs") cheap.
const nodeBudget = 100_000

// maxMergeDepth bounds nested "<<" merge keys.
const maxMergeDepth = 8

// decoder walks a yaml.Node tree, collecting every problem and warning with
// its key path and line. It is used for one document, by one goroutine.
type decoder struct {
	file   string
	dir    string // base of relative paths; "" leaves them as they are
	lookup func(string) (string, bool)

	lines     map[string]int     // key path → line of the key (or list item)
	set       map[string]bool    // key paths given a non-null value
	env       map[string]fromEnv // key paths whose (non-empty) value came from ${...}: never quoted
	problems  []Problem
	warnings  []Warning
	budget    int
	exhausted bool

	// bad holds the key paths that have a problem. Once validating, a new
	// problem on such a path (or below it) is left out: it would only echo
	// the first one.
	bad        map[string]bool
	validating bool

	// The key paths of the decoded Config's inputs, outputs and routes,
	// index for index (items that are not mappings are left out).
	inputPaths, outputPaths, routePaths []string
}

func newDecoder(file string, lookup func(string) (string, bool)) *decoder {
	d := &decoder{
		file:   file,
		lookup: lookup,
		lines:  map[string]int{},
		set:    map[string]bool{},
		env:    map[string]fromEnv{},
		bad:    map[string]bool{},
		budget: nodeBudget,
	}
	if file != "" {
		d.dir = filepath.Dir(file)
	}
	return d
}

// join returns the path of key inside path.
func join(path, key string) string {
	if !simpleKey(key) {
		key = quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// simpleKey reports whether key can be shown in a path unquoted.
func simpleKey(key string) bool {
	if key == "" || len(key) > 64 {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '[' || c == ']' {
			return false
		}
	}
	return true
}

// line returns the line of path, or of its nearest ancestor that has one.
func (d *decoder) line(path string) int {
	for {
		if l, ok := d.lines[path]; ok {
			return l
		}
		if path == "" {
			return 0
		}
		path = parentPath(path)
	}
}

// reported reports whether path or one of its ancestors has a problem.
func (d *decoder) reported(path string) bool {
	for {
		if d.bad[path] {
			return true
		}
		if path == "" {
			return false
		}
		path = parentPath(path)
	}
}

// parentPath returns the path path is in: "a.b[2]" → "a.b" → "a" → "".
func parentPath(path string) string {
	if i := strings.LastIndexAny(path, ".["); i >= 0 {
		return path[:i]
	}
	return ""
}

func (d *decoder) has(path string) bool   { _, ok := d.lines[path]; return ok }
func (d *decoder) isSet(path string) bool { return d.set[path] }

func (d *decoder) problemAt(path string, line int, msg string) {
	if d.validating && d.reported(path) {
		return
	}
	d.bad[path] = true
	d.note(path, line, d.hideEnv(path, msg))
}

// note adds a problem that does not hide later ones on the same path (a
// duplicate key: the first one is still decoded and checked).
func (d *decoder) note(path string, line int, msg string) {
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Key: path, Msg: msg})
}

func (d *decoder) problemf(path, format string, args ...any) {
	d.problemAt(path, d.line(path), fmt.Sprintf(format, args...))
}

func (d *decoder) warnf(path, format string, args ...any) {
	d.warnings = append(d.warnings, Warning{File: d.file, Line: d.line(path), Key: path, Msg: d.hideEnv(path, fmt.Sprintf(format, args...))})
}

// spend takes one unit of the budget; false once it is used up.
func (d *decoder) spend() bool {
	if d.budget > 0 {
		d.budget--
		return true
	}
	if !d.exhausted {
		d.exhausted = true
		d.problemAt("", 0, fmt.Sprintf("document too large: more than %d keys and values (after expanding aliases)", nodeBudget))
	}
	return false
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	}
	return "an alias"
}

type keyValue struct {
	key  string
	line int
	v    *yaml.Node
}

// fields walks the mapping n at path. For each key listed in known it records
// the key's line and calls f with the value and the key's path; any other key
// is a problem. A null n counts as an empty mapping. fields returns false,
// with a problem, when n is not a mapping.
func (d *decoder) fields(n *yaml.Node, path string, known []string, f func(key string, v *yaml.Node, p string)) bool {
	n = resolve(n)
	if n == nil || isNull(n) {
		return true
	}
	if n.Kind != yaml.MappingNode {
		d.problemf(path, "must be a mapping (key: value), not %s", describe(n))
		return false
	}
	for _, kv := range d.pairs(n, path, 0) {
		p := join(path, kv.key)
		d.lines[p] = kv.line
		if !slices.Contains(known, kv.key) {
			msg := "unknown key"
			if s := suggest(kv.key, known); s != "" {
				msg += " (did you mean " + s + "?)"
			}
			d.problemf(p, "%s", msg)
			continue
		}
		f(kv.key, kv.v, p)
	}
	return true
}

// pairs lists the keys and values of mapping n, with "<<" merge keys
// expanded (keys given in n win over merged ones) and duplicate or
// non-scalar keys reported.
func (d *decoder) pairs(n *yaml.Node, path string, depth int) []keyValue {
	var out []keyValue
	seen := map[string]int{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if !d.spend() {
			return out
		}
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			d.note(path, n.Content[i].Line, "keys must be plain words, not "+describe(n.Content[i]))
			continue
		}
		if k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.note(join(path, k.Value), k.Line, fmt.Sprintf("duplicate key (first at line %d)", first))
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, keyValue{k.Value, k.Line, v})
	}
	for _, m := range merges {
		for _, kv := range d.merged(m, path, depth) {
			if _, dup := seen[kv.key]; !dup {
				seen[kv.key] = kv.line
				out = append(out, kv)
			}
		}
	}
	return out
}

// merged returns the pairs a "<<" value brings: a mapping or a list of them.
func (d *decoder) merged(m *yaml.Node, path string, depth int) []keyValue {
	line := m.Line
	m = resolve(m)
	if depth >= maxMergeDepth {
		d.problemAt(path, line, "\"<<\" merges nested too deeply")
		return nil
	}
	switch {
	case m == nil:
	case m.Kind == yaml.MappingNode:
		return d.pairs(m, path, depth+1)
	case m.Kind == yaml.SequenceNode:
		var out []keyValue
		for _, item := range m.Content {
			out = append(out, d.merged(item, path, depth+1)...)
		}
		return out
	}
	d.problemAt(path, line, "\"<<\" must merge a mapping or a list of mappings")
	return nil
}

// sequence calls f for each item of the list n at path, recording the
// item's line. A null n is an empty list.
func (d *decoder) sequence(n *yaml.Node, path string, f func(item *yaml.Node, p string)) {
	n = resolve(n)
	if n == nil || isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.problemf(path, "must be a list, not %s", describe(n))
		return
	}
	for i, item := range n.Content {
		if !d.spend() {
			return
		}
		p := index(path, i)
		d.lines[p] = item.Line
		f(item, p)
	}
}

// scalar returns the value of the scalar n with environment variables
// expanded. ok is false for null (not a problem: the default stays) and for
// a node that is not a scalar or does not expand (a problem, which never
// quotes the value).
func (d *decoder) scalar(n *yaml.Node, path string) (string, bool) {
	n = resolve(n)
	if n == nil || !d.spend() || isNull(n) {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		d.problemf(path, "must be a single value, not %s", describe(n))
		return "", false
	}
	s, vars, err := expandEnvVars(n.Value, d.lookup)
	if err != nil {
		d.problemf(path, "%v", err)
		return "", false
	}
	if len(vars) > 0 && s != "" {
		d.env[path] = fromEnv{vars: vars, value: s}
	}
	d.set[path] = true
	return s, true
}

func (d *decoder) str(n *yaml.Node, path string, dst *string) {
	if s, ok := d.scalar(n, path); ok {
		*dst = s
	}
}

// filePath decodes a file path, made relative to the configuration's directory.
// "-" (standard output) and "" are kept as they are.
func (d *decoder) filePath(n *yaml.Node, path string, dst *string) {
	if s, ok := d.scalar(n, path); ok {
		if s != "" && s != "-" && d.dir != "" && !filepath.IsAbs(s) {
			s = filepath.Join(d.dir, s)
		}
		*dst = s
	}
}

func (d *decoder) boolean(n *yaml.Node, path string, dst *bool) {
	s, ok := d.scalar(n, path)
	if !ok {
		return
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true":
		*dst = true
	case "false":
		*dst = false
	default:
		d.problemf(path, "must be true or false, got %s", quote(s))
	}
}

// systemRoots decodes system_roots (default true) into its negation, so
// that the zero Input or Output trusts the system roots.
func (d *decoder) systemRoots(n *yaml.Node, path string, no *bool) {
	on := true
	d.boolean(n, path, &on)
	*no = !on
}

func (d *decoder) integer(n *yaml.Node, path string, dst *int) {
	s, ok := d.scalar(n, path)
	if !ok {
		return
	}
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
	switch {
	case err != nil:
		d.problemf(path, "must be a whole number, got %s", quote(s))
	case v < 0:
		d.problemf(path, "must not be negative, got %d", v)
	default:
		*dst = int(v)
	}
}

// score decodes a score from 0 to 1 into *dst.
func (d *decoder) score(n *yaml.Node, path string, dst **float64) {
	s, ok := d.scalar(n, path)
	if !ok {
		return
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || v < 0 || v > 1 || v != v {
		d.problemf(path, "must be a score from 0 to 1 (AI Analyst's 0-100 scaled to it), got %s", quote(s))
		return
	}
	*dst = &v
}

func (d *decoder) size(n *yaml.Node, path string, dst *Size) {
	s, ok := d.scalar(n, path)
	if !ok {
		return
	}
	v, err := ParseSize(s)
	if err != nil {
		d.problemf(path, "%v, got %s", err, quote(s))
		return
	}
	*dst = v
}

func (d *decoder) duration(n *yaml.Node, path string, dst *time.Duration) {
	s, ok := d.scalar(n, path)
	if !ok {
		return
	}
	v, err := parseDuration(s)
	if err != nil {
		d.problemf(path, "%v, got %s", err, quote(s))
		return
	}
	*dst = v
}

// strList decodes a list of non-empty strings.
func (d *decoder) strList(n *yaml.Node, path string, dst *[]string) {
	d.sequence(n, path, func(item *yaml.Node, p string) {
		if s, ok := d.listItem(item, p); ok {
			*dst = append(*dst, s)
		}
	})
}

// listItem returns the value of a list item, which must not be empty.
func (d *decoder) listItem(item *yaml.Node, path string) (string, bool) {
	s, ok := d.scalar(item, path)
	if ok && s != "" {
		return s, true
	}
	if r := resolve(item); ok || r != nil && isNull(r) {
		d.problemf(path, "must not be empty")
	}
	return "", false
}

// suggest returns the known key closest to key when it is close enough to
// be a typo, else "".
func suggest(key string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if dist := editDistance(key, k); dist < bestDist && dist <= len(k)/3 {
			best, bestDist = k, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between short strings a and b.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
