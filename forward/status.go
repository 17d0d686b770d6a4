package forward

import "time"

// OutputStatus is a snapshot of one output for the status page: whether
// its last delivery attempt succeeded, its memory queue's fill and the age
// of its oldest pending record.
type OutputStatus struct {
	Name          string
	Up            bool
	QueueBytes    int64
	QueueCapacity int64
	OldestPending time.Duration
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
	}
	return st
}
