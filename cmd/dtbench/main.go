// Command dtbench is dtrelay's load-benchmark harness. It generates
// Darktrace-shaped alerts, sends them through relays it starts itself
// (dtrelay, rsyslog, syslog-ng), plays the SIEM intake, and reports
// throughput, loss, latency, CPU and memory. The logic lives in package bench.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/bench"
	"github.com/dtrelay/dtrelay/internal/rsyslogpeer"
)

const usage = `dtbench: load-benchmark harness for dtrelay

Usage:
  dtbench compare [flags]     run the same load through each relay, interleaved; write results.json and report.html
  dtbench standard [flags]    the standard's eight cells (issue 16, make bench-e2e): {syslog, http} x {TCP, TLS} x {1.5KB, 4KB},
                              dtrelay vs the job's best peer, 3 interleaved rounds, then p99 at half peak; stored under --out
  dtbench send [flags]        send a load to a relay you started yourself
  dtbench sink [flags]        play the intake (syslog or Sekoia HTTPS) and count what arrives
  dtbench report [flags]      render report.html again from a results.json
  dtbench copy-relay [flags]  the trivial Go reference relay (used by "compare --relays copy")

Run "dtbench COMMAND --help" for a command's flags.
Exit status: 0 success, 1 a relay under test lost alerts or failed, 2 bad usage or setup error.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "compare":
		return compareCmd(ctx, args[1:], stdout, stderr, false)
	case "standard":
		return compareCmd(ctx, args[1:], stdout, stderr, true)
	case "send":
		err = sendCmd(ctx, args[1:], stdout, stderr)
	case "sink":
		err = sinkCmd(ctx, args[1:], stdout, stderr)
	case "report":
		err = reportCmd(args[1:], stdout, stderr)
	case "copy-relay":
		err = copyRelayCmd(ctx, args[1:], stderr)
	default:
		fmt.Fprintf(stderr, "dtbench: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "dtbench: %v\n", err)
		return 2
	}
	return 0
}

func newLogger(w io.Writer, verbose bool) zerolog.Logger {
	lvl := zerolog.WarnLevel
	if verbose {
		lvl = zerolog.DebugLevel
	}
	return zerolog.New(zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}).Level(lvl).With().Timestamp().Logger()
}

// loadFlags are the flags describing the load, shared by compare and send.
type loadFlags struct {
	sizes, conns, mix, input, framing, header string
	rate                                      float64
	relpWindow                                int
	count                                     uint64
	duration                                  time.Duration
}

func (l *loadFlags) register(fs *flag.FlagSet, defDuration time.Duration) {
	fs.StringVar(&l.sizes, "size", "2000", "alert size in bytes of JSON, 400..250000 (`LIST`: 1500,4KB or a spread MIN-MAX such as 500-14KB; KB = 1000)")
	fs.StringVar(&l.conns, "conns", "4", "sender connections (`LIST`, e.g. 4,64)")
	fs.StringVar(&l.mix, "mix", "default", "family `MIX`: default, all, or e.g. model_breach=50,ai_analyst=20,antigena,system_status,email,audit,test")
	fs.StringVar(&l.input, "input", "tcp", "relay input: tcp, udp or tls")
	fs.StringVar(&l.framing, "framing", "lf", "TCP framing: lf (as Darktrace sends) or octet-counting")
	fs.StringVar(&l.header, "header", "rfc3164", "syslog header: rfc3164 (Darktrace's default) or rfc5424")
	fs.Float64Var(&l.rate, "rate", 0, "alerts per second over all connections (0: as fast as the relay takes them)")
	fs.Uint64Var(&l.count, "count", 0, "alerts per run, or fewer if --duration ends first (0: no count limit)")
	fs.IntVar(&l.relpWindow, "relp-window", 0, "--output relp: every relay's RELP window `N` (dtrelay: window N, batches of 4N); "+
		"0: dtrelay's default (1024), rsyslog omrelp's fastest (1024)")
	fs.DurationVar(&l.duration, "duration", defDuration, "length of each run's load (0: no time limit; then give --count)")
}

// scenarios expands the load flags over sizes × conns × outputs.
func (l *loadFlags) scenarios(outputs []string) ([]bench.Scenario, error) {
	mix, err := bench.ParseMix(l.mix)
	if err != nil {
		return nil, err
	}
	framing, err := bench.ParseFraming(l.framing)
	if err != nil {
		return nil, err
	}
	header, err := bench.ParseHeaderStyle(l.header)
	if err != nil {
		return nil, err
	}
	switch l.input {
	case "tcp", "udp", "tls":
	default:
		return nil, fmt.Errorf("unknown --input %q (want tcp, udp or tls)", l.input)
	}
	if l.count == 0 && l.duration <= 0 {
		return nil, errors.New("give --duration or --count")
	}
	var out []bench.Scenario
	for _, o := range outputs {
		switch o {
		case bench.OutputSyslog, bench.OutputTLSSyslog, bench.OutputHTTP, bench.OutputHTTPS, bench.OutputRELP:
		default:
			return nil, fmt.Errorf("unknown --output %q (want syslog, tls-syslog, http, https or relp)", o)
		}
		for _, s := range bench.ParseList(l.sizes) {
			lo, hi, err := parseSizeRange(s)
			if err != nil {
				return nil, err
			}
			for _, c := range bench.ParseList(l.conns) {
				n, err := strconv.Atoi(c)
				if err != nil || n < 1 || n > 10000 {
					return nil, fmt.Errorf("bad --conns value %q (want 1..10000)", c)
				}
				out = append(out, bench.Scenario{Input: l.input, Output: o, Size: lo, MaxSize: hi, Mix: mix, Conns: n,
					Framing: framing, Header: header, Rate: l.rate, Count: l.count, Duration: l.duration, RELPWindow: l.relpWindow})
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no scenario: give --size, --conns and --output")
	}
	return out, nil
}

// parseSizeRange parses "2000", "1.5KB", "4k" or "500-14KB".
func parseSizeRange(s string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(s, "-")
	if lo, err = parseSize(a); err != nil {
		return 0, 0, err
	}
	hi = lo
	if isRange {
		if hi, err = parseSize(b); err != nil {
			return 0, 0, err
		}
	}
	if lo < bench.MinAlertSize || hi > bench.MaxAlertSize || hi < lo {
		return 0, 0, fmt.Errorf("bad --size %q (want %d..%d bytes, MIN-MAX ascending)", s, bench.MinAlertSize, bench.MaxAlertSize)
	}
	if hi == lo {
		hi = 0
	}
	return lo, hi, nil
}

func parseSize(s string) (int, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := 1.0
	for _, suf := range []string{"kb", "k"} {
		if strings.HasSuffix(t, suf) {
			t, mult = strings.TrimSuffix(t, suf), 1000
			break
		}
	}
	t = strings.TrimSuffix(t, "b")
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("bad size %q (want bytes, e.g. 2000 or 1.5KB)", s)
	}
	return int(v * mult), nil
}

// standardDefaults are the flag defaults of "dtbench standard".
// The load is issue 16's: 4 connections of octet-counted RFC 5424, a count
// per run (StandardCount: 1,000,000 at 1.5 KB, 400,000 at 4 KB) bounded by
// a generous duration; each cell runs dtrelay and its job's peer only.
var standardDefaults = map[string]string{
	"size": "1500,4000", "conns": "4", "output": "syslog,http,tls-syslog,https", "rounds": "3", "duration": "2m",
	"framing": "octet-counting", "header": "rfc5424", "half-peak": "true", "out": "bench/results",
}

func compareCmd(ctx context.Context, args []string, stdout, stderr io.Writer, standard bool) int {
	name := "compare"
	if standard {
		name = "standard"
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: dtbench compare [flags]

Starts each relay in turn with a generated config in a temp dir, sends the same
load through it (RFC 3164 LF-framed syslog, as Darktrace sends), plays the
intake it forwards to, and measures alerts/s, loss, latency, CPU and RSS.
Scenarios are every --size x --conns x --output; runs are interleaved over
--rounds and reduced to medians. Writes DIR/results.json and DIR/report.html.
Exits 1 when a relay under test lost alerts or failed.

Example:
  dtbench compare --relays dtrelay,rsyslog --size 2000 --conns 4 --duration 8s --out DIR

"dtbench standard" is compare with issue 16's eight cells as defaults:
{syslog, tls-syslog, http, https} x {1.5KB, 4KB}, 4 connections of
octet-counted RFC 5424, 1,000,000 (1.5KB) / 400,000 (4KB) alerts a run
unless --count, each cell dtrelay against its job's best peer only
(rsyslog for syslog, syslog-ng for http; --relays runs every relay named in
every cell), then dtrelay again at half its peak (--half-peak). It stores
DIR/DATE-COMMIT.md (machine, cores, kernel, Go version, commit, command,
the cells with ratios and verdicts) and DIR/DATE-COMMIT/{results.json,report.html}.
"dtbench standard --dtrelay BIN" measures another dtrelay build.

Flags:
`)
		fs.PrintDefaults()
	}
	var (
		load                                   loadFlags
		relays, outputs, out, record, under    string
		dtrelay, rsyslogd, rsModules, syslogNG string
		rounds, copyDrop                       int
		keep, verbose, noProgress, halfPeak    bool
		list                                   bool
		drainIdle, drainMax                    time.Duration
	)
	load.register(fs, 10*time.Second)
	fs.StringVar(&relays, "relays", "dtrelay,rsyslog,syslog-ng", "relays to compare (`LIST` of dtrelay, rsyslog, syslog-ng, copy = trivial Go reference relay)")
	fs.StringVar(&outputs, "output", bench.OutputSyslog, "relay output (`LIST`): syslog (octet-counted TCP syslog, Sekoia format), tls-syslog, https (Sekoia /plain/batch), "+
		"relp (RELP over TLS, Sekoia format, to a real rsyslog imrelp that forwards to the sink)")
	fs.IntVar(&rounds, "rounds", 1, "interleaved rounds; results are medians over rounds")
	fs.StringVar(&out, "out", "dtbench-out", "`DIR` for results.json and report.html")
	fs.StringVar(&record, "record", "", "also store a dated summary headed by machine, cores, Go version and commit under `DIR` (e.g. bench/results)")
	fs.StringVar(&under, "under-test", "", "relays whose loss fails the run (`LIST`; default dtrelay when compared, else every relay)")
	fs.StringVar(&dtrelay, "dtrelay", "", "dtrelay binary (default bin/dtrelay in the repo, then PATH)")
	fs.StringVar(&rsyslogd, "rsyslogd", "", "rsyslogd binary (default PATH, then "+bench.DefaultPeersDir+"/usr/sbin/rsyslogd)")
	fs.StringVar(&rsModules, "rsyslog-modules", "", "rsyslog module `DIR` for rsyslogd -M (default: found beside the binary); "+
		"--rsyslogd and this also give the rsyslog that plays the relp intake")
	fs.StringVar(&syslogNG, "syslog-ng", "", "syslog-ng binary (default PATH)")
	fs.BoolVar(&keep, "keep", false, "keep each run's directory (relay config and log) under $TMPDIR")
	fs.DurationVar(&drainIdle, "drain-idle", 3*time.Second, "after the load, stop waiting for alerts after this long without progress")
	fs.DurationVar(&drainMax, "drain-max", 60*time.Second, "after the load, wait at most this long for outstanding alerts")
	fs.BoolVar(&noProgress, "no-progress", false, "no progress display")
	fs.IntVar(&copyDrop, "copy-drop-every", 0, "make the copy relay drop every `N`th alert (to check that loss fails the run)")
	fs.BoolVar(&halfPeak, "half-peak", false, "after the runs, run dtrelay's scenarios again at --rate = half its measured peak (same rounds) and report p99 latency")
	fs.BoolVar(&list, "list", false, "print the scenarios (with their count and relays) and exit")
	fs.BoolVar(&verbose, "v", false, "verbose logging")
	if standard {
		for k, v := range standardDefaults {
			f := fs.Lookup(k)
			f.DefValue = v
			f.Value.Set(v)
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	log := newLogger(stderr, verbose)
	fail := func(err error) int { fmt.Fprintf(stderr, "dtbench %s: %v\n", name, err); return 2 }
	scs, err := load.scenarios(bench.ParseList(outputs))
	if err != nil {
		return fail(err)
	}
	if standard {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		scs = bench.Standardize(scs, !set["count"], !set["relays"])
	}
	if list {
		for _, sc := range scs {
			rl := strings.Join(sc.Relays, ",")
			if rl == "" {
				rl = relays
			}
			fmt.Fprintf(stdout, "%-30s %-22s count %d, bound %v, %s %s, relays %s\n", sc.Name(),
				bench.CellLabel(sc.Output, sc.Size, sc.MaxSize, sc.Conns), sc.Count, sc.Duration, sc.Framing, sc.Header, rl)
		}
		if halfPeak {
			fmt.Fprintln(stdout, "then dtrelay in each scenario again at half its measured peak (--half-peak)")
		}
		return 0
	}
	self, _ := os.Executable()
	rs, err := bench.NewRelays(bench.ParseList(relays), bench.RelayOptions{DTRelay: dtrelay, Rsyslogd: rsyslogd,
		RsyslogModules: rsModules, SyslogNG: syslogNG, Self: self, CopyDropEvery: copyDrop})
	if err != nil {
		return fail(err)
	}
	if len(rs) == 0 {
		return fail(errors.New("no relay: give --relays"))
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fail(err)
	}
	cfg := bench.CompareConfig{Relays: rs, Scenarios: scs, Rounds: rounds, UnderTest: bench.ParseList(under), KeepDirs: keep, Log: log,
		Run: bench.RunOptions{DrainIdle: drainIdle, DrainMax: drainMax, Log: log,
			RELPPeer: rsyslogpeer.Install{Bin: rsyslogd, Modules: rsModules}}}
	if !noProgress {
		p := bench.NewProgress(stderr, isTerminal(stderr))
		cfg.OnRunStart = p.Start
		cfg.Run.OnSample = p.Sample
		cfg.OnRunEnd = func(r *bench.RunResult, _ bench.Scenario) { p.End(r) }
	}
	res, err := bench.Compare(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	res.Standard = standard
	if hs := bench.HalfPeakScenarios(scs, res); halfPeak && len(hs) > 0 {
		hcfg := cfg
		hcfg.Scenarios = hs
		hres, err := bench.Compare(ctx, hcfg)
		if err != nil {
			return fail(fmt.Errorf("half-peak runs: %w", err))
		}
		res.HalfPeak = hres.Scenarios
	}
	res.Meta.Command = strings.TrimSpace("dtbench " + name + " " + strings.Join(args, " "))
	fmt.Fprintln(stdout)
	bench.WriteTable(stdout, res)
	if standard {
		record = out
		out = filepath.Join(out, bench.RecordName(res.Meta))
		if err := os.MkdirAll(out, 0o755); err != nil {
			return fail(err)
		}
	}
	if err := bench.WriteResults(out, res); err != nil {
		return fail(err)
	}
	if err := bench.WriteReport(out, res); err != nil {
		return fail(err)
	}
	fmt.Fprintf(stdout, "\nwrote %s and %s\n", filepath.Join(out, "results.json"), filepath.Join(out, "report.html"))
	if record != "" {
		p, err := bench.WriteRecord(record, res)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "recorded %s\n", p)
	}
	if f := res.Failures(); len(f) > 0 {
		for _, l := range f {
			fmt.Fprintf(stderr, "FAIL: %s\n", l)
		}
		return 1
	}
	return 0
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && bench.IsTerminal(f)
}
