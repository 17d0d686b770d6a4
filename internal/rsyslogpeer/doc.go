// Package rsyslogpeer runs a real rsyslogd as a peer of dtrelay, for the
// end-to-end tests and for dtbench: a RELP server (imrelp, plain or TLS), a
// plain syslog server (imptcp, or imtcp with TLS), optionally forwarding what
// it receives with omfwd or omrelp instead of writing it to a file.
//
// rsyslog is found where bench/install-peers.sh unpacks it (rsyslogd with
// its module directory holding imrelp.so and omrelp.so, from Debian's
// rsyslog and rsyslog-relp): on PATH, under $DTBENCH_PEERS, then under
// /opt/dtbench-peers. Tests call Require, which skips them with a message
// when it is not installed.
//
// A Server is one rsyslogd configuration in its own directory (config,
// pid file, log, work directory), started with
// `rsyslogd -n -f CONF -i PIDFILE -M MODULES` on 127.0.0.1 and a port chosen
// at the first Start, then stopped (SIGTERM or SIGKILL) and started again on
// the same port, appending to the same output file. The output file holds
// each received message's MSG part (or, with Raw, the whole message as
// received) one per line, control characters unescaped.
//
// By default the main queue is Direct: imrelp answers "rsp 200" only after
// the message was written to the output file (with one write(2) per
// message: the kernel has it, so killing rsyslogd loses nothing it
// acknowledged). A RELP sender that resends what was not acknowledged
// therefore loses nothing across a kill, and the file shows it. QueueMemory
// trades that for speed (dtbench's sink).
//
// A Server's methods are not safe for concurrent use, except Lines, Count,
// Addr and Pid.
package rsyslogpeer
