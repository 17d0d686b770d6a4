package poller

import (
	"bytes"
	"encoding/json"
	"net/url"
	"os"
	"testing"
	"time"
)

// response builds an API answer of n synthetic breaches, pretty-printed or
// compact.
func response(tb testing.TB, n int, pretty bool) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(breach(i, 1716803301000+int64(i)))
	}
	b.WriteByte(']')
	if !pretty {
		return b.Bytes()
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b.Bytes(), "", "  "); err != nil {
		tb.Fatal(err)
	}
	return out.Bytes()
}

// BenchmarkExtract measures turning a response into keyed events: the
// structural split, the fastjson validation and key lookup of each event,
// and (pretty) compaction.
func BenchmarkExtract(b *testing.B) {
	incidents, err := os.ReadFile("testdata/aianalyst_incidentevents.json")
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name string
		body []byte
		ep   *endpoint
	}{
		{"breaches_compact_1000", response(b, 1000, false), endpoints()[0]},
		{"breaches_pretty_1000", response(b, 1000, true), endpoints()[0]},
		{"incidents_testdata", incidents, endpoints()[1]},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			x := extractor{maxSize: DefaultMaxEventSize}
			b.SetBytes(int64(len(c.body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := x.extract(c.body, c.ep); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSign(b *testing.B) {
	q := url.Values{"starttime": {"1716803301000"}, "endtime": {"1716803361000"}, "historicmodelonly": {"true"}, "includeacknowledged": {"true"}}
	at := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		Sign("/modelbreaches", q, testPublic, testPrivate, at)
	}
}
