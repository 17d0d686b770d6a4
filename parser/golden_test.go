package parser_test

import (
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// update rewrites the golden files (and the generated payload files) from
// the current code: go test ./parser/ -run Golden -update. Review the diff.
var update = flag.Bool("update", false, "rewrite golden files and generated testdata")

const (
	headersDir  = "../testdata/headers"
	payloadsDir = "../testdata/payloads"
	// samplesDir holds the real public Darktrace samples (never copied here).
	samplesDir = "../../shared/testdata/darktrace-samples"
)

// testFiles returns the names of the regular files in dir whose names end
// in one of exts, sorted, golden files excluded.
func testFiles(t testing.TB, dir string, exts ...string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("cannot read %s: %v", dir, err)
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(n, "golden.") {
			continue
		}
		for _, ext := range exts {
			if strings.HasSuffix(n, ext) {
				names = append(names, n)
				break
			}
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		t.Fatalf("no test files in %s", dir)
	}
	return names
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("cannot read %s: %v", path, err)
	}
	return b
}

// writeOrCompare writes got to path under -update, else compares it with
// the file's contents.
func writeOrCompare(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("cannot write %s: %v", path, err)
		}
		return
	}
	want := readFile(t, path)
	if string(want) != string(got) {
		t.Errorf("%s is out of date; rerun with -update and review the diff.\n--- want\n%s\n--- got\n%s",
			filepath.Base(path), want, got)
	}
}
