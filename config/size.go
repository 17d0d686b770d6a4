package config

import (
	"errors"
	"math/big"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Size is a number of bytes. In YAML it is a plain integer (1024) or a number
// with a unit: B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB
// (powers of 1024), case-insensitive, e.g. "256KiB", "4MB" (4,000,000),
// "1.5GiB". The result must be a whole number of bytes.
type Size int64

// Common sizes.
const (
	KiB Size = 1 << 10
	MiB Size = 1 << 20
	GiB Size = 1 << 30
	TiB Size = 1 << 40
)

var errSizeSyntax = errors.New("want a number of bytes such as 1024, 256KiB or 4MB")

// ParseSize parses s as a Size. Negative sizes are an error.
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if strings.HasPrefix(t, "-") {
		return 0, errors.New("must not be negative")
	}
	if !validDecimal(num) {
		return 0, errSizeSyntax
	}
	var mult int64
	switch unit {
	case "", "b":
		mult = 1
	case "kb":
		mult = 1e3
	case "mb":
		mult = 1e6
	case "gb":
		mult = 1e9
	case "tb":
		mult = 1e12
	case "kib":
		mult = int64(KiB)
	case "mib":
		mult = int64(MiB)
	case "gib":
		mult = int64(GiB)
	case "tib":
		mult = int64(TiB)
	default:
		return 0, errors.New("unknown unit " + quote(strings.TrimSpace(t[i:])) + " (want B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)")
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, errSizeSyntax
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	if !r.IsInt() {
		return 0, errors.New("not a whole number of bytes")
	}
	if !r.Num().IsInt64() {
		return 0, errors.New("too large")
	}
	return Size(r.Num().Int64()), nil
}

// validDecimal reports whether s is digits with at most one inner '.'.
func validDecimal(s string) bool {
	if len(s) == 0 || len(s) > 40 {
		return false
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || strings.Contains(frac, ".") || (hasDot && frac == "") {
		return false
	}
	return true
}

// String formats s in the largest binary unit that divides it exactly, else
// the largest decimal one, else in bytes: "256KiB", "4MB", "1000".
func (s Size) String() string {
	if s == 0 {
		return "0"
	}
	for _, u := range [...]struct {
		n    Size
		name string
	}{{TiB, "TiB"}, {GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}, {1e12, "TB"}, {1e9, "GB"}, {1e6, "MB"}, {1e3, "KB"}} {
		if s%u.n == 0 {
			return strconv.FormatInt(int64(s/u.n), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// UnmarshalText parses text with ParseSize.
func (s *Size) UnmarshalText(text []byte) error {
	v, err := ParseSize(string(text))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// UnmarshalYAML lets a Size be decoded by yaml.v3 in other documents.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("config: a size must be a scalar")
	}
	return s.UnmarshalText([]byte(n.Value))
}

// parseDuration parses a Go duration; a bare 0 is allowed. Negative
// durations are an error.
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, errors.New("want a duration such as 500ms, 5s or 1m30s")
	}
	if d < 0 {
		return 0, errors.New("must not be negative")
	}
	return d, nil
}

// formatDuration is time.Duration.String without trailing zero units:
// "5m" rather than "5m0s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
