package config

import (
	"strings"
	"testing"
)

// TestSecretsNeverShown puts recognisable secrets in every place a secret
// can go, in valid and invalid configurations, and checks that no problem,
// warning or summary shows them.
func TestSecretsNeverShown(t *testing.T) {
	const secret = "S3CRET-xyzzy-0123456789"
	const short = "XYZZY-s3"
	t.Setenv("SECRET_KEY", secret)
	leaks := func(s string) bool {
		return strings.Contains(s, "S3CRET") || strings.Contains(s, "xyzzy") || strings.Contains(s, "XYZZY")
	}
	// f parses doc, which must give at least minProblems problems and
	// minWarnings warnings, and looks for the secrets in all of them.
	f := func(doc string, minProblems, minWarnings int) {
		t.Helper()
		c, warnings, err := Parse([]byte(doc), "secret.yaml")
		if (err != nil) != (minProblems > 0) || len(problems(t, err)) < minProblems || len(warnings) < minWarnings {
			t.Fatalf("%s\nerror %v, warnings %v; want at least %d problems and %d warnings", doc, err, warnings, minProblems, minWarnings)
		}
		if err != nil && leaks(err.Error()) {
			t.Errorf("problems show a secret:\n%v", err)
		}
		for _, w := range warnings {
			if leaks(w.String()) {
				t.Errorf("warning shows a secret: %s", w)
			}
		}
		if c != nil && leaks(c.Summary()) {
			t.Errorf("summary shows a secret:\n%s", c.Summary())
		}
	}
	in := "inputs:\n  - {name: cloud, protocol: darktrace-api, url: \"https://dt.example/?token=" + secret + "\", public_token: " + secret + ", private_token: " + secret + "}\n"
	// Valid, with a short key (a warning about it).
	f(in+`outputs:
  - {name: s, type: sekoia-http, intake_key: `+secret+`}
  - {name: y, type: syslog, address: "intake.sekoia.io:10514", intake_key: "${SECRET_KEY}"}
  - {name: z, type: syslog, address: "203.0.113.1:10514", intake_key: `+short+`, tls: false}
  - name: h
    type: http
    url: "https://siem.example/in?api_key=`+secret+`"
    headers: {Authorization: "Bearer `+secret+`", X-Api-Key: `+secret+`, X-Tenant: `+secret+`}
`, 0, 2)
	// Invalid in every way that involves a secret.
	f(`inputs:
  - {name: cloud, protocol: darktrace-api, url: "http://dt.example:0/?token=`+secret+`", public_token: [`+secret+`], private_token: {k: `+secret+`}}
  - {name: cloud2, protocol: darktrace-api, url: "https://user:`+secret+`@dt.example", public_token: `+secret+`, private_token: `+secret+`}
  - {name: udp, protocol: udp, address: ":1514", public_token: `+secret+`}
outputs:
  - {name: s, type: sekoia-http, url: "http://intake.sekoia.io/?k=`+secret+`", intake_key: `+short+`}
  - {name: s2, type: sekoia-http, url: "ftp://intake.sekoia.io", intake_key: "`+secret+`${UNSET_SECRET_VAR}"}
  - {name: y, type: syslog, address: "intake.sekoia.io:10514", format: rfc5424, intake_key: `+secret+`}
  - {name: f, type: file, path: "-", intake_key: `+secret+`, intake_kee: `+secret+`}
  - {name: s3, type: sekoia-http, url: "https://intake.sekoia.io:${SECRET_KEY}/", intake_key: "${SECRET_KEY}", compression: "${SECRET_KEY}"}
  - {name: y2, type: syslog, address: "intake.sekoia.io:${SECRET_KEY}", tls: "${SECRET_KEY}", intake_key: "`+secret+`\r\n"}
  - {name: h2, type: http, url: "https://siem.example:99999/v1/noformat/xyzzy-0123456789abcdef", batch: {max_wait: "${SECRET_KEY}"}}
  - name: h
    type: http
    url: "https://siem.example:99999/in?api_key=`+secret+`"
    headers:
      Authorization: "Bearer `+secret+`\r\nX-Injected: 1"
      "Bad Name": `+secret+`
      authorization: `+secret+`
      Content-Length: `+secret+`
`, 21, 1)
	// A secret in an unparsable document.
	f("outputs:\n  - {name: s, intake_key: "+secret+"\n", 1, 0)
}
