// Package bench is dtrelay's load-benchmark harness: it generates
// Darktrace-shaped alerts, sends them to a relay over syslog, plays the SIEM
// intake the relay forwards to, and measures what arrives.
//
// The pieces, each usable on its own:
//
//   - Generator builds unique alerts of every Darktrace family at a chosen
//     size and mix. Each alert's JSON starts with "dtbench_seq" (a run-unique
//     sequence number) and "dtbench_ts" (its send time, Unix nanoseconds), so
//     the sink finds both without a full parse and latency is end to end.
//   - Send writes those alerts, syslog-framed, over N TCP or TLS connections
//     or UDP, at a fixed rate or as fast as the relay takes them, for a count
//     or a duration.
//   - SyslogSink (TCP or TLS, octet-counted or LF) and HTTPSink (Sekoia
//     /plain/batch and /batch, gzip or not) account every alert they receive
//     in a Tally: received, bytes, duplicates, missing ids, and a latency
//     Histogram (p50, p99, p99.9) that costs no allocation per alert.
//   - Relay drivers (dtrelay, rsyslog, syslog-ng) write a relay's config in a
//     temporary directory, start it, wait for its input to accept, and stop
//     it; ProcSampler reads the relay's CPU time and RSS from /proc.
//   - Compare runs the same load through each relay, interleaved over rounds,
//     and reduces the rounds to medians; WriteResults and WriteReport write
//     results.json and report.html (inline SVG charts).
//
// Loss is a failure: Compare's result reports every scenario in which a relay
// under test lost alerts, and cmd/dtbench exits non-zero on it.
package bench
