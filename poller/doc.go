// Package poller reads alerts from the Darktrace REST API (Darktrace Cloud
// has no syslog) and feeds them to the same pipeline as received alerts.
//
// A Poller polls two endpoints of one Darktrace instance, /modelbreaches and
// /aianalyst/incidentevents, every Config.Interval. Each request is signed
// as Sign describes (headers DTAPI-Token, DTAPI-Date, DTAPI-Signature) and
// asks for the window [checkpoint - Overlap, now], starttime and endtime in
// Unix milliseconds. The query parameters sent besides the window are:
//
//	/modelbreaches               historicmodelonly=true includeacknowledged=true
//	/aianalyst/incidentevents    includeacknowledged=true includeallpinned=false
//
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
// keyed by a hash of its bytes. The memory of keys is bounded: a key is
// forgotten once no later window can return its event (its window ended
// before the next window starts), or when Config.MaxSeen keys are held.
//
// The checkpoint of an endpoint is the end of the last window whose events
// the pipeline confirmed (Producer.FlushWait returned nil); it moves only
// then, together with the de-duplication memory. A failed poll or delivery
// leaves both as they were, so the next round asks for the same window
// again (and more), and delivers what was not confirmed; this is
// at-least-once: an event delivered while the confirmation was lost (say, a
// stop in the middle of FlushWait) is forwarded again. The next window always
// starts Overlap before the end of the last one, so events sharing the last
// millisecond of a window, or written by Darktrace after the poll that
// covered their time, are not lost.
//
// With Config.StateDir set, the checkpoints and the de-duplication memory
// are saved in StateDir/poller-<name>.json (the relay passes the spool
// directory): after every confirmed poll that added keys, after one that
// only moved a checkpoint when the last save is 5s old, and when Run
// returns. A restart resumes from them, catching up in windows of at most
// Config.MaxWindow. Without it, or
// without a saved file, polling starts at now - Interval.
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
//	dtrelay_poller_events_total{input,endpoint}            events forwarded and confirmed
//	dtrelay_poller_duplicates_total{input}                 repeats removed by de-duplication
//	dtrelay_poller_errors_total{input,reason}              failed polls and dropped events, by reason
//	dtrelay_poller_checkpoint_timestamp_seconds{input,endpoint}
//
// Reasons: signature, date, login_redirect, forbidden, unauthorized,
// redirect, http_status, bad_response, too_large, timeout, transport (no
// answer), delivery (FlushWait failed); for events dropped: not_object,
// invalid_event, oversize; dedup_full (keys forgotten early), state (the
// state file could not be read or written).
//
// duplicates_total grows in normal operation: every event inside the overlap
// is seen again by the next poll.
package poller
