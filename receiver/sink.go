package receiver

import "net/netip"

// FrameSink consumes the complete frames of one read. A frame is one syslog
// message without its framing (no octet count, no trailing LF or NUL; a
// trailing CR is already removed). It may be empty of content but is never a
// zero-length slice; blank frames are dropped by the framer.
//
// The bytes passed to Frame are only valid during the call: they point into
// the event loop's read buffer or the connection's scratch buffer, both
// reused by the next read. Frame must copy what it keeps.
//
// A FrameSink is used by one goroutine at a time. Frame and Flush may block
// (backpressure) until there is room downstream or the pipeline stops.
type FrameSink interface {
	// Frame handles one frame.
	Frame(frame []byte)
	// Flush is called after the last frame of one read (one OnTraffic call,
	// one TLS Read, one datagram); it publishes what Frame queued.
	Flush()
}

// SinkPool hands out FrameSinks for the duration of one read. Get and Put are
// safe for concurrent use; a sink obtained by Get is owned by the caller until
// it is given back with Put.
type SinkPool interface {
	Get() FrameSink
	Put(FrameSink)
}

// A TailSink is a FrameSink that can judge the last line of a stream that
// ended cleanly without the LF or NUL that would have ended it (`printf
// '<165>… {json}' | nc`). The framer cannot tell such a line from one cut
// short; the sink, which parses messages, can.
type TailSink interface {
	FrameSink
	// Tail handles frame as Frame would and reports true if it is a
	// complete message (its parser accepts it whole); otherwise it keeps
	// nothing of it and reports false, and the frame is counted truncated.
	// frame is valid only during the call.
	Tail(frame []byte) bool
}

// A PeerPool is a SinkPool that is told where each read came from: Get is
// replaced by GetFrom with the read's remote address (the TCP or TLS peer,
// the source a PROXY header named, or the datagram's sender).
type PeerPool interface {
	SinkPool
	GetFrom(remote netip.AddrPort) FrameSink
}

// ConnObserver is told of the connections of a tcp or tls input: Opened
// once a connection is admitted and its source is known (after the PROXY
// header with proxy_protocol; after the TLS handshake for tls), Closed when
// it ends, with the same address, once for each Opened. Both are called
// on the connection's event loop or goroutine and must be quick.
type ConnObserver interface {
	Opened(remote netip.AddrPort)
	Closed(remote netip.AddrPort)
}

// getSink takes a sink for a read from remote.
func (cm *common) getSink(remote netip.AddrPort) FrameSink {
	if cm.peers != nil {
		return cm.peers.GetFrom(remote)
	}
	return cm.pool.Get()
}

func (cm *common) connOpened(remote netip.AddrPort) {
	if cm.cfg.Conns != nil {
		cm.cfg.Conns.Opened(remote)
	}
}

func (cm *common) connClosed(remote netip.AddrPort) {
	if cm.cfg.Conns != nil {
		cm.cfg.Conns.Closed(remote)
	}
}
