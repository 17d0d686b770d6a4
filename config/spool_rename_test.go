package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestSpoolRenameDecodedAndSummarised(t *testing.T) {
	doc := `
inputs: [{name: in, protocol: tcp, address: "127.0.0.1:1514"}]
outputs: [{name: b, type: file, path: "-"}]
spool: {dir: /var/lib/dtrelay/spool, rename: {a: b}}
`
	c, _, err := Parse([]byte(doc), "")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"a": "b"}; !reflect.DeepEqual(c.Spool.Rename, want) {
		t.Fatalf("rename %v, want %v", c.Spool.Rename, want)
	}
	if s := c.Summary(); !strings.Contains(s, "backlog renamed: a -> b") {
		t.Fatalf("summary lacks the rename:\n%s", s)
	}
}
