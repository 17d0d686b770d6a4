package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/config"
	"github.com/dtrelay/dtrelay/internal/relay"
)

// Exit codes of `dtrelay run`, so that a service manager can tell a clean
// stop from lost events and a configuration to fix (README, exit codes).
const (
	exitOK      = 0 // stopped cleanly: everything delivered or kept in the spool
	exitFailure = 1 // events undelivered at stop, or the relay could not start (a port taken...)
	exitConfig  = 2 // the configuration cannot be read or is invalid; also bad flags
)

// runRelay is `dtrelay run`: protect the secrets → logger → config → start
// stages → wait for a signal → stop in reverse.
func runRelay(path, level string, stderr io.Writer) int {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		fmt.Fprintf(stderr, "dtrelay: bad -log-level %q\n", level)
		return exitConfig
	}
	// The last warnings go to the status page too (relay.Warnings: a line
	// below warn level costs it one comparison).
	warns := relay.NewWarnings()
	log := zerolog.New(zerolog.MultiLevelWriter(stderr, warns)).Level(lvl).With().Timestamp().Logger()
	// Before the configuration (and its keys) is read: no core dump of a
	// process holding them.
	if err := protectSecrets(); err != nil {
		log.Error().Err(err).Msg("cannot start")
		return exitFailure
	}
	// Libraries that log through the standard logger (the process metrics
	// do) come out as JSON too.
	stdlog.SetFlags(0)
	stdlog.SetOutput(relay.LogWriter(log.With().Str("component", "go").Logger(), zerolog.WarnLevel))

	cfg, warnings, err := loadConfig(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	for _, w := range warnings {
		log.Warn().Msg(w.String())
	}
	if w := descriptorWarning(cfg); w != "" {
		log.Warn().Msg(w)
	}
	source := path
	if source == "" {
		source = "embedded default"
	}
	log.Info().Str("version", versionString()).Str("config", source).Msg("dtrelay starting")

	// Before Start: a SIGTERM while the stages start (the metrics listener
	// may already answer) waits for them, then stops them gracefully; and
	// SIGHUP's default action kills.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	relay.Version = versionOnly()
	r, err := relay.Start(cfg, metrics.NewSet(), log, relay.WithWarnings(warns))
	if err != nil {
		log.Error().Err(err).Msg("cannot start")
		return exitFailure
	}
	n := &notifier{log: log} // sig is caught already: systemd may send SIGHUP as soon as it reads READY=1
	n.ready(httpLiveness(r.MetricsAddr()))
	s := <-sig
	for ; s == syscall.SIGHUP; s = <-sig { // the unit's ExecReload
		reload(r, path, log)
	}
	cfg = r.Config() // the last configuration applied
	n.stopping()
	beginShutdown(r, cfg.ShutdownDelay, sig, log)
	signal.Stop(sig)
	log.Info().Str("signal", s.String()).Dur("timeout", cfg.ShutdownTimeout).Msg("stopping")
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	start := time.Now()
	lost := r.Stop(ctx)
	log.Info().Dur("took", time.Since(start)).Int64("undelivered", lost).Msg("stopped")
	if lost > 0 {
		return exitFailure
	}
	return exitOK
}

// beginShutdown turns /readyz to 503 and, for shutdown_delay, keeps the
// inputs accepting while a load balancer takes the relay out of rotation;
// another signal on sig cuts the delay short.
func beginShutdown(r *relay.Relay, delay time.Duration, sig <-chan os.Signal, log zerolog.Logger) {
	if delay > 0 {
		log.Info().Dur("shutdown_delay", delay).Msg("not ready (/readyz 503); inputs accept until the delay ends")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case s := <-sig:
			log.Info().Str("signal", s.String()).Msg("shutdown_delay cut short")
			cancel()
		case <-ctx.Done():
		}
	}()
	r.BeginShutdown(ctx, delay)
}

// reload is SIGHUP: the configuration file is read again and applied;
// relay.Reload logs and counts the outcome (a refused one changes nothing).
func reload(r *relay.Relay, path string, log zerolog.Logger) {
	log.Info().Str("config", path).Msg("SIGHUP: reloading the configuration")
	_ = r.Reload(func() (*config.Config, []config.Warning, error) { return loadConfig(path) })
}

func loadConfig(path string) (*config.Config, []config.Warning, error) {
	if path == "" {
		return config.Default(), nil, nil
	}
	return config.Load(path)
}

// runCheck is `dtrelay check`: every problem on stderr and exit 1, or the
// warnings on stderr, a summary on stdout and exit 0.
func runCheck(path string, stdout, stderr io.Writer) int {
	cfg, warnings, err := config.Load(path)
	for _, w := range warnings {
		fmt.Fprintln(stderr, "warning:", w.String())
	}
	if err != nil {
		var errs *config.Errors
		if errors.As(err, &errs) {
			for _, p := range errs.Problems {
				fmt.Fprintln(stderr, "error:", p.String())
			}
			fmt.Fprintf(stderr, "%s: %d problem(s)\n", path, len(errs.Problems))
		} else {
			fmt.Fprintln(stderr, "error:", err)
		}
		return 1
	}
	for _, w := range spoolWarnings(cfg) {
		fmt.Fprintln(stderr, "warning:", w)
	}
	if w := descriptorWarning(cfg); w != "" {
		fmt.Fprintln(stderr, "warning:", w)
	}
	fmt.Fprintf(stdout, "%s: ok\n%s", path, cfg.Summary())
	return 0
}

// runRouteDryRun is `dtrelay check --route SAMPLES`, after the check passed.
func runRouteDryRun(path, samples string, stdout, stderr io.Writer) int {
	cfg, _, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	f, err := os.Open(samples)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	defer f.Close()
	fmt.Fprintf(stdout, "dry run of %s:\n", samples)
	if err := relay.DryRun(cfg, f, stdout); err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	return 0
}
