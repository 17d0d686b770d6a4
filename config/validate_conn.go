package config

// validateConnLimits checks the connection keys of a tcp or tls input:
// max_connections, max_connections_per_source, handshake_timeout, and
// proxy_protocol with its trusted_proxies.
func (d *decoder) validateConnLimits(in *Input, p string) {
	if in.MaxConnections < 1 {
		d.problemf(p+".max_connections", "must be at least 1, got %d", in.MaxConnections)
	} else if in.MaxConnectionsPerSource >= in.MaxConnections {
		d.warnf(p+".max_connections_per_source", "%d is not below max_connections (%d): it limits nothing",
			in.MaxConnectionsPerSource, in.MaxConnections)
	}
	if in.HandshakeTimeout <= 0 && !d.problemsIn(p+".handshake_timeout") {
		d.problemf(p+".handshake_timeout", "must be positive (it bounds the PROXY header and the TLS handshake), got %s",
			formatDuration(in.HandshakeTimeout))
	}
	switch {
	case in.ProxyProtocol && len(in.TrustedProxies) == 0 && !d.problemsIn(p+".trusted_proxies"):
		// Without it anyone could send a header and claim an allowed source.
		d.problemf(p+".trusted_proxies", "is required with proxy_protocol: true: list the load balancers (CIDRs) allowed to send PROXY headers")
	case !in.ProxyProtocol && len(in.TrustedProxies) > 0:
		d.warnf(p+".trusted_proxies", "has no effect without proxy_protocol: true")
	}
}

// validatePartial checks max_partial_bytes against the stream inputs: one
// frame of the largest max_message_size split across reads must never
// reach the cap, and another connection must have room beside it.
func (d *decoder) validatePartial(c *Config) {
	var largest Size
	for _, in := range c.Inputs {
		if (in.Protocol == ProtocolTCP || in.Protocol == ProtocolTLS) && in.MaxMessageSize <= MaxMessageSize {
			largest = max(largest, in.MaxMessageSize)
		}
	}
	if largest > 0 && c.MaxPartialBytes < 2*largest && !d.problemsIn("max_partial_bytes") {
		d.problemf("max_partial_bytes", "must be at least twice the largest max_message_size of a tcp or tls input (%s), got %s",
			2*largest, c.MaxPartialBytes)
	}
}
