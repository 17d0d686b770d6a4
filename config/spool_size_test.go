package config

import (
	"reflect"
	"strings"
	"testing"
)

// TestSpoolMaxSizeHoldsLargestMessage (issue 10 item 2): spool.max_size must
// hold 4 segments of the largest message an input accepts, or one legal
// frame could never be spooled; the problem names the input's key and value.
func TestSpoolMaxSizeHoldsLargestMessage(t *testing.T) {
	f := func(maxMsg, maxSize string, want ...string) {
		t.Helper()
		in := "{name: in, protocol: tcp, address: \"127.0.0.1:1514\"}"
		if maxMsg != "" {
			in = "{name: in, protocol: tcp, address: \"127.0.0.1:1514\", max_message_size: " + maxMsg + "}"
		}
		doc := "inputs:\n  - " + in + "\noutputs:\n  - {name: out, type: file, path: \"-\"}\n" +
			"spool: {dir: /var/lib/dtrelay/spool, max_size: " + maxSize + "}\n"
		got, _ := lines(t, doc)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("max_message_size %q, max_size %s: problems\n  %s\nwant\n  %s", maxMsg, maxSize,
				strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	}
	// The case: the minimum check accepted before, with the default
	// 256KiB messages: a 262,033-byte frame got "record too large".
	f("", "1MiB", "5: spool.max_size: must be at least 2MiB to hold 4 segments of the largest message (inputs[0].max_message_size: 256KiB), got 1MiB")
	f("", "2MiB")
	f("64KiB", "1MiB")
	f("16MiB", "64MiB", "5: spool.max_size: must be at least 65MiB to hold 4 segments of the largest message (inputs[0].max_message_size: 16MiB), got 64MiB")
	f("16MiB", "65MiB")
	f("", "512KiB", "5: spool.max_size: must be at least 1MiB, got 512KiB")
}
