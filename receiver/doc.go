// Package receiver accepts syslog from Darktrace masters over TCP, UDP and
// TLS and turns the byte stream into frames.
//
// A Framer splits one connection's bytes into frames: a frame that starts
// with `[1-9][0-9]{0,8} ` is octet-counted (RFC 6587), anything else runs to
// the next LF or NUL (non-transparent framing; NUL as syslog-ng accepts it,
// since Python's SysLogHandler ends messages with NUL and no LF); both may be
// mixed on one connection. Frames wholly inside one read are handed to the
// FrameSink straight from the read buffer; only a frame split across reads
// is copied, once, into the Framer's scratch buffer.
//
// Start opens one input: TCP and UDP run on gnet event loops (one per
// GOMAXPROCS), TLS runs on crypto/tls with one goroutine per connection. Both
// paths enforce the same limits (max_message_size, max_connections,
// max_connections_per_source, allow, handshake_timeout, idle_timeout, and the
// process-wide PartialBudget), optionally read a PROXY protocol v1/v2 header
// first (only from trusted_proxies, checked at accept before anything is
// read), and deliver frames to a FrameSink taken from the input's SinkPool
// for the duration of one read.
//
// Trust and slots: a connection's peer is checked when it is accepted, and
// it takes a max_connections slot there, before a byte is read or (TLS) a
// goroutine started. Until its PROXY header is read and its TLS handshake
// done it is "handshaking": one handshake_timeout from the accept bounds
// that phase (a plain tcp connection has none). Until its first complete
// frame it is "frameless": when the cap is reached the oldest frameless
// connection is closed to make room, but time alone never closes it; only
// idle_timeout applies past the handshake, as senders connect ahead of
// their first message. The receiver knows nothing of parsing or forwarding;
// a sink that blocks stops the event loop on purpose (backpressure).
package receiver
