package relay

import (
	"bytes"
	"fmt"
	"runtime"

	"github.com/VictoriaMetrics/metrics"
)

// Version is the relay's version in dtrelay_build_info; cmd/dtrelay sets
// it before Start.
var Version = "(devel)"

// registerBuildInfo exposes dtrelay_build_info{version,goversion} 1.
func registerBuildInfo(set *metrics.Set) {
	set.GetOrCreateGauge(fmt.Sprintf(`dtrelay_build_info{version=%q,goversion=%q}`, Version, runtime.Version()),
		func() float64 { return 1 })
}

// writeHelp returns the exposition p with the text of each empty
// "# HELP family" line the metrics library wrote filled in from helpTexts
// (the library writes the line, not its text). Families without a text
// keep the empty line; TestMetricsExposition requires one for every
// dtrelay_ family.
func writeHelp(p []byte) []byte {
	out := make([]byte, 0, len(p)+len(p)/4)
	for len(p) > 0 {
		line := p
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			line, p = p[:i+1], p[i+1:]
		} else {
			p = nil
		}
		if t, ok := bytes.CutPrefix(line, []byte("# TYPE ")); ok {
			if fam, _, ok := bytes.Cut(t, []byte(" ")); ok && typeFixes[string(fam)] != "" {
				out = fmt.Appendf(out, "# TYPE %s %s\n", fam, typeFixes[string(fam)])
				continue
			}
		}
		fam, ok := bytes.CutPrefix(bytes.TrimSuffix(line, []byte("\n")), []byte("# HELP "))
		if !ok || bytes.IndexByte(fam, ' ') >= 0 {
			out = append(out, line...)
			continue
		}
		text := helpText(string(fam))
		if text == "" {
			out = append(out, line...)
			continue
		}
		out = append(out, "# HELP "...)
		out = append(out, fam...)
		out = append(out, ' ')
		out = append(out, text...)
		out = append(out, '\n')
	}
	return out
}

// helpText is the HELP text of a family: helpTexts', else a generic one for
// the Go runtime's and the process's families, which the metrics library
// writes.
func helpText(fam string) string {
	if t, ok := helpTexts[fam]; ok {
		return t
	}
	switch {
	case len(fam) > 3 && fam[:3] == "go_":
		return "Go runtime metric (see github.com/VictoriaMetrics/metrics)."
	case len(fam) > 8 && fam[:8] == "process_":
		return "Process metric from /proc (see github.com/VictoriaMetrics/metrics)."
	}
	return ""
}

// helpTexts are the HELP texts of the relay's families; the README's
// metrics table says the same at more length.
var helpTexts = map[string]string{
	"dtrelay_build_info": "Always 1; the labels give the relay's version and Go version.",

	"dtrelay_config_reload_total":                          "Configuration reloads, by result (success, error).",
	"dtrelay_config_last_reload_success_timestamp_seconds": "Unix time of the start or of the last successful reload.",

	"dtrelay_input_frames_total":                 "Syslog frames read by the input.",
	"dtrelay_input_bytes_total":                  "Bytes read by the input.",
	"dtrelay_input_alerts_total":                 "Messages the input classified, by kind.",
	"dtrelay_input_not_json_total":               "Messages whose payload is not JSON.",
	"dtrelay_input_discarded_total":              "Messages the input discarded, by reason.",
	"dtrelay_input_errors_total":                 "Framing errors of the input, by reason (oversize, truncated...).",
	"dtrelay_input_connections":                  "Connections open now.",
	"dtrelay_input_connections_total":            "Connections accepted.",
	"dtrelay_input_rejected_connections_total":   "Connections closed before a complete frame, by reason.",
	"dtrelay_input_idle_closed_total":            "Connections closed for idleness.",
	"dtrelay_input_proxy_local_total":            "PROXY protocol LOCAL connections from a trusted proxy.",
	"dtrelay_input_last_frame_timestamp_seconds": "Unix time of the input's last frame.",
	"dtrelay_input_last_alert_timestamp_seconds": "Unix time of the input's last alert.",
	"dtrelay_input_blocked":                      "The input's producers waiting for queue or spool room now.",
	"dtrelay_input_backpressure_seconds_total":   "Seconds the input's producers waited for room, ongoing waits included.",
	"dtrelay_partial_frame_bytes":                "Bytes held in partial frames, all inputs together.",

	"dtrelay_source_alerts_total":                 "Messages from the source, by kind.",
	"dtrelay_source_last_alert_timestamp_seconds": "Unix time of the source's last message.",
	"dtrelay_source_silent":                       "1 while the source has sent nothing for the input's silent_after.",

	"dtrelay_route_filtered_total":     "Messages a route's filter dropped.",
	"dtrelay_route_deduplicated_total": "Duplicate alerts a route's dedup dropped.",

	"dtrelay_output_up":                             "1 while the output's last delivery attempt succeeded, 0 while it fails.",
	"dtrelay_output_last_success_timestamp_seconds": "Unix time the intake last accepted a batch (0: never).",
	"dtrelay_output_events_total":                   "Events the intake accepted (delivered).",
	"dtrelay_output_bytes_total":                    "Bytes of the batches the intake accepted.",
	"dtrelay_output_batches_total":                  "Requests (batches or chunks) the intake accepted.",
	"dtrelay_output_retries_total":                  "Failed delivery attempts that will be retried.",
	"dtrelay_output_dead_letter_total":              "Events written to the dead-letter file, by reason.",
	"dtrelay_output_dropped_total":                  "Events not delivered and not dead-lettered, by reason.",
	"dtrelay_output_deduplicated_total":             "Duplicate alerts the output's dedup dropped.",
	"dtrelay_output_failures_total":                 "Failed delivery attempts, by reason.",
	"dtrelay_output_rejected_total":                 "Events an intake dropped without saying which, by reason.",
	"dtrelay_output_reconnects_total":               "Connections to the intake opened after the first.",
	"dtrelay_output_possible_duplicates_total":      "Events that may reach the intake twice.",
	"dtrelay_output_queue_bytes":                    "Memory held by the blocks queued for the output or in its batch.",
	"dtrelay_output_queue_capacity_bytes":           "The output's memory queue bound (queue_size).",
	"dtrelay_output_oldest_pending_seconds":         "Age of the oldest record queued for the output or in its batch (0: none).",
	"dtrelay_output_spool_overflows_total":          "Times the output's memory queue was full and it went on from the spool.",
	"dtrelay_output_send_duration_seconds":          "Duration of accepted requests to the intake.",
	"dtrelay_output_delivery_latency_seconds":       "Time from reception to the intake's acceptance, per event.",

	"dtrelay_spool_bytes":                 "Bytes of the spool's segment files.",
	"dtrelay_spool_capacity_bytes":        "The spool's size bound (max_size).",
	"dtrelay_spool_segments":              "Segment files, the active one included.",
	"dtrelay_spool_oldest_age_seconds":    "Age of the oldest record some output has not acknowledged.",
	"dtrelay_spool_blocked_appends":       "Appends waiting for spool room now.",
	"dtrelay_spool_blocked_seconds_total": "Seconds appends waited for spool room.",
	"dtrelay_spool_appended_total":        "Records appended to the spool.",
	"dtrelay_spool_appended_bytes_total":  "Bytes appended to the spool.",
	"dtrelay_spool_dropped_total":         "Records dropped from the spool to make room (when_full: drop_oldest).",
	"dtrelay_spool_rejected_total":        "Records the spool refused, by reason.",
	"dtrelay_spool_corrupt_total":         "Corrupt spool regions set aside.",
	"dtrelay_spool_corrupt_bytes_total":   "Bytes of corrupt spool regions set aside.",
	"dtrelay_spool_write_errors_total":    "Failed spool writes.",
	"dtrelay_spool_replayed_total":        "Records the consumer read back from the spool.",
	"dtrelay_spool_redelivered_total":     "Records the consumer may deliver twice after an unclean stop.",
	"dtrelay_spool_unclaimed_records":     "Records of consumers no longer configured, kept in the spool.",
	"dtrelay_spool_unspooled_total":       "Records not spooled because the spool was closing (memory only).",

	"dtrelay_poller_requests_total":               "API requests, by HTTP status (error: no answer).",
	"dtrelay_poller_events_total":                 "Polled events confirmed (delivered, dead-lettered or spooled).",
	"dtrelay_poller_forwarded_total":              "Polled events handed to the pipeline.",
	"dtrelay_poller_repeats_total":                "Overlap repeats suppressed (normal).",
	"dtrelay_poller_duplicates_total":             "Overlap repeats suppressed, all endpoints (not delivered duplicates).",
	"dtrelay_poller_resent_total":                 "Polled events forwarded again: possible duplicates.",
	"dtrelay_poller_unconfirmed_events":           "Polled events forwarded, not confirmed yet.",
	"dtrelay_poller_checkpoint_timestamp_seconds": "The endpoint's checkpoint, Unix time.",
	"dtrelay_poller_checkpoint_age_seconds":       "Now minus the endpoint's checkpoint.",
	"dtrelay_poller_interval_seconds":             "The input's polling interval.",
	"dtrelay_poller_errors_total":                 "Failed polls and dropped events, by reason.",
}

// typeFixes corrects the TYPE the library writes for a family exposed
// through a gauge callback that is in fact a counter.
var typeFixes = map[string]string{
	"dtrelay_input_backpressure_seconds_total": "counter",
}
