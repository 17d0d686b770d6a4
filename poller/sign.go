package poller

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"net/url"
	"time"
)

// DateFormat is the layout of the DTAPI-Date header: UTC, to the second.
const DateFormat = "20060102T150405"

// Sign computes the Darktrace API signature of a GET request to path with
// query, sent at date. It returns the query as it must be sent (sorted by
// key, encoded by url.Values.Encode: the signature covers these exact
// bytes), the DTAPI-Date header value and the DTAPI-Signature header value:
//
//	hex(HMAC-SHA1(private, path + "?" + sortedQuery + "\n" + public + "\n" + date))
//
// Without a query the signed request is path alone. path is the escaped
// path as sent (url.URL.EscapedPath). Sign is safe for concurrent use.
func Sign(path string, query url.Values, public, private string, date time.Time) (sortedQuery, dateHeader, signature string) {
	sortedQuery = query.Encode()
	dateHeader = date.UTC().Format(DateFormat)
	mac := hmac.New(sha1.New, []byte(private))
	mac.Write([]byte(path))
	if sortedQuery != "" {
		mac.Write([]byte{'?'})
		mac.Write([]byte(sortedQuery))
	}
	mac.Write([]byte{'\n'})
	mac.Write([]byte(public))
	mac.Write([]byte{'\n'})
	mac.Write([]byte(dateHeader))
	return sortedQuery, dateHeader, hex.EncodeToString(mac.Sum(nil))
}
