package bench

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"time"
)

// ProcSample is one reading of a process's resource use.
type ProcSample struct {
	At  time.Time
	CPU time.Duration // user + system time since the process started (all threads)
	RSS uint64        // resident set size, bytes
}

// ProcSampler reads the CPU time (all threads, not children) and RSS of one
// process from /proc. It keeps no file open; each Sample reads /proc/PID/stat
// and /proc/PID/statm. Not safe for concurrent use.
type ProcSampler struct {
	pid      int
	tick     float64 // clock ticks per second
	pageSize uint64
}

// NewProcSampler returns a sampler of process pid.
func NewProcSampler(pid int) *ProcSampler {
	return &ProcSampler{pid: pid, tick: float64(clockTicks()), pageSize: uint64(os.Getpagesize())}
}

// Sample reads the process's current CPU time and RSS.
func (p *ProcSampler) Sample() (ProcSample, error) {
	now := time.Now()
	stat, err := p.read("stat")
	if err != nil {
		return ProcSample{}, err
	}
	utime, stime, err := parseStatTimes(stat)
	if err != nil {
		return ProcSample{}, fmt.Errorf("cannot parse /proc/%d/stat: %w", p.pid, err)
	}
	statm, err := p.read("statm")
	if err != nil {
		return ProcSample{}, err
	}
	f := bytes.Fields(statm)
	if len(f) < 2 {
		return ProcSample{}, fmt.Errorf("cannot parse /proc/%d/statm: %q", p.pid, statm)
	}
	pages, err := strconv.ParseUint(string(f[1]), 10, 64)
	if err != nil {
		return ProcSample{}, fmt.Errorf("cannot parse /proc/%d/statm: %w", p.pid, err)
	}
	cpu := time.Duration(float64(utime+stime) / p.tick * float64(time.Second))
	return ProcSample{At: now, CPU: cpu, RSS: pages * p.pageSize}, nil
}

func (p *ProcSampler) read(name string) ([]byte, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/" + name)
	if err != nil {
		return nil, fmt.Errorf("cannot read process stats: %w", err)
	}
	return b, nil
}

// parseStatTimes returns utime and stime (fields 14 and 15, in clock ticks)
// of a /proc/PID/stat line. The command name (field 2) may hold spaces and
// parentheses, so fields are counted from the last ')'.
func parseStatTimes(stat []byte) (utime, stime uint64, err error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("no command name in %q", truncate(stat, 64))
	}
	f := bytes.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("short stat line %q", truncate(stat, 64))
	}
	if utime, err = strconv.ParseUint(string(f[11]), 10, 64); err != nil {
		return 0, 0, err
	}
	if stime, err = strconv.ParseUint(string(f[12]), 10, 64); err != nil {
		return 0, 0, err
	}
	return utime, stime, nil
}

// clockTicks returns the kernel's USER_HZ from the auxiliary vector
// (AT_CLKTCK), or 100, its value on every common Linux platform.
func clockTicks() int {
	const atClkTck = 17
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	for i := 0; i+16 <= len(b); i += 16 {
		k := binary.NativeEndian.Uint64(b[i:])
		v := binary.NativeEndian.Uint64(b[i+8:])
		if k == atClkTck && v > 0 {
			return int(v)
		}
	}
	return 100
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// MachineBusy returns the CPU time all processes of the machine have used
// since boot (/proc/stat: user, nice, system, irq, softirq and steal of
// every CPU).
func MachineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("cannot read /proc/stat: %w", err)
	}
	return parseMachineBusy(b, float64(clockTicks()))
}

func parseMachineBusy(stat []byte, tick float64) (time.Duration, error) {
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return 0, fmt.Errorf("cannot parse /proc/stat: %q", truncate(line, 80))
	}
	var busy uint64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system (idle iowait) irq softirq steal
		v, err := strconv.ParseUint(string(f[i]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cannot parse /proc/stat: %w", err)
		}
		busy += v
	}
	return time.Duration(float64(busy) / tick * float64(time.Second)), nil
}
