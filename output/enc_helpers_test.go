package output

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dtrelay/dtrelay/forward"
)

// Helpers shared by the enc_* and send_* tests.

// outSamplesDir holds the real public Darktrace samples (not in the repo).
const outSamplesDir = "../../shared/testdata/darktrace-samples"

// outReceived is the reception time of the synthetic records.
var outReceived = time.Date(2024, 8, 5, 3, 34, 46, 123_456_789, time.UTC).UnixNano()

// outAlert returns a synthetic Darktrace model breach payload numbered i,
// padded to about size bytes (at least its natural ~400 bytes) with
// connection details whose values vary like real ones, so that it
// compresses about as well as a real alert (gzip: 4-6x), not better.
func outAlert(i, size int) []byte {
	a := fmt.Sprintf(`{"commentCount":0,"pbid":%d,"time":1700634482000,"creationTime":1700634481000,`+
		`"model":{"name":"Anomalous Connection::Data Sent to Rare Domain","pid":530,"uuid":"1c3f429b-ccb9-46a2-b864-868653bc780a"},`+
		`"triggeredComponents":[{"time":1700634481000,"cbid":%d,"metric":{"label":"External Data Transfer"}}],`+
		`"score":0.674,"device":{"did":4,"ip":"10.12.14.2","hostname":"ws-042.example.com"},"connections":[`, i, i)
	x := uint64(i)*0x9e3779b97f4a7c15 + 1
	next := func() uint64 { // xorshift: deterministic, cheap, varied
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		return x
	}
	const tail = `]}`
	b := []byte(a)
	for n := 0; len(b)+len(tail) < size; n++ {
		r := next()
		c := fmt.Appendf(nil, `{"time":%d,"src":"10.%d.%d.%d","dst":"%d.%d.%d.%d","port":%d,"bytes":%d,"host":"h%x.example.net"}`,
			1700634481000+r%100000, r>>8&255, r>>16&255, r>>24&255, r>>32&255, r>>40&255, r>>48&255, r>>56,
			r%65536, r%1000000, r>>20&0xffffff)
		if n > 0 {
			c = append([]byte{','}, c...)
		}
		if rest := size - len(b) - len(tail); len(c) > rest {
			if n == 0 || rest < 3 {
				break
			}
			c = fmt.Appendf(nil, `,%q`, strings.Repeat("x", rest-3))
		}
		b = append(b, c...)
	}
	return append(b, tail...)
}

// outRecord returns a record as the pipeline would give it for an RFC 3164
// line from a Darktrace master carrying payload.
func outRecord(payload []byte) *forward.Record {
	raw := append([]byte("<165>Aug  5 03:34:46 dt-master darktrace "), payload...)
	return &forward.Record{
		Raw:      raw,
		Payload:  raw[len(raw)-len(payload):],
		Host:     raw[21:30],
		App:      raw[31:40],
		Pri:      165,
		Received: outReceived,
	}
}

// outBatch encodes payloads with enc into a Batch, vectored when enc is a
// forward.SplitEncoder (as the batcher builds it).
func outBatch(tb testing.TB, enc forward.Encoder, payloads ...[]byte) *forward.Batch {
	tb.Helper()
	b := &forward.Batch{}
	if se, ok := enc.(forward.SplitEncoder); ok {
		for _, p := range payloads {
			if err := b.AppendSplit(se, outRecord(p)); err != nil {
				tb.Fatalf("cannot encode: %v", err)
			}
		}
		return b
	}
	for _, p := range payloads {
		data, err := enc.Append(b.Data, outRecord(p))
		if err != nil {
			tb.Fatalf("cannot encode: %v", err)
		}
		b.Data = data
		b.Ends = append(b.Ends, len(data))
	}
	return b
}

// outAlerts returns n synthetic payloads of about size bytes.
func outAlerts(n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = outAlert(i, size)
	}
	return out
}

// outSamples returns the payloads of the real samples, or skips the test
// when the folder is absent.
func outSamples(tb testing.TB) [][]byte {
	tb.Helper()
	files, _ := filepath.Glob(filepath.Join(outSamplesDir, "*.json"))
	if len(files) == 0 {
		tb.Skipf("real Darktrace samples not found in %s; synthetic data only", outSamplesDir)
	}
	var out [][]byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, bytes.TrimSpace(data))
	}
	return out
}

// outEqualEvents fails unless got holds exactly want, in order.
func outEqualEvents(tb testing.TB, got, want [][]byte) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			tb.Fatalf("event %d differs:\n got %.200q\nwant %.200q", i, got[i], want[i])
		}
	}
}
