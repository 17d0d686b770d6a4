package output

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/dtrelay/dtrelay/forward"
)

// The helpers below drive a forward.Pipeline from the output tests that
// need the batcher around a sender (retries, shrinking, dead letters).

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func alert(i int) string {
	return fmt.Sprintf(`{"pbid":%d,"model":{"name":"Anomalous Connection::Test %d"},"score":0.9,"time":1700000000000,"triggeredComponents":[]}`, i, i)
}

func line(i int) string { return "<165>Aug  5 03:34:46 dt.example.com darktrace " + alert(i) }

// feed sends frames through input in reads of perRead frames.
func feed(p *forward.Pipeline, input int, frames []string, perRead int) {
	pool := p.Pool(input)
	for i := 0; i < len(frames); i += perRead {
		pr := pool.Get()
		for _, f := range frames[i:min(i+perRead, len(frames))] {
			pr.Frame([]byte(f))
		}
		pr.Flush()
		pool.Put(pr)
	}
}

func metric(set *metrics.Set, name string) string {
	var b bytes.Buffer
	set.WritePrometheus(&b)
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(l, name+" ") {
			return strings.TrimPrefix(l, name+" ")
		}
	}
	return ""
}

// stopWithin stops p, giving up on deliveries after d: a failed test must
// not wait on an output retrying forever.
func stopWithin(p *forward.Pipeline, d time.Duration) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return p.Stop(ctx)
}
