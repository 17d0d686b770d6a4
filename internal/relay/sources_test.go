package relay

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/config"
	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/parser"
)

func addrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// TestSourceTablePeersConnectionsSilence: the last peers first and
// bounded, connections counted by peer address, a hostless sender named
// by its address, silence flagged and logged once, then cleared.
func TestSourceTablePeersConnectionsSilence(t *testing.T) {
	var logs bytes.Buffer
	set := metrics.NewSet()
	tab := newSourceTable(10, set, zerolog.New(&logs), func(mask uint64) []string { return nil })
	tab.configure(config.Input{Name: "in", SilentAfter: time.Second})
	obs := tab.conns("in")
	obs.Opened(addrPort("10.0.0.1:5000"))
	obs.Opened(addrPort("10.0.0.1:5001"))
	obs.Opened(addrPort("10.0.0.9:5001"))
	now := time.Now().UnixNano()
	read := func(peer string, host string, at int64) {
		r := forward.SourceRead{Bytes: 10}
		if host != "" {
			r.Host = []byte(host)
		}
		r.Kinds[parser.KindModelBreach] = 2
		tab.Read(&forward.SourceBatch{Input: "in", Peer: addrPort(peer), Now: at, Reads: []forward.SourceRead{r}})
	}
	for i, p := range []string{"10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1", "10.0.0.4:1", "10.0.0.5:1", "10.0.0.1:2"} {
		read(p, "master", now+int64(i))
	}
	read("[::ffff:10.0.0.9]:7", "", now)
	st := tab.statuses()
	if len(st) != 2 {
		t.Fatalf("sources = %+v, want 2", st)
	}
	m, hostless := st[1], st[0] // "10.0.0.9" < "master"
	if got := strings.Join(m.Peers, " "); got != "10.0.0.1 10.0.0.5 10.0.0.4 10.0.0.3" {
		t.Errorf("peers = %s, want the last four, latest first", got)
	}
	if m.Connections != 2 || m.Alerts["model_breach"] != 12 || m.Bytes != 60 {
		t.Errorf("master = %+v, want 2 connections, 12 alerts, 60 bytes", m)
	}
	if hostless.Source != "10.0.0.9" || hostless.Connections != 1 {
		t.Errorf("hostless = %+v, want source 10.0.0.9 with 1 connection", hostless)
	}
	obs.Closed(addrPort("10.0.0.1:5000"))
	if c := tab.statuses()[1].Connections; c != 1 {
		t.Errorf("after a close: %d connections, want 1", c)
	}

	later := now + int64(2*time.Second)
	tab.checkSilent(later)
	tab.checkSilent(later + 1)
	if n := strings.Count(logs.String(), "source silent"); n != 2 { // both sources, once each
		t.Errorf("%d silence warnings, want 2:\n%s", n, logs.String())
	}
	if st := tab.statuses(); !st[0].Silent || !st[1].Silent {
		t.Errorf("sources = %+v, want both silent", st)
	}
	read("10.0.0.1:3", "master", later+2)
	if st := tab.statuses(); st[1].Silent || !st[0].Silent {
		t.Errorf("sources = %+v, want master back and 10.0.0.9 still silent", st)
	}
	if n := strings.Count(logs.String(), "sends again"); n != 1 {
		t.Errorf("%d back lines, want 1", n)
	}
}

// TestSourceTableConcurrent: producers publishing, connections coming and
// going, the checker, Sources and a scrape at once (run with -race); past
// max_sources the rest is counted under "other", nothing is lost.
func TestSourceTableConcurrent(t *testing.T) {
	set := metrics.NewSet()
	tab := newSourceTable(8, set, zerolog.Nop(), func(uint64) []string { return nil })
	tab.configure(config.Input{Name: "in", SilentAfter: time.Millisecond})
	const producers, reads = 4, 500
	done := make(chan struct{})
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			obs := tab.conns("in")
			for i := range reads {
				peer := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(p), byte(i % 3)}), 1000)
				obs.Opened(peer)
				r := forward.SourceRead{Host: []byte(fmt.Sprintf("h%d", (p*reads+i)%12))}
				r.Kinds[parser.KindModelBreach] = 1
				tab.Read(&forward.SourceBatch{Input: "in", Peer: peer, Now: time.Now().UnixNano(), Reads: []forward.SourceRead{r}})
				obs.Closed(peer)
			}
		}()
	}
	go func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			tab.checkSilent(time.Now().UnixNano())
			_ = tab.statuses()
			var b bytes.Buffer
			set.WritePrometheus(&b)
		}
	}()
	wg.Wait()
	close(done)
	var total uint64
	st := tab.statuses()
	for _, s := range st {
		total += s.Alerts["model_breach"]
		if s.Connections != 0 {
			t.Errorf("%s: %d connections after every close", s.Source, s.Connections)
		}
	}
	if len(st) != 9 || total != producers*reads {
		t.Errorf("%d sources counting %d alerts, want 8 and other counting %d", len(st), total, producers*reads)
	}
}

// TestSourceNameInLabels: a HOSTNAME with a quote, a backslash and bytes
// that are not UTF-8 makes valid series (escaped, invalid bytes replaced).
func TestSourceNameInLabels(t *testing.T) {
	set := metrics.NewSet()
	tab := newSourceTable(10, set, zerolog.Nop(), func(uint64) []string { return nil })
	r := forward.SourceRead{Host: []byte("dt\"a\\b\xff")}
	r.Kinds[parser.KindAudit] = 1
	tab.Read(&forward.SourceBatch{Input: "in", Peer: addrPort("10.0.0.1:1"), Now: 1, Reads: []forward.SourceRead{r}})
	tab.Read(&forward.SourceBatch{Input: "in", Peer: addrPort("10.0.0.1:1"), Now: 2, Reads: []forward.SourceRead{r}})
	var b bytes.Buffer
	set.WritePrometheus(&b)
	want := `dtrelay_source_alerts_total{input="in",source="dt\"a\\b` + "\uFFFD" + `",kind="audit"} 2`
	if !strings.Contains(b.String(), want) {
		t.Errorf("scrape lacks %s:\n%s", want, b.String())
	}
	if st := tab.statuses(); len(st) != 1 {
		t.Errorf("sources = %+v, want one (looked up by its raw bytes)", st)
	}
}

// TestSourceTableTestAlertLines: a flood of test alerts from one source
// logs testLogBurst lines per testLogPeriod, the next line after the
// period counts those not logged, and another source has its own burst.
func TestSourceTableTestAlertLines(t *testing.T) {
	var logs bytes.Buffer
	tab := newSourceTable(10, metrics.NewSet(), zerolog.New(&logs), func(mask uint64) []string { return []string{"siem"} })
	now := time.Now().UnixNano()
	test := func(host string, at int64, n uint32) {
		r := forward.SourceRead{Host: []byte(host), Tests: n, TestMask: 1}
		r.Kinds[parser.KindTest] = n
		tab.Read(&forward.SourceBatch{Input: "in", Peer: addrPort("10.0.0.1:1"), Now: at, Reads: []forward.SourceRead{r}})
	}
	for i := range 100 {
		test("master", now+int64(i)*int64(time.Millisecond), 2)
	}
	test("other-master", now, 1)
	lines := func() []string {
		var out []string
		for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			if strings.Contains(l, "Darktrace test alert") {
				out = append(out, l)
			}
		}
		return out
	}
	got := lines()
	if len(got) != testLogBurst+1 {
		t.Fatalf("%d test-alert lines, want %d for the flood and 1 for the other source:\n%s", len(got), testLogBurst+1, strings.Join(got, "\n"))
	}
	if !strings.Contains(got[testLogBurst], "from other-master") {
		t.Errorf("last line = %s, want the other source's", got[testLogBurst])
	}
	for _, l := range got[:testLogBurst] {
		if strings.Contains(l, "test_alerts_unlogged") {
			t.Errorf("a line of the first burst counts unlogged alerts: %s", l)
		}
	}
	logs.Reset()
	test("master", now+int64(testLogPeriod)+int64(time.Second), 1)
	got = lines()
	if want := fmt.Sprintf(`"test_alerts_unlogged":%d`, (100-testLogBurst)*2); len(got) != 1 || !strings.Contains(got[0], want) {
		t.Errorf("after the period: %v, want one line with %s", got, want)
	}
	if st := tab.statuses(); st[0].Alerts["test"] != 201 {
		t.Errorf("source master counted %d test alerts, want all 201", st[0].Alerts["test"])
	}
}
