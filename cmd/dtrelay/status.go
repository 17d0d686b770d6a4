package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/dtrelay/dtrelay/internal/relay"
)

// runStatus is "dtrelay status [-a ADDR] [-w]": GET /api/status from the
// metrics address and print it as tables; -w refreshes every 2 s.
func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dtrelay status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("a", "127.0.0.1:9514", "the relay's metrics `address` (host:port)")
	watch := fs.Bool("w", false, "refresh every 2 s")
	if fs.Parse(args) != nil {
		return 2
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		st, err := fetchStatus(client, *addr)
		if err != nil {
			fmt.Fprintln(stderr, "dtrelay status:", err)
			if !*watch {
				return 1
			}
		} else {
			if *watch {
				fmt.Fprint(stdout, "\x1b[H\x1b[2J")
			}
			printStatus(stdout, st)
		}
		if !*watch {
			return 0
		}
		time.Sleep(2 * time.Second)
	}
}

func fetchStatus(c *http.Client, addr string) (relay.Status, error) {
	var st relay.Status
	resp, err := c.Get("http://" + addr + "/api/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /api/status: %s", resp.Status)
	}
	return st, json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&st)
}

func printStatus(w io.Writer, st relay.Status) {
	fmt.Fprintf(w, "dtrelay %s, up %s\n\n", st.Version, (time.Duration(st.UptimeS) * time.Second).String())
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INPUT\tPROTOCOL\tADDRESS\tCONNECTIONS\tALERTS\tALERTS/S")
	for _, i := range st.Inputs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.2f\n", i.Name, i.Protocol, i.Address, i.Connections, i.AlertsTotal, i.AlertsPerS)
	}
	fmt.Fprintln(tw, "\t\t\t\t")
	fmt.Fprintln(tw, "SOURCE\tINPUT\tLAST SEEN\tCONNECTIONS\tSTATE")
	for _, s := range st.Sources {
		state := "ok"
		if s.Silent {
			state = "SILENT"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s ago\t%d\t%s\n", s.Source, s.Input, time.Since(s.LastSeen).Round(time.Second), s.Connections, state)
	}
	fmt.Fprintln(tw, "\t\t\t\t")
	fmt.Fprintln(tw, "OUTPUT\tTYPE\tSTATE\tQUEUE\tOLDEST PENDING\tLAST ERROR")
	for _, o := range st.Outputs {
		state := "up"
		if !o.Up {
			state = "DOWN"
		}
		last := "-"
		if !o.LastErrorAt.IsZero() {
			last = time.Since(o.LastErrorAt).Round(time.Second).String() + " ago (below)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d B\t%.1f s\t%s\n", o.Name, o.Type, state, o.QueueBytes, o.QueueCapacity, o.OldestPendingS, last)
	}
	_ = tw.Flush()
	// The errors in full, one line each: too long for a column.
	for _, o := range st.Outputs {
		if o.LastError != "" {
			fmt.Fprintf(w, "last error of %s at %s: %s\n", o.Name, o.LastErrorAt.UTC().Format(time.RFC3339), oneLine(o.LastError))
		}
	}
	if st.Spool != nil {
		fmt.Fprintf(w, "\nspool: %d/%d B\n", st.Spool.Bytes, st.Spool.Capacity)
	} else {
		fmt.Fprintln(w, "\nspool: none")
	}
	fmt.Fprintf(w, "\nwarnings: %d since the start", st.WarningsTotal)
	if len(st.Warnings) > 0 {
		fmt.Fprint(w, "; the last, latest first:")
	}
	fmt.Fprintln(w)
	for _, x := range st.Warnings {
		line := x.Message
		if x.Fields != "" {
			line += " " + x.Fields
		}
		fmt.Fprintf(w, "  %s %-5s %s\n", x.Time.UTC().Format(time.RFC3339), x.Level, oneLine(line))
	}
}

// oneLine keeps a text on one terminal line: control characters (a
// newline in an intake's answer, an escape sequence) become spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}
