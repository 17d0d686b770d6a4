package output

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/internal/alloctest"
)

func TestHTTPEncodersGolden(t *testing.T) {
	payload := `{"pbid":1,"model":{"name":"A \"quoted\" \\ name"},"t":"tab\there"}`
	withLF := "{\"a\":1,\n\"b\":\"x\"}"
	ctrl := "{\"c\":\"\x01\x1f\x7f\xc3\xa9\"}" // raw control bytes are invalid JSON but must not break the body
	cases := []struct {
		name    string
		enc     forward.Encoder
		payload string
		notJSON bool
		want    string
		wantErr error
	}{
		{"ndjson_line", NDJSONEncoder{}, payload, false, payload + "\n", nil},
		{"ndjson_lf_becomes_space", NDJSONEncoder{}, withLF, false, "{\"a\":1, \"b\":\"x\"}\n", nil},
		{"ndjson_skips_not_json", NDJSONEncoder{}, "hello", true, "", forward.ErrSkipNotJSON},
		{"batch_json_string", SekoiaBatchEncoder{}, payload,
			false, `"{\"pbid\":1,\"model\":{\"name\":\"A \\\"quoted\\\" \\\\ name\"},\"t\":\"tab\\there\"}",`, nil},
		{"batch_escapes_lf", SekoiaBatchEncoder{}, withLF, false, `"{\"a\":1,\n\"b\":\"x\"}",`, nil},
		{"batch_escapes_control_bytes", SekoiaBatchEncoder{}, ctrl, false, "\"{\\\"c\\\":\\\"\\u0001\\u001f\x7f\xc3\xa9\\\"}\",", nil},
		{"batch_skips_not_json", SekoiaBatchEncoder{}, "hello", true, "", forward.ErrSkipNotJSON},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := outRecord([]byte(tc.payload))
			r.NotJSON = tc.notJSON
			got, err := tc.enc.Append([]byte("x"), r)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if string(got[1:]) != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", got[1:], tc.want)
			}
		})
	}
}

func TestHTTPEncodersSkipOversize(t *testing.T) {
	big := outRecord(outAlert(1, SekoiaMaxEvent+1))
	limit := outRecord(outAlert(1, SekoiaMaxEvent))
	for _, enc := range []forward.Encoder{NDJSONEncoder{MaxPayload: SekoiaMaxEvent}, SekoiaBatchEncoder{}} {
		if _, err := enc.Append(nil, big); !errors.Is(err, forward.ErrSkipOversize) {
			t.Errorf("%T: err = %v, want forward.ErrSkipOversize", enc, err)
		}
		if _, err := enc.Append(nil, limit); err != nil {
			t.Errorf("%T at the limit: %v", enc, err)
		}
	}
	if _, err := (NDJSONEncoder{}).Append(nil, big); err != nil {
		t.Errorf("generic NDJSON must carry large events: %v", err)
	}
}

// TestBatchEncodingRoundTrips: a /batch body made of the encoded events is
// JSON whose "jsons" decode to the payloads, byte for byte.
func TestBatchEncodingRoundTrips(t *testing.T) {
	f := func(t *testing.T, payloads [][]byte) {
		b := outBatch(t, SekoiaBatchEncoder{}, payloads...)
		body := `{"intake_key":"K","jsons":[` + string(b.Data[:len(b.Data)-1]) + `]}`
		var got struct {
			Jsons []string `json:"jsons"`
		}
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("body is not JSON: %v", err)
		}
		events := make([][]byte, len(got.Jsons))
		for i, s := range got.Jsons {
			events[i] = []byte(s)
		}
		outEqualEvents(t, events, payloads)
	}
	t.Run("synthetic", func(t *testing.T) { f(t, outAlerts(20, 1500)) })
	t.Run("real_samples", func(t *testing.T) { f(t, outSamples(t)) })
}

func TestHTTPEncodersDoNotAllocate(t *testing.T) {
	r := outRecord(outAlert(1, 1500))
	for _, enc := range []forward.Encoder{NDJSONEncoder{}, NDJSONEncoder{MaxPayload: SekoiaMaxEvent}, SekoiaBatchEncoder{}} {
		dst := make([]byte, 0, 64<<10)
		if allocs := alloctest.PerRun(1000, func() { dst, _ = enc.Append(dst[:0], r) }); allocs != 0 {
			t.Errorf("%T: %v allocations per record", enc, allocs)
		}
	}
}

func BenchmarkHTTPEncoder(b *testing.B) {
	for _, size := range []int{1500, 4000} {
		for _, enc := range []forward.Encoder{NDJSONEncoder{MaxPayload: SekoiaMaxEvent}, SekoiaBatchEncoder{}} {
			b.Run(fmt.Sprintf("%T/%d", enc, size), func(b *testing.B) {
				r := outRecord(outAlert(1, size))
				dst := make([]byte, 0, 64<<10)
				b.SetBytes(int64(len(r.Payload)))
				b.ReportAllocs()
				for b.Loop() {
					dst, _ = enc.Append(dst[:0], r)
				}
			})
		}
	}
}
