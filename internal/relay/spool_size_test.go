package relay

import (
	"testing"

	"github.com/VictoriaMetrics/metrics"

	"github.com/dtrelay/dtrelay/config"
	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/spool"
)

// TestSpoolRecordOverheadAgrees: config checks spool.max_size with the
// record overhead forward adds to a message; they must agree, and a
// max_size config accepts must open a spool for the largest message.
func TestSpoolRecordOverheadAgrees(t *testing.T) {
	if got := forward.SpoolRecordSize(0); got != config.SpoolRecordOverhead {
		t.Fatalf("forward adds %d bytes to a spooled message, config assumes %d", got, config.SpoolRecordOverhead)
	}
	const maxMsg = 256 << 10
	cfg, _, err := config.Parse([]byte(`inputs: [{name: in, protocol: tcp, address: "127.0.0.1:0"}]
outputs: [{name: out, type: file, path: "-"}]
spool: {dir: `+t.TempDir()+`, max_size: 2MiB}
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := spool.Open(spool.Options{Dir: cfg.Spool.Dir, MaxSize: int64(cfg.Spool.MaxSize), Consumers: []string{"out"},
		MaxRecord: forward.SpoolRecordSize(maxMsg), Metrics: metrics.NewSet()})
	if err != nil {
		t.Fatalf("a max_size config accepts cannot open: %v", err)
	}
	defer s.Close()
	if _, err := s.Append(make([]byte, forward.SpoolRecordSize(maxMsg))); err != nil {
		t.Fatalf("the largest record: %v", err)
	}
}
