// Package poller reads alerts from the Darktrace REST API (Darktrace Cloud
// has no syslog) and feeds them to the same pipeline as received alerts.
//
// A Poller polls two endpoints of one Darktrace instance, /modelbreaches and
// /aianalyst/incidentevents, every Config.Interval, each from its own
// goroutine (a hung or failing endpoint does not delay the other). Each
// request is signed as Sign describes (headers DTAPI-Token, DTAPI-Date,
// DTAPI-Signature) and asks for the window [last end - Overlap, now],
// starttime and endtime in Unix milliseconds. The query parameters sent
// besides the window are:
//
//	/modelbreaches               creationtime=true historicmodelonly=true includeacknowledged=true
//	/aianalyst/incidentevents    includeacknowledged=true includeallpinned=false
//
// creationtime=true makes the window select breaches by the time Darktrace
// created them, not by their "time" (the activity's): breaches are often
// written minutes after the activity they describe, and a window on time
// never returns one created later than Overlap after its time (issue 13:
// 10-minute-late breaches, 5 of 5 lost). darktrace-sdk documents the
// parameter ("use creation time for filtering"); Sekoia's own connector
// filters on time from the last breach's time, and so misses them. AI
// Analyst events have no such parameter: one written more than Overlap
// (default 5m) after its time is missed; raise overlap if that happens.
// historicmodelonly=true returns a breach's model as it was when the breach
// fired, as one flat "model" object: the shape Darktrace's syslog alerts
// have, so that both paths look alike downstream (Sekoia's own connector
// asks for false and gets model.then and model.now; Sekoia's parser reads
// both). includeacknowledged=true: a breach or event acknowledged before
// the next poll is still forwarded. includeallpinned=false: pinned AI
// Analyst events are otherwise returned by every poll whatever the window.
// No score filter is sent (minscore): routes filter, as for syslog.
//
// Each element of the JSON array a response holds is forwarded as one
// event, byte for byte as it appears in the response. An element holding a
// raw CR or LF (a pretty-printed response) is the one exception: it is
// compacted (encoding/json.Compact: insignificant white space removed,
// strings and numbers untouched), because the pipeline carries one JSON
// object per frame with no raw LF. Elements that are not JSON objects, that
// fastjson cannot parse (nested deeper than 300), or that are larger than
// Config.MaxEventSize are dropped, counted in dtrelay_poller_errors_total
// and logged. A response that is not one valid JSON array, an element
// with a syntax error included, is a failed poll (bad_response): nothing
// of it is forwarded, and the window is asked for again.
//
// Windows overlap, so events repeat: they are de-duplicated by pbid (model
// breaches) and by id and currentGroup (AI Analyst events: an event moved to
// another incident is forwarded again); an event without those fields is
// keyed by a hash of its bytes. The memory of keys is bounded by time, not
// by count: a key is forgotten once no later window can return its event
// (its latest window ended before checkpoint - Overlap). It holds the
// events of the last Overlap and of the windows in flight, about 100 bytes
// each; forgetting keys earlier would forward their events again.
//
// Delivery is pipelined. Each poll publishes its new events
// (Producer.Publish) and goes on: the next poll starts Overlap before the
// end of the last window forwarded, whether or not its events are
// confirmed, so one output that is down does not keep the others waiting.
// The checkpoint of an endpoint is the end of the last window whose
// Delivery, and those of every window before it, succeeded: every event
// was accepted by every output it is routed to, or kept in an output's
// dead-letter file (a refusal retrying cannot fix: counted in
// dtrelay_output_dead_letter_total, replayable with dtrelay deadletter
// replay; that satisfies the loss policy, so it confirms), or, with a
// spool, appended to it and synced (the spool delivers it later). An
// output that retries (an intake down, a 401 or another error the operator
// can fix) confirms nothing. A failed Delivery (the pipeline stopped first)
// sends the endpoint back to its checkpoint: the windows after it are asked
// for again, and their events forwarded again (at-least-once, counted in
// resent_total). Without a spool the pipeline's queues bound what is in
// flight: once a dead output's queue is full, the poller waits (as any
// input without a spool).
//
// With Config.StateDir set (the relay always sets it: the input's
// state_dir, else spool.dir, else /var/lib/dtrelay; New fails if it cannot
// be written), the checkpoints and the de-duplication memory are saved in
// StateDir/poller-<name>.json: after a commit that confirmed new keys,
// after one that only moved a checkpoint when the last save is 5s old, and
// when Run returns. The keys of windows forwarded but not confirmed are
// saved marked: after a restart their events are forwarded again and
// counted in resent_total (possible duplicates). RunSettle lets the relay
// commit what the pipeline delivered while it drained at a stop, so that a
// graceful restart forwards nothing twice. A restart resumes from the
// checkpoints, catching up in windows of at most Config.MaxWindow. Without
// a saved file, polling starts at now - Interval.
//
// Errors are retried per endpoint with capped, jittered exponential backoff
// (honouring Retry-After). Redirects are never followed: Darktrace answers
// a bad endpoint with a redirect to /login and a missing permission with a
// redirect to /403; both are reported as clear errors, as are HTTP 400 "API
// SIGNATURE ERROR" and "API DATE ERROR" (the latter usually a clock off by
// more than Darktrace tolerates). The tokens never appear in logs, metrics
// or errors.
//
// Metrics (per input):
//
//	dtrelay_poller_requests_total{input,endpoint,status}   HTTP status, or "error" without an answer
//	dtrelay_poller_events_total{input,endpoint}            events confirmed (see above)
//	dtrelay_poller_forwarded_total{input,endpoint}         events handed to the pipeline
//	dtrelay_poller_repeats_total{input,endpoint}           overlap repeats suppressed (normal)
//	dtrelay_poller_duplicates_total{input}                 the same repeats, all endpoints (kept for dashboards)
//	dtrelay_poller_resent_total{input,endpoint}            events forwarded again after a forwarding never confirmed
//	                                                       (a restart, a failed delivery): possible duplicates
//	dtrelay_poller_unconfirmed_events{input,endpoint}      events forwarded, not confirmed yet
//	dtrelay_poller_checkpoint_timestamp_seconds{input,endpoint}
//	dtrelay_poller_checkpoint_age_seconds{input,endpoint}  now - checkpoint: alert when it exceeds a few intervals
//	dtrelay_poller_interval_seconds{input}                 the polling period (interval)
//	dtrelay_poller_errors_total{input,reason}              failed polls and dropped events, by reason
//
// Reasons: signature, date, login_redirect, forbidden, unauthorized,
// redirect, rate_limited (HTTP 429: the first logged, then one line a
// minute), http_status, bad_response, too_large, timeout, tls (the API's
// certificate is not signed by a trusted CA: set ca_file), transport (no
// answer), delivery (a Delivery failed); for events dropped: not_object,
// invalid_event, oversize; state (the state file could not be read or
// written).
package poller
