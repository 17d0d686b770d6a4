package bench

import (
	"os"
	"testing"
	"time"
)

func TestParseStatTimes(t *testing.T) {
	f := func(in string, u, s uint64, ok bool) {
		t.Helper()
		gu, gs, err := parseStatTimes([]byte(in))
		if (err == nil) != ok || gu != u || gs != s {
			t.Errorf("parseStatTimes(%q) = %d %d %v", in, gu, gs, err)
		}
	}
	f("42 (rs:main Q:Reg) S 1 42 42 0 -1 4194560 1234 0 0 0 250 37 0 0 20 0 4 0 100 0 0", 250, 37, true)
	f("7 (a) b) (c) R 1 7 7 0 -1 0 0 0 0 0 9 8 0 0", 9, 8, true)
	f("7 (a) R 1 2", 0, 0, false)
	f("no parens", 0, 0, false)
}

func TestProcSamplerSelf(t *testing.T) {
	p := NewProcSampler(os.Getpid())
	before, err := p.Sample()
	if err != nil {
		t.Fatal(err)
	}
	// Burn CPU until the kernel's tick accounting shows it (bounded).
	x := 0
	deadline := time.Now().Add(3 * time.Second)
	var after ProcSample
	for time.Now().Before(deadline) {
		for i := 0; i < 1e6; i++ {
			x += i
		}
		if after, err = p.Sample(); err != nil {
			t.Fatal(err)
		}
		if after.CPU > before.CPU {
			break
		}
	}
	if after.CPU <= before.CPU || after.RSS < 1<<20 {
		t.Errorf("CPU %v -> %v, RSS %d (x=%d)", before.CPU, after.CPU, after.RSS, x)
	}
	if _, err := NewProcSampler(1 << 30).Sample(); err == nil {
		t.Error("sampling a missing process succeeded")
	}
	if c := clockTicks(); c < 10 || c > 10000 {
		t.Errorf("clock ticks %d", c)
	}
}

func TestParseMachineBusy(t *testing.T) {
	stat := []byte("cpu  100 20 30 5000 40 6 7 8 0 0\ncpu0 50 10 15 2500 20 3 3 4 0 0\n")
	d, err := parseMachineBusy(stat, 100)
	if err != nil {
		t.Fatal(err)
	}
	if want := 1710 * time.Millisecond; d != want { // 100+20+30+6+7+8 ticks, idle and iowait left out
		t.Errorf("busy %v, want %v", d, want)
	}
	if _, err := parseMachineBusy([]byte("intr 1 2 3\n"), 100); err == nil {
		t.Error("no error for a /proc/stat without its cpu line")
	}
	if _, err := MachineBusy(); err != nil {
		t.Errorf("MachineBusy on this machine: %v", err)
	}
}
