// Package output holds dtrelay's outputs: the encoders and senders that
// implement package forward's Encoder and Sender seams for each output
// type, so that the pipeline in forward never meets a wire format.
//
//   - Encoders (enc_*.go): NDJSONEncoder (generic http, sekoia-http
//     /plain/batch, the file output), SekoiaBatchEncoder (sekoia-http
//     /batch) and SyslogEncoder (RFC 5424, Sekoia's structured data, or the
//     line as received; octet-counted or newline framing).
//   - Senders (send_*.go, file.go): SekoiaHTTPSender and HTTPSender over a
//     shared HTTPS core (status classes, Retry-After, 413/400 halving,
//     redirects never followed), SyslogSender over TCP or TLS (delivery
//     counted once the peer's TCP stack acknowledged the bytes, SIOCOUTQ on
//     Linux), and FileSender (append-only, symbolic links refused).
//   - TLSClientConfig, the client side of an output's TLS connection; its
//     ca_file adds to the system roots (internal/tlsfiles).
//
// Each encoder and sender is used by its output's one batcher goroutine
// (forward.Sender's contract); what a sender logs or counts never carries
// the output's secrets (internal/secret).
package output
