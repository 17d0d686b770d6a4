package bench

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Size limits of generated alerts, in bytes of JSON.
const (
	MinAlertSize = 400
	MaxAlertSize = 250000
)

// Template is one family's alert at one size, compiled for fast rendering.
// It is immutable and safe for concurrent use.
type Template struct {
	Family Family
	// Size is the rendered size in bytes for a 7-digit sequence number; a
	// rendered alert differs from it by the width of the numbers only.
	Size int
	segs []segment
}

type segment struct {
	slot byte // 0: literal; else a placeholder letter (see phSeq...)
	lit  []byte
}

// NewTemplate builds family f's alert padded to about size bytes.
func NewTemplate(f Family, size int) (*Template, error) {
	if f >= numFamilies {
		return nil, fmt.Errorf("bench: unknown family %d", f)
	}
	if size < MinAlertSize || size > MaxAlertSize {
		return nil, fmt.Errorf("bench: alert size %d out of range %d..%d", size, MinAlertSize, MaxAlertSize)
	}
	// Take the largest number of repeated elements that leaves room for some
	// free text (the compact form when even none do), then pad the free-text
	// field to the exact size.
	const minPad = 40
	reps := -1
	if base := nominal(f.body(0, "")); base+minPad <= size {
		step := nominal(f.body(1, "")) - base
		reps = (size - minPad - 200 - base) / step
		if reps < 0 {
			reps = 0
		}
		for reps > 0 && nominal(f.body(reps, ""))+minPad > size {
			reps--
		}
	}
	pad := size - nominal(f.body(reps, ""))
	if pad < 0 {
		pad = 0 // even the compact form is larger than asked
	}
	return compile(f, f.body(reps, padText(pad))), nil
}

// nominal returns the rendered size of a body with placeholders.
func nominal(body string) int {
	n := 0
	for i := 0; i < len(body); i++ {
		if body[i] == 0x01 && i+1 < len(body) {
			n += phWidth[body[i+1]]
			i++
			continue
		}
		n++
	}
	return n
}

func compile(f Family, body string) *Template {
	t := &Template{Family: f, Size: nominal(body)}
	for {
		i := strings.IndexByte(body, 0x01)
		if i < 0 {
			break
		}
		if i > 0 {
			t.segs = append(t.segs, segment{lit: []byte(body[:i])})
		}
		t.segs = append(t.segs, segment{slot: body[i+1]})
		body = body[i+2:]
	}
	if body != "" {
		t.segs = append(t.segs, segment{lit: []byte(body)})
	}
	return t
}

// Append appends the alert with sequence number seq sent at sentNanos (Unix
// nanoseconds) to dst and returns the extended slice. It allocates only when
// dst must grow.
func (t *Template) Append(dst []byte, seq uint64, sentNanos int64) []byte {
	for i := range t.segs {
		s := &t.segs[i]
		switch s.slot {
		case 0:
			dst = append(dst, s.lit...)
		case 'S':
			dst = strconv.AppendUint(dst, seq, 10)
		case 'T':
			dst = strconv.AppendInt(dst, sentNanos, 10)
		case 'M':
			dst = strconv.AppendInt(dst, sentNanos/1e6, 10)
		case 'E':
			dst = strconv.AppendInt(dst, sentNanos/1e9, 10)
		case 'U':
			dst = appendUUID(dst, seq)
		}
	}
	return dst
}

// appendUUID appends a UUID-shaped id that is unique per seq: 16 hex digits
// of a hash of seq, then seq itself in hex.
func appendUUID(dst []byte, seq uint64) []byte {
	const hex = "0123456789abcdef"
	var b [36]byte
	h := seq*0x9e3779b97f4a7c15 ^ 0x5bd1e9955bd1e995
	j := 0
	put := func(v uint64, n int) {
		for k := n - 1; k >= 0; k-- {
			if j == 8 || j == 13 || j == 18 || j == 23 {
				b[j] = '-'
				j++
			}
			b[j] = hex[(v>>(4*uint(k)))&0xf]
			j++
		}
	}
	put(h, 16)
	put(seq, 16)
	return append(dst, b[:]...)
}

// Mix weights families; a family absent from the map is not generated.
type Mix map[Family]int

// DefaultMix is a plausible production mix: mostly model breaches, then AI
// Analyst events, with some of every other family and a rare test alert.
func DefaultMix() Mix {
	return Mix{FamilyModelBreach: 45, FamilyAIAnalyst: 20, FamilyAntigena: 10, FamilySystemStatus: 10,
		FamilyEmail: 10, FamilyAudit: 4, FamilyTest: 1}
}

// ParseMix parses "model_breach=50,ai_analyst=20,..." ("" or "default" gives
// DefaultMix, "all" weighs every family equally).
func ParseMix(s string) (Mix, error) {
	switch s {
	case "", "default":
		return DefaultMix(), nil
	case "all":
		m := Mix{}
		for _, f := range Families() {
			m[f] = 1
		}
		return m, nil
	}
	m := Mix{}
	for _, part := range strings.Split(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		f, known := ParseFamily(name)
		if !known {
			return nil, fmt.Errorf("bench: unknown family %q in mix (want one of %s)", name, strings.Join(familyNames[:], ", "))
		}
		weight := 1
		if ok {
			n, err := strconv.Atoi(w)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("bench: bad weight %q for family %s in mix", w, name)
			}
			weight = n
		}
		m[f] += weight
	}
	return m, nil
}

// Generator picks a template for each sequence number so that families follow
// the mix and sizes spread over the configured range. It is immutable and
// safe for concurrent use; the choice depends on seq only.
type Generator struct {
	templates []*Template
	schedule  []uint16 // index into templates, cycled by seq
	meanSize  float64
}

// scheduleLen is the length of the cycle of template choices.
const scheduleLen = 4096

// NewGenerator returns a Generator for alerts of minSize..maxSize bytes
// (equal for a single size; up to 8 sizes log-spaced between them otherwise)
// in the given mix.
func NewGenerator(mix Mix, minSize, maxSize int) (*Generator, error) {
	if maxSize < minSize {
		return nil, fmt.Errorf("bench: size range %d-%d is reversed", minSize, maxSize)
	}
	total := 0
	fams := make([]Family, 0, len(mix))
	for f, w := range mix {
		if w > 0 {
			fams = append(fams, f)
			total += w
		}
	}
	if total == 0 {
		return nil, errors.New("bench: mix has no family with a positive weight")
	}
	sort.Slice(fams, func(i, j int) bool { return fams[i] < fams[j] })
	sizes := []int{minSize}
	if maxSize > minSize {
		const steps = 8
		sizes = sizes[:0]
		for i := 0; i < steps; i++ {
			s := float64(minSize) * math.Pow(float64(maxSize)/float64(minSize), float64(i)/(steps-1))
			sizes = append(sizes, int(s))
		}
	}
	g := &Generator{}
	// Weighted cycle: family slots proportional to weights, each spread over
	// the sizes round-robin, then shuffled deterministically.
	for _, f := range fams {
		for _, s := range sizes {
			t, err := NewTemplate(f, s)
			if err != nil {
				return nil, err
			}
			g.templates = append(g.templates, t)
		}
	}
	for i := 0; i < scheduleLen; i++ {
		// Map i to a family by weight, then to a size.
		pos := i * total / scheduleLen
		fi := 0
		for acc := mix[fams[0]]; pos >= acc; acc += mix[fams[fi]] {
			fi++
		}
		g.schedule = append(g.schedule, uint16(fi*len(sizes)+i%len(sizes)))
	}
	x := uint64(0x2545f4914f6cdd1d)
	for i := len(g.schedule) - 1; i > 0; i-- {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		j := int(x % uint64(i+1))
		g.schedule[i], g.schedule[j] = g.schedule[j], g.schedule[i]
	}
	sum := 0
	for _, ti := range g.schedule {
		sum += g.templates[ti].Size
	}
	g.meanSize = float64(sum) / scheduleLen
	return g, nil
}

// Pick returns the template for sequence number seq.
func (g *Generator) Pick(seq uint64) *Template {
	return g.templates[g.schedule[seq%scheduleLen]]
}

// Append appends alert seq sent at sentNanos to dst.
func (g *Generator) Append(dst []byte, seq uint64, sentNanos int64) []byte {
	return g.Pick(seq).Append(dst, seq, sentNanos)
}

// MeanSize returns the mean alert size over the cycle, in bytes.
func (g *Generator) MeanSize() float64 { return g.meanSize }
