package promlabel

import "testing"

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"":                "",
		"darktrace":       "darktrace",
		`a"b`:             `a\"b`,
		`back\slash`:      `back\\slash`,
		"line\nfeed":      `line\nfeed`,
		"\\\"\n":          `\\\"\n`,
		"unicode é stays": "unicode é stays",
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}
