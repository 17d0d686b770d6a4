package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: no input makes Parse panic, and its results are consistent:
// a Config or an *Errors with problems, never both or neither.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(testdataDir, "*.yaml"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(minimalDoc))
	f.Add([]byte("a: &a [*a]\ninputs: *a\n"))
	f.Add([]byte("inputs: [{<<: [{<<: {name: x}}], protocol: tcp}]\n"))
	f.Add([]byte("outputs: [{name: h, type: http, url: \"https://x/${A:-b}$$\", headers: {? [a]: b}}]\n"))
	lookup := func(name string) (string, bool) {
		if strings.HasPrefix(name, "SET") {
			return "value", true
		}
		return "", false
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, warnings, err := parse(data, "fuzz.yaml", lookup)
		if (c == nil) == (err == nil) {
			t.Fatalf("config %v with error %v", c, err)
		}
		if err != nil {
			errs, ok := err.(*Errors)
			if !ok || len(errs.Problems) == 0 {
				t.Fatalf("error %T %v", err, err)
			}
			_ = errs.Error()
		} else {
			_ = c.Summary()
		}
		for _, w := range warnings {
			_ = w.String()
		}
	})
}
