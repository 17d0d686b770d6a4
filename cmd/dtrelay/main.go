// Command dtrelay receives Darktrace alerts as syslog and forwards them to
// SIEM intakes. See the README for the configuration.
//
//	dtrelay run   [-c FILE]   # no -c: the embedded default
//	dtrelay check  -c FILE    # validate, print every problem, exit 1 if any
//	dtrelay check  -c FILE --route SAMPLES   # and where each sample alert would go
//	dtrelay check --online -c FILE  # and reach every API input and output
//	dtrelay spool inspect -c FILE   # what the spool holds (read-only)
//	dtrelay deadletter list   -c FILE
//	dtrelay deadletter replay -c FILE --output NAME
//	dtrelay status [-a ADDR] [-w]   # the status page as tables (-w: every 2 s)
//	dtrelay version
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  dtrelay run   [-c FILE] [-log-level LEVEL]   relay alerts (no -c: the embedded default)
  dtrelay check  -c FILE [--route SAMPLES]     validate a configuration; --route: where each
                                               alert of SAMPLES (JSON or syslog lines) would go
  dtrelay check --online -c FILE               and reach each darktrace-api input and output (exit 1 on a failure)
  dtrelay spool inspect -c FILE                what the spool holds (read-only, also while running)
  dtrelay deadletter list   -c FILE            the events each output gave up on
  dtrelay status [-a ADDR] [-w]                inputs, sources, outputs, spool of a running relay
                                               (ADDR: metrics.address, default 127.0.0.1:9514; -w: every 2 s)
  dtrelay deadletter replay -c FILE --output NAME [-timeout 5m]
                                               send an output's dead-letter events again
  dtrelay version                              print the version
`)
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("dtrelay "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	switch cmd {
	case "run":
		cfgPath := fs.String("c", "", "configuration `file` (default: the embedded default)")
		level := fs.String("log-level", "info", "log `level`: debug, info, warn, error")
		if fs.Parse(args) != nil {
			return 2
		}
		return runRelay(*cfgPath, *level, stderr)
	case "check":
		cfgPath := fs.String("c", "", "configuration `file`")
		samples := fs.String("route", "", "dry run: for each alert of this `file` (one JSON payload or syslog line per line), the routes and outputs it would take")
		online := fs.Bool("online", false, "also reach each darktrace-api input and output (signed request, connection, TLS)")
		if fs.Parse(args) != nil {
			return 2
		}
		if *cfgPath == "" {
			fmt.Fprintln(stderr, "dtrelay check: -c FILE is required")
			return 2
		}
		check := runCheck
		if *online {
			check = runCheckOnline // runCheck, then the online checks
		}
		if code := check(*cfgPath, stdout, stderr); code != 0 || *samples == "" {
			return code
		}
		return runRouteDryRun(*cfgPath, *samples, stdout, stderr)
	case "spool":
		return runSpool(args, stdout, stderr)
	case "status":
		return runStatus(args, stdout, stderr)
	case "deadletter":
		return runDeadLetter(args, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "dtrelay", versionString())
		return 0
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "dtrelay: unknown command %q\n", cmd)
	usage(stderr)
	return 2
}

func versionString() string {
	return versionOnly() + " " + runtime.Version()
}

// versionOnly is the version without the Go version: -X main.version, else
// the module's version and VCS revision, else "(devel)".
func versionOnly() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " " + s.Value[:12]
			}
		}
		return v
	}
	return "(devel)"
}
