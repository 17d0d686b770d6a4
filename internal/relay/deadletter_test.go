package relay

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/config"
	"github.com/dtrelay/dtrelay/internal/intaketest"
	"github.com/dtrelay/dtrelay/spool"
)

// TestDeadLetterBesideTheSpool: with a spool, an event too large for a
// Sekoia output goes to SPOOL_DIR/dead-letter/OUTPUT.ndjson and is
// acknowledged in the spool (nothing is left to send again at a restart);
// the spool reopens beside the directory; a replay keeps what the output
// still cannot take.
func TestDeadLetterBesideTheSpool(t *testing.T) {
	in := intaketest.NewSyslog(t, "key-0123456789abcdef", true)
	dir := t.TempDir()
	outYAML := fmt.Sprintf(`
  - {name: out, type: syslog, address: "%s", tls: true, ca_file: %s, format: sekoia, intake_key: key-0123456789abcdef}
spool: {dir: %s}
`, in.Addr(), in.CAFile(), dir)
	big := `{"pbid":1,"pad":"` + strings.Repeat("x", 255_000) + `"}`
	run := func(frames ...string) {
		r := startRelay(t, outYAML)
		c, err := net.Dial("tcp", r.Addrs()[0].String())
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range frames {
			fmt.Fprintf(c, "<165>Aug  5 03:34:46 dt-master darktrace %s\n", f)
		}
		c.Close()
		if !in.WaitEvents(2, 10*time.Second) {
			t.Fatalf("intake got %d of 2", in.Count())
		}
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(promText(r), `dtrelay_output_dead_letter_total{output="out",reason="oversize"} 1`) {
			if time.Now().After(deadline) {
				t.Fatalf("not dead-lettered:\n%s", promText(r))
			}
			time.Sleep(5 * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if lost := r.Stop(ctx); lost != 0 {
			t.Fatalf("Stop: %d undelivered", lost)
		}
	}
	run(payload(0, 500), big, payload(1, 500))
	file := filepath.Join(dir, "dead-letter", "out.ndjson")
	data, err := os.ReadFile(file)
	if err != nil || bytes.Count(data, []byte{'\n'}) != 1 || !bytes.HasSuffix(data, []byte(`"payload":`+big+"}\n")) {
		t.Fatalf("dead-letter file: %v, %d bytes", err, len(data))
	}
	// The spool reopens beside the directory, with nothing left for out:
	// it had acknowledged the event.
	sp, err := spool.Open(spool.Options{Dir: dir, MaxSize: 1 << 30, Consumers: []string{"out"}, Metrics: metrics.NewSet()})
	if err != nil {
		t.Fatal(err)
	}
	rd, err := sp.Reader("out")
	if err != nil {
		t.Fatal(err)
	}
	nowait, cancel := context.WithCancel(context.Background())
	cancel()
	if rec, _, err := rd.Next(nowait); err == nil {
		t.Fatalf("the spool still holds a record of %d bytes for out", len(rec))
	}
	rd.Close()
	sp.Close()

	cfg, _, err := config.Parse([]byte("inputs: [{name: bench, protocol: tcp, address: \"127.0.0.1:0\"}]\noutputs:\n"+outYAML), "bench.yaml")
	if err != nil {
		t.Fatal(err)
	}
	st, path, err := ReplayDeadLetter(context.Background(), cfg, "out", zerolog.Nop())
	if err != nil || path != file || st.Read != 1 || st.Kept != 1 || st.Delivered != 0 {
		t.Fatalf("replay = %+v, %q, %v; want the event kept (still too large)", st, path, err)
	}
	if again, _ := os.ReadFile(file); !bytes.Equal(again, data) {
		t.Fatal("the kept event changed")
	}
}
