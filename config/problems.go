package config

import (
	"strconv"
	"strings"
)

// Problem is one reason a configuration cannot be used.
type Problem struct {
	File string // the file name given to Parse or Load
	Line int    // 1-based; 0 when the problem has no position
	Key  string // the key path, e.g. "outputs[1].batch.max_events"; "" for the document
	Msg  string
}

// String returns "FILE:LINE: KEY: msg", leaving out the parts that are empty.
func (p Problem) String() string { return position(p.File, p.Line, p.Key, p.Msg) }

// Warning is something legitimate but unusual in a configuration.
type Warning struct {
	File string
	Key  string
	Line int
	Msg  string
}

// String returns "FILE:LINE: KEY: msg", leaving out the parts that are empty.
func (w Warning) String() string { return position(w.File, w.Line, w.Key, w.Msg) }

// Errors is the error returned for an invalid configuration. It lists every
// problem found, ordered by line.
type Errors struct {
	Problems []Problem
}

// Error returns the problems, one per line.
func (e *Errors) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.String())
	}
	return b.String()
}

func position(file string, line int, key, msg string) string {
	var b strings.Builder
	if file != "" {
		b.WriteString(file)
		if line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(line))
		}
		b.WriteString(": ")
	} else if line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(line))
		b.WriteString(": ")
	}
	if key != "" {
		b.WriteString(key)
		b.WriteString(": ")
	}
	b.WriteString(msg)
	return b.String()
}

// quote returns s quoted for a message, truncated to a readable length.
// Never call it with a secret.
func quote(s string) string {
	const max = 80
	if len(s) > max {
		cut := max
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "..."
	}
	return strconv.Quote(s)
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
