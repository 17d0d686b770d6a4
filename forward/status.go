package forward

import "time"

// OutputStatus is a snapshot of one output for the status page: whether
// its last delivery attempt succeeded, its memory queue's fill, the age
// of its oldest pending record, and its last delivery error.
type OutputStatus struct {
	Name          string
	Up            bool
	QueueBytes    int64
	QueueCapacity int64
	OldestPending time.Duration
	// LastError is the text of the last failed delivery attempt (retried
	// or permanent), as the sender returned it: not redacted here (the
	// senders keep secrets out of their errors; the status page redacts
	// again with every configured secret). LastErrorAt is when; both zero
	// while the output never failed. They stay after a success: Up says
	// whether the output works now.
	LastError   string
	LastErrorAt time.Time
}

// lastError is an output's last delivery error.
type lastError struct {
	text string
	at   time.Time
}

// noteError records err as the output's last error: on failed attempts
// only, which back off, so never on the hot path.
func (o *output) noteError(err error) {
	o.lastErr.Store(&lastError{text: err.Error(), at: time.Now()})
}

// OutputStatus returns a snapshot of every output, in the order of
// Options.Outputs. Safe for concurrent use; it reads what the gauges of
// the same names read.
func (p *Pipeline) OutputStatus() []OutputStatus {
	now := time.Now().UnixNano()
	st := make([]OutputStatus, len(p.outputs))
	for i, o := range p.outputs {
		st[i] = OutputStatus{Name: o.Name, Up: !o.down.Load(), QueueBytes: int64(o.q.bytes()), QueueCapacity: int64(o.q.capacity()),
			OldestPending: time.Duration(o.oldestPending(now) * float64(time.Second))}
		if e := o.lastErr.Load(); e != nil {
			st[i].LastError, st[i].LastErrorAt = e.text, e.at
		}
	}
	return st
}
