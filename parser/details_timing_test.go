package parser

import "testing"

// BenchmarkFillDetails measures what ClassifyDetails adds to Classify
// (reading Time, ID and Suppressed from the members already recorded):
// the work the hot path no longer does per message. Its cost does not
// depend on the payload's size, so the payloads are small ones of
// parsertest.Alert's shape (which this package's tests cannot import).
func BenchmarkFillDetails(b *testing.B) {
	payloads := map[string]string{
		"model_breach": `{"commentCount":0,"pbid":1700001,"time":1700000000000,"creationTime":1700000000500,` +
			`"model":{"name":"Compromise::Beaconing","pid":4211,"actions":{"alert":true,"antigena":{}},"priority":3,"category":"Suspicious"},` +
			`"triggeredComponents":[],"score":0.71}`,
		"ai_analyst": `{"summariser":"BeaconSummary","createdAt":1700000000000,"id":"7d3f0c52-8a41-4a7e-9b57-0f3a2c1d9e01",` +
			`"currentGroup":"g7d3f0c52","category":"critical","aiaScore":91.5}`,
	}
	for _, kind := range []string{"model_breach", "ai_analyst"} {
		payload := []byte(payloads[kind])
		b.Run(kind, func(b *testing.B) {
			var c Classifier
			var a Alert
			var d Details
			if err := c.Classify(payload, nil, &a); err != nil {
				b.Fatal(err)
			}
			c.r.b = payload
			b.ReportAllocs()
			for b.Loop() {
				d = Details{}
				c.fillDetails(a.Kind, &d)
			}
			if d.Time == 0 || d.IDLen == 0 {
				b.Fatalf("details not read: %+v", d)
			}
		})
	}
}
