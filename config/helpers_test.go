package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/dtrelay/dtrelay/internal/pki"
)

// testdataDir holds the project's configuration samples.
const testdataDir = "../testdata/config"

// writeCert writes a certificate for "localhost" to dir/server.pem and its
// key to dir/server-key.pem (the certificate also parses as a CA file).
func writeCert(t testing.TB, dir string) {
	t.Helper()
	ca, err := pki.NewCA("config test CA")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.Issue(append(pki.Server, pki.Client...), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.WritePair(c, filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")); err != nil {
		t.Fatal(err)
	}
}

// testEnv sets the variables the samples under testdata/config use and
// returns the directory DTRELAY_TEST_DIR points to (with a certificate, a
// key and a spool directory in it).
func testEnv(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeCert(t, dir)
	if err := os.Mkdir(filepath.Join(dir, "spool"), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DTRELAY_TEST_DIR", dir)
	t.Setenv("SEKOIA_INTAKE_KEY", "sekoia-intake-key-0123456789")
	t.Setenv("DT_PUBLIC_TOKEN", "dt-public-token-0123456789")
	t.Setenv("DT_PRIVATE_TOKEN", "dt-private-token-0123456789")
	t.Setenv("ARCHIVE_TOKEN", "archive-token-0123456789")
	t.Setenv("DTRELAY_TEST_UNSET", "")
	os.Unsetenv("DTRELAY_TEST_UNSET")
	return dir
}

// expectation is a "# want `re`" (a problem) or "# warn `re`" (a warning)
// comment: the line it is on must have a problem or warning whose
// "KEY: msg" matches re.
type expectation struct {
	warn bool
	line int
	re   *regexp.Regexp
	used bool
}

var expectRE = regexp.MustCompile("#\\s*(want|warn)\\s+([`\"].*)$")

// expectations reads the want/warn comments of a sample. Several quoted
// regexps may follow one "want".
func expectations(t *testing.T, data []byte) []*expectation {
	t.Helper()
	var out []*expectation
	for i, line := range strings.Split(string(data), "\n") {
		m := expectRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		rest := m[2]
		for rest != "" {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				t.Fatalf("line %d: bad expectation %q: %v", i+1, rest, err)
			}
			s, _ := strconv.Unquote(q)
			out = append(out, &expectation{warn: m[1] == "warn", line: i + 1, re: regexp.MustCompile(s)})
			rest = strings.TrimSpace(rest[len(q):])
		}
	}
	return out
}

// checkExpectations matches every problem and warning with an expectation on
// its line, and every expectation with a problem or warning.
func checkExpectations(t *testing.T, exps []*expectation, problems []Problem, warnings []Warning) {
	t.Helper()
	match := func(warn bool, line int, text string) bool {
		for _, e := range exps {
			if !e.used && e.warn == warn && e.line == line && e.re.MatchString(text) {
				e.used = true
				return true
			}
		}
		return false
	}
	for _, p := range problems {
		if !match(false, p.Line, p.Key+": "+p.Msg) {
			t.Errorf("unexpected problem: %s", p)
		}
	}
	for _, w := range warnings {
		if !match(true, w.Line, w.Key+": "+w.Msg) {
			t.Errorf("unexpected warning: %s", w)
		}
	}
	for _, e := range exps {
		if !e.used {
			kind := "problem"
			if e.warn {
				kind = "warning"
			}
			t.Errorf("line %d: no %s matching %q", e.line, kind, e.re)
		}
	}
}

// problems returns the problems of err, which must be nil or an *Errors.
func problems(t *testing.T, err error) []Problem {
	t.Helper()
	if err == nil {
		return nil
	}
	errs, ok := err.(*Errors)
	if !ok {
		t.Fatalf("error is %T, want *Errors: %v", err, err)
	}
	if len(errs.Problems) == 0 {
		t.Fatal("*Errors without problems")
	}
	return errs.Problems
}
