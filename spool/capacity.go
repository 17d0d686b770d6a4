package spool

// Capacity returns the spool's size bound (max_size), the bound of
// Stats().Bytes.
func (s *Spool) Capacity() int64 { return int64(s.opts.MaxSize) }
