package main

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dtrelay/dtrelay/config"
	"github.com/dtrelay/dtrelay/spool"
)

// runSpool is `dtrelay spool inspect -c FILE`: what the spool of a
// configuration holds, read without changing it or taking its lock, so it
// works beside a running relay as on a stopped spool.
func runSpool(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "inspect" {
		fmt.Fprintln(stderr, "usage: dtrelay spool inspect -c FILE")
		return 2
	}
	fs := flag.NewFlagSet("dtrelay spool inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("c", "", "configuration `file`")
	if fs.Parse(args[1:]) != nil {
		return 2
	}
	if *cfgPath == "" {
		fmt.Fprintln(stderr, "dtrelay spool inspect: -c FILE is required")
		return 2
	}
	cfg, _, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if cfg.Spool == nil {
		fmt.Fprintf(stderr, "dtrelay spool inspect: %s has no spool\n", *cfgPath)
		return 1
	}
	rep, err := spool.Inspect(cfg.Spool.Dir)
	if err != nil {
		fmt.Fprintln(stderr, "dtrelay spool inspect:", err)
		return 1
	}
	printReport(stdout, rep, outputNames(cfg), cfg.Spool.Rename, time.Now())
	return 0
}

func outputNames(cfg *config.Config) []string {
	names := make([]string, 0, len(cfg.Outputs))
	for _, o := range cfg.Outputs {
		names = append(names, o.Name)
	}
	return names
}

func printReport(w io.Writer, rep *spool.Report, outputs []string, rename map[string]string, now time.Time) {
	switch {
	case rep.LockPID != 0:
		fmt.Fprintf(w, "spool %s: in use by process %d (a running dtrelay); cursors as of its last commit\n", rep.Dir, rep.LockPID)
	case !rep.LockKnown:
		fmt.Fprintf(w, "spool %s: cannot tell whether a dtrelay is running (no /proc/locks)\n", rep.Dir)
	default:
		fmt.Fprintf(w, "spool %s: not in use\n", rep.Dir)
	}
	switch {
	case rep.CursorsErr != nil:
		fmt.Fprintf(w, "cursors: UNREADABLE (%v): the next start replays everything to every output, counted as redelivered\n", rep.CursorsErr)
	case rep.CursorsMissing:
		fmt.Fprintln(w, "cursors: MISSING: the next start replays everything to every output, counted as redelivered")
	}
	claims := rep.Claims(outputs, rename)
	fmt.Fprintf(w, "consumers (%d):\n", len(rep.Consumers))
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tPENDING\tBYTES\tOLDEST\tHANDED OUT\tSTATUS")
	for _, c := range rep.Consumers {
		status := "output"
		switch cl := claims[c.Name]; {
		case strings.HasPrefix(cl, "unclaimed: "):
			status = "UNCLAIMED, not delivered (dropped when the spool needs the space): " + strings.TrimPrefix(cl, "unclaimed: ")
		case cl != "":
			status = "handed to output " + cl + " at the next start (spool.rename)"
		}
		oldest := "-"
		if c.Pending > 0 {
			oldest = c.Oldest.Round(time.Second).String()
		}
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%d\t%s\n", c.Name, c.Pending, humanSize(c.PendingBytes), oldest, c.Handed, status)
	}
	tw.Flush()
	fmt.Fprintf(w, "segments (%d, %s, %d records):\n", len(rep.Segments), humanSize(rep.Bytes), rep.Records)
	tw = tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  FILE\tBYTES\tRECORDS\tCREATED")
	for _, s := range rep.Segments {
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s (%s ago)\n", s.Name, humanSize(s.Bytes), s.Records,
			s.Created.UTC().Format(time.RFC3339), now.Sub(s.Created).Round(time.Second))
	}
	tw.Flush()
	fmt.Fprintf(w, "corrupt regions (%d):\n", len(rep.Corrupt))
	for _, r := range rep.Corrupt {
		fmt.Fprintf(w, "  %s at %d, %d bytes: %s\n", r.Segment, r.Offset, r.Bytes, r.What)
	}
	if len(rep.SetAside) > 0 {
		fmt.Fprintf(w, "set aside (%d): %s\n", len(rep.SetAside), strings.Join(rep.SetAside, ", "))
	}
}

// spoolWarnings returns what `check` says about the spool of cfg: the
// spooled backlogs that no output of cfg claims, which the relay would not
// deliver. It reads the spool without changing it or taking its lock.
func spoolWarnings(cfg *config.Config) []string {
	if cfg.Spool == nil {
		return nil
	}
	un, err := spool.CheckConsumers(cfg.Spool.Dir, outputNames(cfg), cfg.Spool.Rename)
	if err != nil {
		return []string{fmt.Sprintf("spool.dir: cannot read the spool's consumers: %v", err)}
	}
	sort.Slice(un, func(i, j int) bool { return un[i].Name < un[j].Name })
	var out []string
	for _, c := range un {
		why := ""
		if c.Reason != "" {
			why = " (spool.rename does not apply: " + c.Reason + ")"
		}
		out = append(out, fmt.Sprintf("spool: %d alerts (%s, oldest %s old) are spooled for output %q, which this configuration does not have%s: "+
			"they will not be delivered, and are dropped when the spool needs the space; if the output was renamed, add spool.rename: {%s: NEW-NAME}",
			c.Pending, humanSize(c.PendingBytes), c.Oldest.Round(time.Second), c.Name, why, c.Name))
	}
	return out
}

// humanSize formats a byte count for people: 512 B, 40.0 KiB, 1.5 GiB.
func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 4 {
		v, i = v/unit, i+1
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i])
}
