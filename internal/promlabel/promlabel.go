// Package promlabel escapes Prometheus label values for metric names built
// by hand (the text exposition format: backslash, double quote and line
// feed are escaped). Safe for concurrent use.
package promlabel

import "strings"

var escaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// Escape returns v escaped for use between the quotes of a label value. It
// allocates only when v holds a character to escape.
func Escape(v string) string {
	if !strings.ContainsAny(v, "\\\"\n") {
		return v
	}
	return escaper.Replace(v)
}
