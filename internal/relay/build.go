package relay

import (
	"fmt"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/config"
	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/output"
	"github.com/dtrelay/dtrelay/parser"
)

// buildOutput makes the encoder, sender and dead-letter file of one
// configured output; dl is the configuration's dead_letter.
func buildOutput(oc config.Output, dl config.DeadLetter, set *metrics.Set, log zerolog.Logger) (forward.OutputSpec, error) {
	spec := forward.OutputSpec{
		Name:       oc.Name,
		QueueSize:  int64(oc.QueueSize),
		MaxEvents:  oc.Batch.MaxEvents,
		MaxBytes:   int(oc.Batch.MaxBytes),
		MaxWait:    oc.Batch.MaxWait,
		Timeout:    oc.Timeout,
		DeadLetter: forward.NewDeadLetter(dl.Dir, oc.Name, int64(dl.MaxSize)),
		Dedup:      dedupSpec(oc.Dedup),
	}
	tc := output.TLSClientConfig{CAFile: oc.CAFile, NoSystemRoots: oc.NoSystemRoots, ServerName: oc.ServerName,
		ClientCertFile: oc.ClientCertFile, ClientKeyFile: oc.ClientKeyFile}
	switch oc.Type {
	case "sekoia-http":
		s, err := output.NewSekoiaHTTPSender(output.SekoiaHTTPConfig{
			URL: oc.URL, IntakeKey: oc.IntakeKey, Endpoint: oc.Endpoint, Compression: oc.Compression,
			TLSClientConfig: tc, Timeout: oc.Timeout,
		}, set, oc.Name, log)
		if err != nil {
			return spec, err
		}
		spec.Encoder, spec.Sender = s.Encoder(), s
		return spec, nil
	case "http":
		s, err := output.NewHTTPSender(output.HTTPConfig{
			URL: oc.URL, Headers: oc.Headers, Compression: oc.Compression,
			TLSClientConfig: tc, Timeout: oc.Timeout,
		}, set, oc.Name, log)
		if err != nil {
			return spec, err
		}
		spec.Encoder, spec.Sender = s.Encoder(), s
		return spec, nil
	case "syslog":
		s, err := output.NewSyslogSender(output.SyslogConfig{
			Address: oc.Address, TLS: oc.TLS, TLSClientConfig: tc,
			SyslogEncoderConfig: output.SyslogEncoderConfig{Format: oc.Format, Framing: oc.Framing, IntakeKey: oc.IntakeKey},
			DialTimeout:         oc.Timeout, WriteTimeout: oc.Timeout, AckTimeout: oc.Timeout,
		}, set, oc.Name, log)
		if err != nil {
			return spec, err
		}
		spec.Encoder, spec.Sender = s.Encoder(), s
		spec.NotJSON = oc.Format == output.FormatOriginal
		return spec, nil
	case "relp":
		s, err := output.NewRelpSender(output.RelpConfig{
			Address: oc.Address, TLS: oc.TLS, TLSClientConfig: tc,
			SyslogEncoderConfig: output.SyslogEncoderConfig{Format: oc.Format, IntakeKey: oc.IntakeKey},
			Window:              oc.Window, MaxMessage: int(oc.MaxMessageSize),
			DialTimeout: oc.Timeout, Timeout: oc.Timeout,
		}, set, oc.Name, log)
		if err != nil {
			return spec, err
		}
		spec.Encoder, spec.Sender = s.Encoder(), s
		spec.NotJSON = oc.Format == output.FormatOriginal
		return spec, nil
	case "file":
		s, err := output.NewFileSender(oc.Path)
		if err != nil {
			return spec, err
		}
		spec.Encoder, spec.Sender = output.NDJSONEncoder{}, s
		return spec, nil
	}
	return spec, fmt.Errorf("output type %q is not supported", oc.Type)
}

func buildRoutes(rcs []config.Route, inIdx, outIdx map[string]int) ([]forward.RouteSpec, error) {
	var out []forward.RouteSpec
	for i, rc := range rcs {
		rs := forward.RouteSpec{Name: rc.Name, Drop: rc.Drop, Dedup: dedupSpec(rc.Dedup)}
		m, err := buildMatch(&rc.Match, inIdx)
		if err != nil {
			return nil, fmt.Errorf("routes[%d]: %w", i, err)
		}
		rs.Match = m
		if rc.Not != nil {
			n, err := buildMatch(rc.Not, inIdx)
			if err != nil {
				return nil, fmt.Errorf("routes[%d].not: %w", i, err)
			}
			rs.Not = &n
		}
		for _, n := range rc.Outputs {
			j, ok := outIdx[n]
			if !ok {
				return nil, fmt.Errorf("routes[%d]: unknown output %q", i, n)
			}
			rs.Outputs = append(rs.Outputs, j)
		}
		out = append(out, rs)
	}
	return out, nil
}

// buildMatch resolves a configured match's names.
func buildMatch(mc *config.Match, inIdx map[string]int) (forward.Match, error) {
	m := forward.Match{Models: mc.Models, Categories: mc.Categories, Sources: mc.Sources, Tags: mc.Tags}
	for _, k := range mc.Kinds {
		kind, ok := parser.ParseKind(k)
		if !ok {
			return m, fmt.Errorf("unknown kind %q", k)
		}
		m.Kinds = append(m.Kinds, kind)
	}
	if mc.MinPriority != "" {
		p, ok := parser.ParsePriority(mc.MinPriority)
		if !ok {
			return m, fmt.Errorf("unknown priority %q", mc.MinPriority)
		}
		m.MinPriority = p
	}
	for _, n := range mc.Inputs {
		j, ok := inIdx[n]
		if !ok {
			return m, fmt.Errorf("unknown input %q", n)
		}
		m.Inputs = append(m.Inputs, j)
	}
	if mc.MinScore != nil || mc.MaxScore != nil {
		m.ScoreRange, m.MinScore, m.MaxScore = true, 0, 1
		if mc.MinScore != nil {
			m.MinScore = *mc.MinScore
		}
		if mc.MaxScore != nil {
			m.MaxScore = *mc.MaxScore
		}
	}
	return m, nil
}

// dedupSpec converts a configured dedup, nil for none.
func dedupSpec(d *config.Dedup) *forward.DedupSpec {
	if d == nil {
		return nil
	}
	return &forward.DedupSpec{Window: d.Window, MaxKeys: d.MaxKeys}
}
