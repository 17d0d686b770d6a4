package config

import (
	"errors"
	"strconv"
	"strings"

	"github.com/dtrelay/dtrelay/internal/secret"
)

// expandEnv replaces "${NAME}" and "${NAME:-default}" in s with values from
// lookup, and "$$" with "$". Any other "$" is kept. The error names the
// variable, never a value.
func expandEnv(s string, lookup func(string) (string, bool)) (string, error) {
	v, _, err := expandEnvVars(s, lookup, nil)
	return v, err
}

// expandEnvVars is expandEnv that also returns the variables used, as
// "${NAME}" each, and the values they gave. With refs it also expands
// "${file:PATH}" and "${credential:NAME}" (secretfile.go) with
// refs(kind, ref); without, they are an error.
func expandEnvVars(s string, lookup func(string) (string, bool), refs func(kind, ref string) (string, error)) (string, []envVar, error) {
	if !strings.Contains(s, "$") {
		return s, nil, nil
	}
	var vars []envVar
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i += 2
			continue
		case '{':
		default:
			b.WriteByte(c)
			i++
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", nil, errors.New(`unterminated "${" (write "$$" for a literal "$")`)
		}
		expr := s[i+2 : i+2+end]
		if kind, ref, ok := secretRef(expr); ok {
			if refs == nil {
				return "", nil, errors.New("${" + kind + ":...} is allowed only in secret keys (" + secretKeys + ")")
			}
			v, err := refs(kind, ref)
			if err != nil {
				return "", nil, err
			}
			vars = append(vars, envVar{expr, v})
			b.WriteString(v)
			i += 2 + end + 1
			continue
		}
		name, def, hasDef := strings.Cut(expr, ":-")
		if !validEnvName(name) {
			return "", nil, errors.New("invalid environment variable name in ${...} (want letters, digits and _)")
		}
		v, ok := lookup(name)
		switch {
		case hasDef && v == "":
			v = def
		case !ok:
			return "", nil, errors.New("environment variable " + name + " is not set (use ${" + name + ":-default} for a default)")
		}
		vars = append(vars, envVar{name, v})
		b.WriteString(v)
		i += 2 + end + 1
	}
	return b.String(), vars, nil
}

// envVar is one variable a value was expanded with, or one secret file
// reference (its name then "file:PATH" or "credential:NAME").
type envVar struct{ name, value string }

// fromEnv is what the decoder remembers of a value expanded from the
// environment: the variables, and the value as expanded.
type fromEnv struct {
	vars  []envVar
	value string
}

// hideEnv rewrites msg, about the key at path, when that key's value came
// from the environment: such a value may be a secret, so it is never
// quoted. Every quoted string in msg (as quote and url errors write them,
// with the "..." of a truncation) becomes secret.Mask, and so does any
// other occurrence of the value or of a variable's value (from
// secret.MinPart bytes); the message then says where the value came from.
// A message that shows nothing of the value is left as it is.
func (d *decoder) hideEnv(path, msg string) string {
	e, ok := d.env[path]
	if !ok {
		return msg
	}
	var b strings.Builder
	hidden := false
	for i := 0; i < len(msg); {
		if msg[i] == '"' {
			if q, err := strconv.QuotedPrefix(msg[i:]); err == nil {
				b.WriteString(secret.Mask)
				hidden = true
				i += len(q)
				if strings.HasPrefix(msg[i:], "...") {
					i += 3
				}
				continue
			}
		}
		b.WriteByte(msg[i])
		i++
	}
	msg = b.String()
	var s secret.Set
	if len(e.value) >= secret.MinPart {
		s.Add(e.value)
	}
	names := make([]string, len(e.vars))
	fromFiles := false
	for i, v := range e.vars {
		if len(v.value) >= secret.MinPart {
			s.Add(v.value)
		}
		names[i] = "${" + v.name + "}"
		_, _, isRef := secretRef(v.name)
		fromFiles = fromFiles || isRef
	}
	if r := s.Redact(msg); r != msg {
		msg, hidden = r, true
	}
	if !hidden {
		return msg
	}
	if fromFiles {
		return msg + " (the value comes from " + strings.Join(names, ", ") + ", and is not shown)"
	}
	return msg + " (the value comes from the environment, " + strings.Join(names, ", ") + ", and is not shown)"
}

func validEnvName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
