package secret

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
)

// TestRedact: every secret and every secret-bearing part of it is masked,
// in the encodings a peer may echo it in; words of a diagnosis are not.
func TestRedact(t *testing.T) {
	basic := base64.StdEncoding.EncodeToString([]byte("svc-relay:pa55-w0rd"))
	var s Set
	s.Add("Bearer tok-0123456789abcdef")
	s.Add("Basic " + basic)
	s.Add("sekoia-key/with+odd&chars\"<x>")
	s.Add("ab") // a whole secret is masked however short
	s.AddURL("https://user:url-pa55@siem.example/v1/noformat/1a2b3c4d-5e6f-4a1b-9c8d-0e1f2a3b4c5d?api_key=q-token-42&tenant=acme")
	f := func(in, want string) {
		t.Helper()
		if got := s.Redact(in); got != want {
			t.Errorf("Redact(%q)\n = %q\nwant %q", in, got, want)
		}
	}
	f("invalid token tok-0123456789abcdef", "invalid token [redacted]")
	f("header was Bearer tok-0123456789abcdef.", "header was [redacted].")
	f("bad credential "+basic, "bad credential [redacted]")
	f("user svc-relay:pa55-w0rd refused", "user [redacted] refused")
	f("wrong password pa55-w0rd", "wrong password [redacted]")
	f(`{"key":"sekoia-key/with+odd&chars\"<x>"}`, `{"key":"[redacted]"}`)
	f(`{"key":"sekoia-key/with+odd\u0026chars\"\u003cx\u003e"}`, `{"key":"[redacted]"}`)
	f("k="+url.QueryEscape("sekoia-key/with+odd&chars\"<x>"), "k=[redacted]")
	f("/in/"+url.PathEscape("sekoia-key/with+odd&chars\"<x>"), "/in/[redacted]")
	f("no webhook 1a2b3c4d-5e6f-4a1b-9c8d-0e1f2a3b4c5d", "no webhook [redacted]")
	f("api_key=q-token-42 tenant=acme", "api_key=[redacted] tenant=[redacted]")
	f("login user:url-pa55 / url-pa55", "login [redacted] / [redacted]")
	f("a b c", "a b c")
	f("grab", "gr[redacted]")
	f("v1 noformat intake-http Bearer Basic", "v1 noformat intake-http Bearer Basic")
	var zero Set
	if got := zero.Redact("anything"); got != "anything" {
		t.Errorf("zero Set: %q", got)
	}
	var nilSet *Set
	if got := nilSet.Redact("anything"); got != "anything" {
		t.Errorf("nil Set: %q", got)
	}
}

// TestCutRedactsFirst is the straddle case: a key that starts 150 bytes
// into a body cut at 160 must not leave its first 10 characters.
func TestCutRedactsFirst(t *testing.T) {
	const key = "0123456789abcdefSEKOIAKEY0123456789"
	var s Set
	s.Add(key)
	body := strings.Repeat("x", 150) + key + " trailing"
	got, cut := s.Cut(body, 160)
	if !cut || len(got) > 160 || strings.Contains(got, key[:10]) {
		t.Fatalf("Cut = %q, %v", got, cut)
	}
	if want := strings.Repeat("x", 150) + "[redacted]"; got != want {
		t.Fatalf("Cut = %q, want %q", got, want)
	}
	if got, cut := s.Cut("é"+strings.Repeat("y", 10), 1); cut != true || got != "" {
		t.Fatalf("Cut splits a rune: %q", got)
	}
}

// TestPathTokens: path segments that are API words stay, tokens go.
func TestPathTokens(t *testing.T) {
	for seg, want := range map[string]bool{
		"1a2b3c4d-5e6f-4a1b-9c8d-0e1f2a3b4c5d": true,
		"XoXb0123456789abcdef":                 true,
		"intake-http":                          false,
		"noformat":                             false,
		"abcdefghijklmnopqrstu":                false, // no digit: a word
		"2024-01-01":                           false,
		"v1":                                   false,
		"0123456789012345678":                  false, // no letter: an id
		"has space 0123456789abc":              false,
	} {
		if got := looksLikeToken(seg); got != want {
			t.Errorf("looksLikeToken(%q) = %v", seg, got)
		}
	}
}

func TestRedactAllocs(t *testing.T) {
	var s Set
	s.Add("tok-0123456789abcdef")
	text := strings.Repeat("nothing secret here ", 10)
	if n := testing.AllocsPerRun(100, func() { _ = s.Redact(text) }); n != 0 {
		t.Fatalf("Redact of clean text allocates %v times", n)
	}
}

func TestShowURL(t *testing.T) {
	f := func(raw, want string) {
		t.Helper()
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := ShowURL(u); got != want {
			t.Errorf("ShowURL(%q) = %q, want %q", raw, got, want)
		}
	}
	f("https://us.webhook.logs.insight.rapid7.com/v1/noformat/1a2b3c4d-5e6f-4a1b-9c8d-0e1f2a3b4c5d",
		"https://us.webhook.logs.insight.rapid7.com/v1/noformat/[redacted]")
	f("https://u:p4ss@siem.example/in?api_key=x#frag", "https://siem.example/in?...")
	f("https://intake.sekoia.io/api/v1/intake-http", "https://intake.sekoia.io/api/v1/intake-http")
	f("https://siem.example/a%20b/XoXb0123456789abcdef/", "https://siem.example/a%20b/[redacted]/")
	f("https://siem.example", "https://siem.example")
}

// TestCutWindow: secrets shorter and longer than the mask, packed before
// and across the cut of a long text, never leave a prefix of 4 or more
// characters in what Cut returns, and Cut agrees with redacting the whole
// text.
func TestCutWindow(t *testing.T) {
	long := "L0NG-" + strings.Repeat("s3cr3t", 10) // 65 bytes: each Mask hides 55
	var s Set
	s.Add(long)
	s.Add("sh0rt")
	for _, filler := range []int{0, 1, 9, 10, 11, 59, 60, 61} {
		text := strings.Repeat(long, 3) + strings.Repeat("f", filler) + strings.Repeat("sh0rt"+long, 20) + strings.Repeat("z", 1<<16)
		for _, max := range []int{1, 10, 40, 120, 160, 500} {
			got, cut := s.Cut(text, max)
			want := s.Redact(text)
			want = want[:min(len(want), max)]
			if got != want || !cut {
				t.Fatalf("filler %d, max %d: Cut = %q, want %q", filler, max, got, want)
			}
			if strings.Contains(got, long[:4]) || strings.Contains(got, "sh0r") {
				t.Fatalf("filler %d, max %d: a prefix shows in %q", filler, max, got)
			}
			if b, _ := s.CutBytes([]byte(text), max); b != got {
				t.Fatalf("CutBytes = %q, Cut = %q", b, got)
			}
		}
	}
}
