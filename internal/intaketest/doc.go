// Package intaketest provides in-process mock intakes for tests: a Sekoia.io
// HTTPS intake (NewSekoiaHTTP) and a syslog intake over TCP or TLS
// (NewSyslog), both listening on 127.0.0.1 port 0.
//
// The mocks check what they receive the way the real intakes would (the
// intake key, gzip, the body shape, RFC 5424 with the Sekoia SD element) and
// record the events. A request or message that fails a check is answered
// (HTTP 400/401) or skipped, and recorded as a problem; unless the test
// called AllowProblems, any problem fails the test when it ends. They can
// also be told to misbehave: answer an HTTP status, hang or drop the
// connection for the next N requests, stop reading, stop and restart on the
// same port.
//
// Every method is safe for concurrent use. Each mock stops when its test
// ends (testing.TB.Cleanup).
package intaketest
