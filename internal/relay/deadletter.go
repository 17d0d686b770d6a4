package relay

import (
	"context"
	"fmt"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/config"
	"github.com/dtrelay/dtrelay/forward"
)

// ReplayDeadLetter sends the events of output name's dead-letter file again
// through that output's sender, built from cfg as dtrelay run builds it
// (dtrelay deadletter replay), until they are delivered or ctx ends; what is
// not delivered stays in the file (forward.Replay). It may run while the
// relay runs.
func ReplayDeadLetter(ctx context.Context, cfg *config.Config, name string, log zerolog.Logger) (forward.ReplayStats, string, error) {
	for _, oc := range cfg.Outputs {
		if oc.Name != name {
			continue
		}
		spec, err := buildOutput(oc, cfg.DeadLetter, metrics.NewSet(), log)
		if err != nil {
			return forward.ReplayStats{}, "", fmt.Errorf("cannot set up output %q: %w", name, err)
		}
		defer spec.Sender.Close()
		defer spec.DeadLetter.Close()
		st, err := forward.Replay(ctx, spec.DeadLetter, spec, log.With().Str("output", name).Logger())
		return st, spec.DeadLetter.Path(), err
	}
	return forward.ReplayStats{}, "", fmt.Errorf("no output is named %q", name)
}

// DeadLetterSummaries describes the dead-letter file of each output of cfg,
// in order (dtrelay deadletter list).
func DeadLetterSummaries(cfg *config.Config) ([]forward.DeadLetterSummary, error) {
	var out []forward.DeadLetterSummary
	for _, oc := range cfg.Outputs {
		s, err := forward.Summarize(forward.NewDeadLetter(cfg.DeadLetter.Dir, oc.Name, int64(cfg.DeadLetter.MaxSize)))
		if err != nil {
			return out, fmt.Errorf("output %q: %w", oc.Name, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func (r *Relay) closeDeadLetters() {
	for _, o := range r.outputs {
		if err := o.DeadLetter.Close(); err != nil {
			r.log.Warn().Err(err).Str("output", o.Name).Msg("cannot close the dead-letter file")
		}
	}
}
