package config

import (
	"strings"
	"testing"
)

func TestExpandEnv(t *testing.T) {
	env := map[string]string{"KEY": "k3y", "EMPTY": "", "HOST": "intake.sekoia.io", "DOLLAR": "$X"}
	lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	f := func(in, want, wantErr string) {
		t.Helper()
		got, err := expandEnv(in, lookup)
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Errorf("expandEnv(%q) = %q, %v; want error containing %q", in, got, err, wantErr)
			}
			return
		}
		if err != nil || got != want {
			t.Errorf("expandEnv(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	f("", "", "")
	f("plain", "plain", "")
	f("${KEY}", "k3y", "")
	f("a${KEY}b${KEY}", "ak3ybk3y", "")
	f("${HOST}:10514", "intake.sekoia.io:10514", "")
	f("${EMPTY}", "", "")
	f("${UNSET:-fallback}", "fallback", "")
	f("${EMPTY:-fallback}", "fallback", "")
	f("${KEY:-fallback}", "k3y", "")
	f("${UNSET:-}", "", "")
	f("${UNSET:-a:-b}", "a:-b", "")
	f("$$", "$", "")
	f("$${KEY}", "${KEY}", "")
	f("cost $5", "cost $5", "")
	f("$HOME", "$HOME", "")
	f("trailing $", "trailing $", "")
	f("${DOLLAR}", "$X", "") // a value is not expanded again
	f("$$$$", "$$", "")

	f("${UNSET}", "", "environment variable UNSET is not set")
	f("x ${KEY", "", "unterminated")
	f("${}", "", "invalid environment variable name")
	f("${1A}", "", "invalid environment variable name")
	f("${A B}", "", "invalid environment variable name")
	f("${KEY:default}", "", "invalid environment variable name")
}

// TestExpandEnvErrorHidesValue: an error names the variable, and never
// shows the text around it (which may be a secret).
func TestExpandEnvErrorHidesValue(t *testing.T) {
	none := func(string) (string, bool) { return "", false }
	for _, in := range []string{"s3cr3t-${UNSET}", "s3cr3t-${bad name}", "s3cr3t-${"} {
		_, err := expandEnv(in, none)
		if err == nil || strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "bad name") {
			t.Errorf("expandEnv(%q): error %v", in, err)
		}
	}
}

// TestHideEnv: a message about a key whose value came from the environment
// keeps its words but shows no quoted string and no part of the value, and
// says where the value came from; other keys' messages are left as they are.
func TestHideEnv(t *testing.T) {
	long := strings.Repeat("L0ngS3cret", 10) // quote() truncates it with "..."
	d := newDecoder("", nil)
	d.env["a"] = fromEnv{vars: []envVar{{"KEY", long}}, value: "https://x:" + long}
	d.env["b"] = fromEnv{vars: []envVar{{"DIR", "/etc/dtrelay"}}, value: "/etc/dtrelay/ca.pem"}
	f := func(path, msg, want string) {
		t.Helper()
		if got := d.hideEnv(path, msg); got != want {
			t.Errorf("hideEnv(%q, %q)\n = %q\nwant %q", path, msg, got, want)
		}
	}
	f("a", "port must be a number, got "+quote("https://x:"+long), "port must be a number, got [redacted] (the value comes from the environment, ${KEY}, and is not shown)")
	f("a", `invalid port ":`+long+`" after host`, "invalid port [redacted] after host (the value comes from the environment, ${KEY}, and is not shown)")
	f("b", "cannot read CA file: open /etc/dtrelay/ca.pem: permission denied", "cannot read CA file: open [redacted]: permission denied (the value comes from the environment, ${DIR}, and is not shown)")
	f("b", "is required", "is required")
	f("c", `unknown type "x"`, `unknown type "x"`)
}
