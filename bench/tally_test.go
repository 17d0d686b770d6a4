package bench

import (
	"reflect"
	"testing"

	"github.com/dtrelay/dtrelay/internal/alloctest"
)

func TestTallyAccounting(t *testing.T) {
	var tl Tally
	for _, seq := range []uint64{0, 1, 2, 4, 4, 7, 1 << 21, 9} {
		tl.Add(seq, 1000, 3000, 10)
	}
	tl.AddMalformed(5)
	c := tl.Counts()
	if c.Received != 8 || c.Duplicates != 1 || c.Unique() != 7 || c.Malformed != 1 || c.Bytes != 85 || c.Last != 3000 {
		t.Fatalf("counts %+v", c)
	}
	n, ids := tl.Missing(10, 100)
	if n != 4 || !reflect.DeepEqual(ids, []uint64{3, 5, 6, 8}) {
		t.Errorf("Missing(10) = %d %v, want 4 [3 5 6 8]", n, ids)
	}
	// A whole chunk never touched, and a limit on listed ids.
	n, ids = tl.Missing(1<<21+2, 2)
	if want := uint64(1<<21+2) - 7; n != want || !reflect.DeepEqual(ids, []uint64{3, 5}) {
		t.Errorf("Missing(2^21+2) = %d %v, want %d [3 5]", n, ids, want)
	}
	if n, _ := tl.Missing(3, 10); n != 0 {
		t.Errorf("Missing(3) = %d, want 0", n)
	}
	if !tl.Seen(7) || tl.Seen(8) || tl.Seen(1<<40) {
		t.Error("Seen wrong")
	}
	tl.Add(1<<40, 0, 0, 1)
	if tl.Counts().OutOfRange != 1 {
		t.Error("sequence beyond the bitmap not counted")
	}
	if q := tl.Latency.Quantile(0.5); q < 1960 || q > 2040 {
		t.Errorf("latency p50 %v, want 2µs", q)
	}
}

func TestScanAlert(t *testing.T) {
	f := func(in string, seq uint64, ts int64, ok bool) {
		t.Helper()
		s, tt, k := ScanAlert([]byte(in))
		if s != seq || tt != ts || k != ok {
			t.Errorf("ScanAlert(%q) = %d %d %v, want %d %d %v", in, s, tt, k, seq, ts, ok)
		}
	}
	f(`{"dtbench_seq":12,"dtbench_ts":34,"x":1}`, 12, 34, true)
	f(`<165>1 - h a - LOG [SEKOIA@53288 intake_key="k"] {"dtbench_seq": 5, "dtbench_ts": 6}`, 5, 6, true)
	f(`{"jsons":["{\"dtbench_seq\":7,\"dtbench_ts\":8}"]}`, 7, 8, true)
	f(`{"dtbench_seq":12}`, 0, 0, false)
	f(`{"dtbench_seq":"x","dtbench_ts":1}`, 0, 0, false)
	f(`{"dtbench_seq":1,"pad":"................","dtbench_ts":2}`, 0, 0, false)
	f(`{"dtbench_seq":1,"dtbench_ts":99999999999999999999}`, 0, 0, false)
	f(`no alert`, 0, 0, false)
	f(``, 0, 0, false)
}

func TestTallyAccountNoAlloc(t *testing.T) {
	var tl Tally
	ev := []byte(`<165>1 - h a - - - {"dtbench_seq":77,"dtbench_ts":1,"pbid":77}`)
	tl.Account(ev, 5) // allocates the first chunk and keeps the first event
	if n := alloctest.PerRun(1000, func() { tl.Account(ev, 5) }); n != 0 {
		t.Errorf("Account allocates %v times", n)
	}
	if string(tl.FirstEvent()) != string(ev) {
		t.Errorf("FirstEvent %q", tl.FirstEvent())
	}
}

func BenchmarkTallyAccount(b *testing.B) {
	g, _ := NewGenerator(DefaultMix(), 1500, 1500)
	msgs := make([][]byte, 1024)
	for i := range msgs {
		msgs[i] = g.Append(nil, uint64(i), 1)
	}
	var tl Tally
	b.ReportAllocs()
	b.SetBytes(1500)
	for i := 0; b.Loop(); i++ {
		tl.Account(msgs[i&1023], 2)
	}
}
