package secret

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// Mask is what each occurrence of a secret is replaced with.
const Mask = "[redacted]"

// MinPart is the length under which a part derived from a secret (the
// password of a Basic credential, a URL query value) is not masked on its
// own: shorter ones would mask ordinary words in diagnostics. A secret given
// whole to Add is masked whatever its length.
const MinPart = 4

// minPathToken is the length from which a URL path segment made of token
// characters, with letters and digits, is taken for a secret (a Rapid7
// webhook's /v1/noformat/<token>, a Slack-style webhook key).
const minPathToken = 16

// Set is the text to mask for a group of secrets. Build it with Add and
// AddURL from one goroutine; after that Redact and Cut are safe for
// concurrent use. The zero Set masks nothing.
type Set struct {
	parts []string // longest first, no duplicates, none empty
}

// Add adds secret: the whole value, and when it reads "<scheme> <credential>"
// (an Authorization header value) the credential alone; for the Basic scheme
// also the decoded user:password and the password. Each in its plain, URL
// and JSON encodings.
func (s *Set) Add(secret string) {
	if secret == "" {
		return
	}
	s.add(secret)
	v := strings.TrimSpace(secret)
	s.addPart(v)
	scheme, cred, ok := strings.Cut(v, " ")
	if !ok || !isToken(scheme) {
		return
	}
	cred = strings.TrimSpace(cred)
	s.addPart(cred)
	if strings.EqualFold(scheme, "Basic") {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(cred); err == nil && utf8.Valid(b) {
				userPass := string(b)
				s.addPart(userPass)
				if _, pass, ok := strings.Cut(userPass, ":"); ok {
					s.addPart(pass)
				}
				break
			}
		}
	}
}

// AddURL adds the secrets a URL carries: its password (and user:password),
// its query values, and its path segments that look like tokens (at least
// 16 letters, digits, '-', '_', '.', '~', '+' or '=', with both letters and
// digits). A URL that does not parse adds nothing: it is never shown either.
func (s *Set) AddURL(raw string) {
	u, err := url.Parse(raw)
	if err != nil {
		return
	}
	if u.User != nil {
		if pass, ok := u.User.Password(); ok {
			s.addPart(pass)
			s.addPart(u.User.Username() + ":" + pass)
		}
	}
	for _, vs := range u.Query() {
		for _, v := range vs {
			s.addPart(v)
		}
	}
	for _, seg := range strings.Split(u.EscapedPath(), "/") {
		if v, err := url.PathUnescape(seg); err == nil && looksLikeToken(v) {
			s.addPart(v)
		}
	}
}

// With returns a copy of s with extra added (a per-request secret such as
// a signature); s is left as it is.
func (s *Set) With(extra ...string) *Set {
	c := &Set{}
	if s != nil {
		c.parts = slices.Clone(s.parts)
	}
	for _, e := range extra {
		c.Add(e)
	}
	return c
}

// Redact returns text with every secret of the set replaced by Mask. It
// allocates only when it replaces something.
func (s *Set) Redact(text string) string {
	if s == nil {
		return text
	}
	for _, p := range s.parts {
		if strings.Contains(text, p) {
			text = strings.ReplaceAll(text, p, Mask)
		}
	}
	return text
}

// Cut redacts text, then cuts it to at most max bytes on a UTF-8 boundary;
// cut reports whether it did. Redacting first is the point: cut first, a
// secret straddling the end would lose its tail, no longer match, and show
// its first characters. Only a prefix of text is looked at (see window), so
// that a long text costs what a short one does.
func (s *Set) Cut(text string, max int) (out string, cut bool) {
	long := len(text) > max
	text = s.Redact(text[:min(len(text), s.window(max))])
	if len(text) <= max {
		return text, long
	}
	n := max
	for n > 0 && !utf8.RuneStart(text[n]) {
		n--
	}
	return text[:n], true
}

// CutBytes is Cut for a byte slice; it copies only the prefix it looks at.
func (s *Set) CutBytes(b []byte, max int) (out string, cut bool) {
	out, cut = s.Cut(string(b[:min(len(b), s.window(max))]), max)
	return out, cut || len(b) > max
}

// window returns how much of a text decides the first max bytes of its
// redaction. Each Mask in those bytes stands for at most the longest part,
// there are at most max/len(Mask)+1 of them, and one more part may start
// before the end: max + (max/len(Mask)+2) × longest bytes are enough.
func (s *Set) window(max int) int {
	if s == nil || len(s.parts) == 0 {
		return max
	}
	return max + (max/len(Mask)+2)*len(s.parts[0])
}

// Len returns the number of strings the set masks (tests, diagnostics).
func (s *Set) Len() int { return len(s.parts) }

// add adds v in its encodings, however short.
func (s *Set) add(v string) {
	for _, e := range encodings(v) {
		if e == "" {
			continue
		}
		i, found := slices.BinarySearchFunc(s.parts, e, longestFirst)
		if !found {
			s.parts = slices.Insert(s.parts, i, e)
		}
	}
}

// addPart adds a derived part, unless it is shorter than MinPart.
func (s *Set) addPart(v string) {
	if len(v) >= MinPart {
		s.add(v)
	}
}

// longestFirst orders the parts so that a secret is replaced before a part
// of it ("user:pass" before "pass"), then bytewise.
func longestFirst(a, b string) int {
	if len(a) != len(b) {
		return len(b) - len(a)
	}
	return strings.Compare(a, b)
}

// encodings returns v as a peer may echo it: as is, URL query and path
// escaped, and as the inside of a JSON string (with and without HTML
// escaping).
func encodings(v string) []string {
	out := []string{v, url.QueryEscape(v), url.PathEscape(v)}
	if b, err := json.Marshal(v); err == nil {
		out = append(out, string(b[1:len(b)-1]))
	}
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) == nil {
		j := strings.TrimSuffix(sb.String(), "\n")
		out = append(out, j[1:len(j)-1])
	}
	return out
}

// isToken reports whether s is an HTTP token (an auth scheme's name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// looksLikeToken reports whether a URL path segment looks like a secret
// token rather than a word of an API path.
func looksLikeToken(seg string) bool {
	if len(seg) < minPathToken {
		return false
	}
	letter, digit := false, false
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			letter = true
		case c >= '0' && c <= '9':
			digit = true
		case strings.IndexByte("-_.~+=", c) >= 0:
		default:
			return false
		}
	}
	return letter && digit
}

// ShowURL returns u as it may be shown in a log line, an error or a
// summary: without user info and fragment, its query (which may carry a
// token) as "?...", and each path segment that looks like a token (see
// AddURL) as Mask.
func ShowURL(u *url.URL) string {
	v := *u
	v.User, v.Fragment, v.RawFragment = nil, "", ""
	if v.RawQuery != "" || v.ForceQuery {
		v.RawQuery, v.ForceQuery = "...", false
	}
	segs := strings.Split(u.EscapedPath(), "/")
	masked := false
	for i, seg := range segs {
		p, err := url.PathUnescape(seg)
		if err != nil || looksLikeToken(p) {
			p, masked = Mask, true
		}
		segs[i] = p
	}
	if !masked {
		return v.String()
	}
	v.Path, v.RawPath = strings.Join(segs, "/"), ""
	return strings.ReplaceAll(v.String(), "%5Bredacted%5D", Mask)
}
