package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/config"
	"github.com/dtrelay/dtrelay/internal/relay"
)

// runDeadLetter is `dtrelay deadletter list|replay`.
func runDeadLetter(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: dtrelay deadletter list -c FILE | dtrelay deadletter replay -c FILE --output NAME")
		return 2
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("dtrelay deadletter "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("c", "", "configuration `file`")
	switch sub {
	case "list":
		if fs.Parse(args) != nil {
			return 2
		}
		cfg, code := loadForDeadLetter(*cfgPath, stderr)
		if cfg == nil {
			return code
		}
		return listDeadLetters(cfg, stdout, stderr)
	case "replay":
		output := fs.String("output", "", "the output `name` whose dead-letter file to send again")
		timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long; what is not sent stays in the file")
		if fs.Parse(args) != nil {
			return 2
		}
		if *output == "" {
			fmt.Fprintln(stderr, "dtrelay deadletter replay: --output NAME is required")
			return 2
		}
		cfg, code := loadForDeadLetter(*cfgPath, stderr)
		if cfg == nil {
			return code
		}
		return replayDeadLetter(cfg, *output, *timeout, stdout, stderr)
	}
	fmt.Fprintf(stderr, "dtrelay deadletter: unknown command %q (want list or replay)\n", sub)
	return 2
}

func loadForDeadLetter(path string, stderr io.Writer) (*config.Config, int) {
	if path == "" {
		fmt.Fprintln(stderr, "dtrelay deadletter: -c FILE is required")
		return nil, 2
	}
	cfg, _, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		fmt.Fprintf(stderr, "(dtrelay check -c %s lists every problem)\n", path)
		return nil, 1
	}
	return cfg, 0
}

// listDeadLetters prints one line per output: its dead-letter file's
// events, by reason, and their age.
func listDeadLetters(cfg *config.Config, stdout, stderr io.Writer) int {
	sums, err := relay.DeadLetterSummaries(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	for i, s := range sums {
		name := cfg.Outputs[i].Name
		if s.Events == 0 && s.Corrupt == 0 {
			fmt.Fprintf(stdout, "%s: no events (%s)\n", name, s.Path)
			continue
		}
		reasons := make([]string, 0, len(s.Reasons))
		for r, n := range s.Reasons {
			reasons = append(reasons, fmt.Sprintf("%s %d", r, n))
		}
		sort.Strings(reasons)
		fmt.Fprintf(stdout, "%s: %d events (%d bytes) in %s (%s)", name, s.Events, s.Bytes, s.Path, strings.Join(reasons, ", "))
		if !s.Oldest.IsZero() {
			fmt.Fprintf(stdout, ", oldest %s, newest %s", s.Oldest.UTC().Format(time.RFC3339), s.Newest.UTC().Format(time.RFC3339))
		}
		if s.Corrupt > 0 {
			fmt.Fprintf(stdout, "; %d lines unreadable", s.Corrupt)
		}
		if s.InterruptedPath != "" {
			fmt.Fprintf(stdout, "; %d events in %s, left by an interrupted replay (the next replay sends them first)", s.Interrupted, s.InterruptedPath)
		}
		fmt.Fprintln(stdout)
	}
	return 0
}

// replayDeadLetter sends output's dead-letter events again; exit 0 only
// when every event read was delivered.
func replayDeadLetter(cfg *config.Config, output string, timeout time.Duration, stdout, stderr io.Writer) int {
	log := zerolog.New(stderr).With().Timestamp().Logger()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, path, err := relay.ReplayDeadLetter(ctx, cfg, output, log)
	if path == "" && err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %d of %d events delivered from %s; %d kept in it", output, st.Delivered, st.Read, path, st.Kept)
	if st.Corrupt > 0 {
		fmt.Fprintf(stdout, ", %d unreadable lines kept as they are", st.Corrupt)
	}
	fmt.Fprintln(stdout)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	if st.Kept > 0 || st.Corrupt > 0 {
		return 1
	}
	return 0
}
