// Package secret masks secrets in text that dtrelay did not write itself
// (an intake's error body, a redirect's Location, a URL shown in a log line)
// before that text goes into a log line, an error or a metric.
//
// A Set knows each secret together with the parts of it that can show on
// their own (the token of "Bearer T", the base64 and the decoded user:pass
// of a Basic credential, a URL's password, query values and token-like path
// segments) and the encodings under which a peer may echo them (URL query
// and path escaping, JSON string escaping). Text is redacted in full before
// it is cut to length, so that no cut can leave the first characters of a
// secret standing.
package secret
