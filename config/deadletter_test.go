package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestDeadLetterDefaults: dead_letter.dir defaults to SPOOL_DIR/dead-letter
// with a spool and to the service's state directory without; check's
// summary says where outputs that can refuse events keep them.
func TestDeadLetterDefaults(t *testing.T) {
	dir := t.TempDir()
	base := "inputs: [{name: in, protocol: tcp, address: 127.0.0.1:1514}]\noutputs: [{name: sek, type: sekoia-http, intake_key: k-0123456789abcdef}, {name: f, type: file, path: out.ndjson}]\n"
	for _, tc := range []struct {
		yaml, dir string
		size      Size
	}{
		{base, DefaultDeadLetterDir, GiB},
		{base + "spool: {dir: " + dir + "}\n", filepath.Join(dir, "dead-letter"), GiB},
		{base + "spool: {dir: " + dir + "}\ndead_letter: {dir: " + dir + "/dl, max_size: 8MiB}\n", filepath.Join(dir, "dl"), 8 * MiB},
	} {
		c, _, err := Parse([]byte(tc.yaml), "")
		if err != nil {
			t.Fatal(err)
		}
		if c.DeadLetter.Dir != tc.dir || c.DeadLetter.MaxSize != tc.size {
			t.Errorf("dead_letter = %+v, want dir %s, max_size %s", c.DeadLetter, tc.dir, tc.size)
		}
		want := "dead_letter: " + tc.dir + ", max " + tc.size.String() + " per output (sek)\n"
		if s := c.Summary(); !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
	if s := Default().Summary(); strings.Contains(s, "dead_letter") {
		t.Errorf("the default (a file output, which refuses nothing) shows a dead-letter line:\n%s", s)
	}
}
