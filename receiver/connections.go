package receiver

// Connections returns the input's open connections now (the
// dtrelay_input_connections gauge).
func (m *Metrics) Connections() int { return int(m.connections.Get()) }
