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

// runRelay is `dtrelay run`: protect the secrets → logger → config → start
// stages → wait for a signal → stop in reverse.
func runRelay(path, level string, stderr io.Writer) int {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		fmt.Fprintf(stderr, "dtrelay: bad -log-level %q\n", level)
		return 2
	}
	log := zerolog.New(stderr).Level(lvl).With().Timestamp().Logger()
	// Before the configuration (and its keys) is read: no core dump of a
	// process holding them.
	if err := protectSecrets(); err != nil {
		log.Error().Err(err).Msg("cannot start")
		return 1
	}
	// Libraries that log through the standard logger (the process metrics
	// do) come out as JSON too.
	stdlog.SetFlags(0)
	stdlog.SetOutput(relay.LogWriter(log.With().Str("component", "go").Logger(), zerolog.WarnLevel))

	cfg, warnings, err := loadConfig(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
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

	r, err := relay.Start(cfg, metrics.NewSet(), log)
	if err != nil {
		log.Error().Err(err).Msg("cannot start")
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	n := &notifier{log: log} // after Notify: systemd may send SIGHUP as soon as it reads READY=1
	n.ready(httpLiveness(r.MetricsAddr()))
	s := <-sig
	for s == syscall.SIGHUP { // the unit's ExecReload; SIGHUP's default action would kill the relay
		log.Warn().Msg("SIGHUP: reloading the configuration is not supported yet; carrying on unchanged")
		s = <-sig
	}
	signal.Stop(sig)
	n.stopping()
	log.Info().Str("signal", s.String()).Dur("timeout", cfg.ShutdownTimeout).Msg("stopping")
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	start := time.Now()
	lost := r.Stop(ctx)
	log.Info().Dur("took", time.Since(start)).Int64("undelivered", lost).Msg("stopped")
	if lost > 0 {
		return 1
	}
	return 0
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
