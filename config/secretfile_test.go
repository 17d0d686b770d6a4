package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// secretDir writes files (name → content, mode) into a new directory and
// returns it.
func secretDir(t *testing.T, files map[string]secretFile) string {
	t.Helper()
	dir := t.TempDir()
	for name, f := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(f.content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil { // past the umask
			t.Fatal(err)
		}
	}
	return dir
}

type secretFile struct {
	content string
	mode    os.FileMode
}

// parseIn parses doc as the file c.yaml in dir, with CREDENTIALS_DIRECTORY
// set to creds (unset when empty) and no other environment.
func parseIn(t *testing.T, dir, creds, doc string) (*Config, []string, []string) {
	t.Helper()
	lookup := func(name string) (string, bool) {
		if name == "CREDENTIALS_DIRECTORY" && creds != "" {
			return creds, true
		}
		return "", false
	}
	c, warnings, err := parse([]byte(doc), filepath.Join(dir, "c.yaml"), lookup)
	var ps, ws []string
	for _, p := range problems(t, err) {
		ps = append(ps, fmt.Sprintf("%d: %s: %s", p.Line, p.Key, p.Msg))
	}
	for _, w := range warnings {
		ws = append(ws, fmt.Sprintf("%d: %s: %s", w.Line, w.Key, w.Msg))
	}
	return c, ps, ws
}

const (
	fileKey   = "file-intake-key-0123456789"
	credKey   = "cred-intake-key-0123456789"
	fileToken = "file-bearer-token-0123456789"
)

// TestSecretFiles: ${file:} and ${credential:} give a secret key the
// file's content without its trailing newline, in every secret key, a
// relative path being taken from the configuration's directory.
func TestSecretFiles(t *testing.T) {
	dir := secretDir(t, map[string]secretFile{
		"intake-key": {fileKey + "\n", 0o600},
		"token":      {fileToken + "\r\n\n", 0o400},
		"public":     {"dt-public-0123456789", 0o600},
	})
	creds := secretDir(t, map[string]secretFile{
		"sekoia-key": {credKey + "\n", 0o440}, // systemd's own modes: no warning
		"private":    {"dt-private-0123456789\n", 0o400},
	})
	c, ps, ws := parseIn(t, dir, creds, `inputs:
  - {name: in, protocol: tcp, address: "127.0.0.1:1514"}
  - {name: cloud, protocol: darktrace-api, url: "https://dt.example", public_token: "${file:public}", private_token: "${credential:private}"}
outputs:
  - {name: s, type: sekoia-http, intake_key: "${file:`+filepath.Join(dir, "intake-key")+`}"}
  - {name: y, type: syslog, address: "intake.sekoia.io:10514", intake_key: "${credential:sekoia-key}"}
  - name: h
    type: http
    url: https://siem.example/in
    headers: {Authorization: "Bearer ${file:token}", X-Price: "$${file:not-read}"}
`)
	if len(ps) > 0 || len(ws) > 0 {
		t.Fatalf("problems %q, warnings %q", ps, ws)
	}
	got := []string{c.Inputs[1].PublicToken, c.Inputs[1].PrivateToken, c.Outputs[0].IntakeKey, c.Outputs[1].IntakeKey,
		c.Outputs[2].Headers["Authorization"], c.Outputs[2].Headers["X-Price"]}
	want := []string{"dt-public-0123456789", "dt-private-0123456789", fileKey, credKey, "Bearer " + fileToken, "${file:not-read}"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("secrets\n got %q\nwant %q", got, want)
	}
	if s := c.Summary(); strings.Contains(s, "0123456789") {
		t.Fatalf("summary shows a secret:\n%s", s)
	}
}

// TestSecretFileProblems: each case is a document and exactly the problems
// and warnings it must give; none shows a file's content.
func TestSecretFileProblems(t *testing.T) {
	const content = "SECRET-zyx-0123456789"
	dir := secretDir(t, map[string]secretFile{
		"ok":       {content + "\n", 0o600},
		"group":    {content + "\n", 0o640},
		"world":    {content, 0o604},
		"empty":    {"\n\n", 0o600},
		"crlf":     {content + "\r\nX-Injected: 1\n", 0o600},
		"big":      {strings.Repeat("k", maxSecretFile+1), 0o600},
		"unreadbl": {content, 0o000},
	})
	if err := os.Mkdir(filepath.Join(dir, "adir"), 0o700); err != nil {
		t.Fatal(err)
	}
	creds := secretDir(t, map[string]secretFile{"open": {content, 0o644}, "grp": {content, 0o440}})
	f := func(creds, outputs string, wantPs, wantWs []string) {
		t.Helper()
		doc := "inputs:\n  - {name: in, protocol: tcp, address: \"127.0.0.1:1514\"}\noutputs:\n" + outputs
		_, ps, ws := parseIn(t, dir, creds, doc)
		if !reflect.DeepEqual(ps, wantPs) || !reflect.DeepEqual(ws, wantWs) {
			t.Errorf("%s\nproblems\n  %s\nwarnings\n  %s\nwant\n  %s\nand\n  %s", doc,
				strings.Join(ps, "\n  "), strings.Join(ws, "\n  "), strings.Join(wantPs, "\n  "), strings.Join(wantWs, "\n  "))
		}
		for _, m := range append(ps, ws...) {
			if strings.Contains(m, "zyx") {
				t.Errorf("a message shows the secret: %s", m)
			}
		}
	}
	d := func(name string) string { return filepath.Join(dir, name) }
	key := func(ref string) string {
		return "  - {name: s, type: sekoia-http, intake_key: \"" + ref + "\"}\n"
	}
	f("", key("${file:ok}"), nil, nil)
	f("", key("${file:group}"), nil,
		[]string{fmt.Sprintf(`4: outputs[0].intake_key: secret file %q has mode 0640: the secret is open to group or others; make it readable by the user dtrelay runs as only (chmod 600)`, d("group"))})
	f("", key("${file:world}"), nil,
		[]string{fmt.Sprintf(`4: outputs[0].intake_key: secret file %q has mode 0604: the secret is open to group or others; make it readable by the user dtrelay runs as only (chmod 600)`, d("world"))})
	f("", key("${file:absent}"),
		[]string{fmt.Sprintf(`4: outputs[0].intake_key: cannot read secret file: open %s: no such file or directory`, d("absent"))}, nil)
	f("", "  - name: s\n    type: sekoia-http\n\n    intake_key: ${file:/nonexistent/dtrelay/key}\n",
		[]string{`7: outputs[0].intake_key: cannot read secret file: open /nonexistent/dtrelay/key: no such file or directory`}, nil)
	f("", key("${file:}"), []string{`4: outputs[0].intake_key: ${file:} names no file (write ${file:/etc/dtrelay/intake-key})`}, nil)
	// ${file:-x} is the variable "file" with a default, as before.
	f("", key("${file:-k0123456789abcdef0}"), nil, nil)
	f("", key("${file:empty}"), []string{fmt.Sprintf(`4: outputs[0].intake_key: secret file %q is empty`, d("empty"))}, nil)
	f("", key("${file:big}"), []string{fmt.Sprintf(`4: outputs[0].intake_key: secret file %q is larger than 64KiB: not a key or token`, d("big"))}, nil)
	f("", key("${file:adir}"), []string{fmt.Sprintf(`4: outputs[0].intake_key: secret file %q is not a regular file`, d("adir"))}, nil)
	if os.Geteuid() != 0 { // root reads a file of mode 0000
		f("", key("${file:unreadbl}"), []string{fmt.Sprintf(`4: outputs[0].intake_key: cannot read secret file: open %s: permission denied`, d("unreadbl"))}, nil)
	}
	// The content is checked like any value, and never quoted.
	f("", key("${file:crlf}"), []string{`4: outputs[0].intake_key: must not contain CR, LF or other control characters`}, nil)
	f("", "  - {name: h, type: http, url: \"https://siem.example/in\", headers: {Authorization: \"Bearer ${file:crlf}\"}}\n",
		[]string{`4: outputs[0].headers.Authorization: value must not contain CR, LF or NUL`}, nil)
	// Only secret keys read files.
	f("", "  - {name: s, type: sekoia-http, url: \"https://intake.sekoia.io/${file:ok}\", intake_key: k0123456789abcdef0}\n",
		[]string{`4: outputs[0].url: ${file:...} is allowed only in secret keys (intake_key, public_token, private_token and headers values)`}, nil)
	f("", "  - {name: \"${credential:ok}\", type: file, path: \"-\"}\n",
		[]string{`4: outputs[0].name: ${credential:...} is allowed only in secret keys (intake_key, public_token, private_token and headers values)`}, nil)
	// Credentials.
	f("", key("${credential:grp}"),
		[]string{`4: outputs[0].intake_key: ${credential:grp}: CREDENTIALS_DIRECTORY is not set: systemd sets it for a unit with LoadCredential=grp:FILE; outside systemd, set it to a directory holding a file grp`}, nil)
	f(creds, key("${credential:grp}"), nil, nil)
	f(creds, key("${credential:open}"), nil,
		[]string{fmt.Sprintf(`4: outputs[0].intake_key: secret file %q has mode 0644: the secret is open to others; make it readable by the user dtrelay runs as only (chmod 600)`, filepath.Join(creds, "open"))})
	f(creds, key("${credential:../ok}"),
		[]string{`4: outputs[0].intake_key: ${credential:NAME} wants the name of a credential, as in LoadCredential=NAME:FILE (no "/")`}, nil)
	f(creds, key("${credential:absent}"),
		[]string{fmt.Sprintf(`4: outputs[0].intake_key: cannot read secret file: open %s: no such file or directory`, filepath.Join(creds, "absent"))}, nil)
}

// TestSecretFileValueHidden: a message about a key whose value came from a
// file, which would quote the value, masks it and names the file instead
// (no check of a secret key quotes its value today: this guards the next).
func TestSecretFileValueHidden(t *testing.T) {
	d := newDecoder("c.yaml", func(string) (string, bool) { return "", false })
	const v = "SECRET-zyx-0123456789"
	d.env["outputs[0].intake_key"] = fromEnv{vars: []envVar{{"file:/etc/dtrelay/key", v}}, value: "Bearer " + v}
	got := d.hideEnv("outputs[0].intake_key", `bad value "Bearer `+v+`", also `+v)
	want := `bad value [redacted], also [redacted] (the value comes from ${file:/etc/dtrelay/key}, and is not shown)`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
