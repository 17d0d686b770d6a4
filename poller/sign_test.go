package poller

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"net/url"
	"testing"
	"time"
)

func TestSign(t *testing.T) {
	at := time.Date(2023, 6, 28, 12, 53, 31, 0, time.UTC)
	hmacHex := func(private, msg string) string {
		m := hmac.New(sha1.New, []byte(private))
		m.Write([]byte(msg))
		return hex.EncodeToString(m.Sum(nil))
	}
	tests := []struct {
		name            string
		path            string
		query           url.Values
		public, private string
		date            time.Time
		wantQuery       string
		wantDate        string
		wantSig         string
	}{
		{
			name: "DESIGN.md test vector", path: "/query", query: url.Values{"param": {"True"}},
			public: "public", private: "private", date: at,
			wantQuery: "param=True", wantDate: "20230628T125331",
			wantSig: "77bb1423ac8b591f5cb5fded6d4c6002db824a07",
		},
		{
			name: "date in another zone is converted to UTC", path: "/query", query: url.Values{"param": {"True"}},
			public: "public", private: "private", date: at.In(time.FixedZone("CEST", 2*3600)),
			wantQuery: "param=True", wantDate: "20230628T125331",
			wantSig: "77bb1423ac8b591f5cb5fded6d4c6002db824a07",
		},
		{
			name: "query sorted by key, signed as sent", path: "/modelbreaches",
			query:  url.Values{"starttime": {"1687956811000"}, "includeacknowledged": {"true"}, "endtime": {"1687956871000"}, "historicmodelonly": {"true"}},
			public: "pub", private: "priv", date: at,
			wantQuery: "endtime=1687956871000&historicmodelonly=true&includeacknowledged=true&starttime=1687956811000",
			wantDate:  "20230628T125331",
			wantSig:   hmacHex("priv", "/modelbreaches?endtime=1687956871000&historicmodelonly=true&includeacknowledged=true&starttime=1687956811000\npub\n20230628T125331"),
		},
		{
			name: "no query: the path alone", path: "/status", public: "pub", private: "priv", date: at,
			wantDate: "20230628T125331", wantSig: hmacHex("priv", "/status\npub\n20230628T125331"),
		},
		{
			name: "values needing escapes are signed escaped", path: "/aianalyst/incidentevents",
			query:  url.Values{"locale": {"en_GB"}, "q": {"a b&c"}},
			public: "pub", private: "priv", date: at,
			wantQuery: "locale=en_GB&q=a+b%26c", wantDate: "20230628T125331",
			wantSig: hmacHex("priv", "/aianalyst/incidentevents?locale=en_GB&q=a+b%26c\npub\n20230628T125331"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, d, s := Sign(tt.path, tt.query, tt.public, tt.private, tt.date)
			if q != tt.wantQuery || d != tt.wantDate || s != tt.wantSig {
				t.Errorf("Sign = (%q, %q, %q), want (%q, %q, %q)", q, d, s, tt.wantQuery, tt.wantDate, tt.wantSig)
			}
		})
	}
}
