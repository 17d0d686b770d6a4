// Package receiver accepts syslog from Darktrace masters over TCP, UDP and
// TLS and turns the byte stream into frames.
//
// A Framer splits one connection's bytes into frames: a frame that starts
// with `[1-9][0-9]{0,8} ` is octet-counted (RFC 6587), anything else runs to
// the next LF; both may be mixed on one connection. Frames wholly inside one
// read are handed to the FrameSink straight from the read buffer; only a
// frame split across reads is copied, once, into the Framer's scratch buffer.
//
// Start opens one input: TCP and UDP run on gnet event loops (one per
// GOMAXPROCS), TLS runs on crypto/tls with one goroutine per connection. Both
// paths enforce the same limits (max_message_size, max_connections, allow,
// idle_timeout), optionally read a PROXY protocol v1/v2 header first, and
// deliver frames to a FrameSink taken from the input's SinkPool for the
// duration of one read. The receiver knows nothing of parsing or forwarding;
// a sink that blocks stops the event loop on purpose (backpressure).
package receiver
