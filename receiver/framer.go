package receiver

// DefaultMaxMessageSize is the frame size limit used when a Config or
// NewFramer is given a size of zero or less (DESIGN.md: 256 KiB).
const DefaultMaxMessageSize = 256 << 10

// maxOctetDigits is the longest octet count accepted: `[1-9][0-9]{0,8}`.
const maxOctetDigits = 9

// shrinkScratchAbove is the scratch capacity above which the buffer is
// released once the frame it held is complete, so that an idle connection
// does not pin the memory of one huge frame.
const shrinkScratchAbove = 64 << 10

// FramerStats are counters a Framer accumulates; the caller publishes and
// clears them once per read (see Framer.TakeStats).
type FramerStats struct {
	// Frames is the number of frames handed to the sink.
	Frames uint64
	// Bytes is the number of input bytes consumed.
	Bytes uint64
	// Oversize is the number of frames longer than the limit that were
	// skipped.
	Oversize uint64
	// Truncated is the number of frames cut short by the end of the stream
	// (Framer.End, or an octet count running past the end of a datagram).
	Truncated uint64
}

func (s *FramerStats) add(o FramerStats) {
	s.Frames += o.Frames
	s.Bytes += o.Bytes
	s.Oversize += o.Oversize
	s.Truncated += o.Truncated
}

type framerState uint8

const (
	stateStart    framerState = iota // between frames
	stateCount                       // inside a split octet count ("12" + "3 ")
	stateOctet                       // inside a split octet-counted body
	stateLine                        // inside a split line (ended by LF or NUL)
	stateSkipN                       // skipping the rest of an oversize octet frame
	stateSkipLine                    // discarding an oversize line up to its LF or NUL
)

// Framer holds the framing state of one connection. Its zero value is not
// usable; create it with NewFramer.
//
// A Framer is not safe for concurrent use; it belongs to the goroutine (or
// gnet event loop) that reads its connection. Each frame handed to the sink
// is valid only during the sink's Frame call: it points into the data passed
// to Feed or into the Framer's scratch buffer, which the next Feed reuses.
type Framer struct {
	max     int
	state   framerState
	need    int // bytes still expected (stateOctet) or to skip (stateSkipN)
	count   int // octet count digits seen so far (stateCount)
	digits  int // number of digits in count
	scratch []byte
	stats   FramerStats
}

// NewFramer returns a Framer that accepts frames up to maxMessageSize bytes
// (DefaultMaxMessageSize when maxMessageSize <= 0).
func NewFramer(maxMessageSize int) *Framer {
	f := &Framer{}
	f.Init(maxMessageSize)
	return f
}

// Init (re)initialises f for a new connection with the given frame size
// limit, keeping its scratch buffer if one is allocated.
func (f *Framer) Init(maxMessageSize int) {
	if maxMessageSize <= 0 {
		maxMessageSize = DefaultMaxMessageSize
	}
	*f = Framer{max: maxMessageSize, scratch: f.scratch[:0]}
}

// Reset drops any partial frame and the accumulated stats, keeping the
// limit. Use it when a connection ends and f is reused.
func (f *Framer) Reset() { f.Init(f.max) }

// MaxMessageSize reports the frame size limit.
func (f *Framer) MaxMessageSize() int { return f.max }

// Pending reports whether a partial frame (or the rest of a skipped
// oversize frame) is waiting for more input.
func (f *Framer) Pending() bool { return f.state != stateStart }

// TakeStats returns the counters accumulated since the last call and clears
// them.
func (f *Framer) TakeStats() FramerStats {
	s := f.stats
	f.stats = FramerStats{}
	return s
}

// Feed consumes all of data, handing every complete frame to sink.Frame in
// order and keeping a trailing partial frame for the next call. It never
// calls sink.Flush; the caller does, once per read.
func (f *Framer) Feed(data []byte, sink FrameSink) {
	f.stats.Bytes += uint64(len(data))
	if f.state != stateStart {
		data = f.resume(data, sink)
	}
	for len(data) > 0 {
		data = f.next(data, sink, false)
	}
}

// FeedDatagram frames one self-contained message block, such as a UDP
// datagram: the end of data ends the last frame, so nothing is kept for the
// next call. f must not have a partial frame pending (use a Framer
// dedicated to datagrams); one that is pending is ended first.
func (f *Framer) FeedDatagram(data []byte, sink FrameSink) {
	if f.state != stateStart {
		f.End()
	}
	f.stats.Bytes += uint64(len(data))
	for len(data) > 0 {
		data = f.next(data, sink, true)
	}
}

// End marks the end of the stream. A partial frame still buffered is
// dropped and counted as Truncated (a stream cut mid-frame is not a
// message); f is ready for a new stream afterwards.
func (f *Framer) End() {
	switch f.state {
	case stateOctet, stateLine, stateCount:
		f.stats.Truncated++
	}
	f.state = stateStart
	f.scratch = f.scratch[:0]
	f.releaseScratch()
}

// Finish ends the stream at a clean end of file: the peer closed its side
// after its last byte (not a reset, a timeout or our own close). A last
// line that lacks only its LF or NUL is handed to sink.Tail when sink is a
// TailSink, and is a frame if the sink takes it as a complete message;
// otherwise it is counted Truncated. Every other partial frame (an
// octet-counted frame shorter than its count, a count without its frame)
// is dropped and counted Truncated, as by End. f is ready for a new stream
// afterwards.
func (f *Framer) Finish(sink FrameSink) {
	if f.state == stateLine {
		if ts, ok := sink.(TailSink); ok {
			f.state = stateStart
			if line := trimBlanks(f.scratch); len(line) > 0 {
				if ts.Tail(line) {
					f.stats.Frames++
				} else {
					f.stats.Truncated++
				}
			}
		}
	}
	f.End()
}

// next consumes one frame (or the leading blanks before one) from data and
// returns the rest. When final is false, a frame running past the end of
// data is kept in the scratch buffer and nil is returned.
func (f *Framer) next(data []byte, sink FrameSink, final bool) []byte {
	i := 0
	for i < len(data) && isBlank(data[i]) {
		i++
	}
	data = data[i:]
	if len(data) == 0 {
		return nil
	}
	if c := data[0]; c >= '1' && c <= '9' {
		n, j := 0, 0
		for j < len(data) && j < maxOctetDigits+1 && isDigit(data[j]) {
			n = n*10 + int(data[j]-'0')
			j++
		}
		switch {
		case j == len(data) && j <= maxOctetDigits && !final:
			// The data ends inside what may be an octet count.
			f.state, f.count, f.digits = stateCount, n, j
			return nil
		case j < len(data) && j <= maxOctetDigits && data[j] == ' ':
			return f.octet(data[j+1:], n, sink, final)
		}
	}
	return f.line(data, sink, final)
}

// octet handles an octet-counted frame of n bytes whose body starts at
// data[0].
func (f *Framer) octet(body []byte, n int, sink FrameSink, final bool) []byte {
	if n > f.max {
		f.stats.Oversize++
		if n <= len(body) {
			return body[n:]
		}
		if !final {
			f.state, f.need = stateSkipN, n-len(body)
		}
		return nil
	}
	if n <= len(body) {
		f.emit(body[:n], sink)
		return body[n:]
	}
	if final {
		f.stats.Truncated++
		return nil
	}
	f.state, f.need = stateOctet, n-len(body)
	f.grow(n)
	f.scratch = append(f.scratch[:0], body...)
	return nil
}

// line handles an LF- or NUL-terminated frame starting at data[0].
func (f *Framer) line(data []byte, sink FrameSink, final bool) []byte {
	lf := indexEOL(data)
	if lf >= 0 {
		if lineLen(data[:lf]) > f.max {
			f.stats.Oversize++
		} else {
			f.emit(data[:lf], sink)
		}
		return data[lf+1:]
	}
	switch {
	case final:
		if lineLen(data) > f.max {
			f.stats.Oversize++
		} else {
			f.emit(data, sink)
		}
	case !f.lineFits(len(data), data[len(data)-1]):
		f.stats.Oversize++
		f.state = stateSkipLine
	default:
		f.state = stateLine
		f.grow(len(data))
		f.scratch = append(f.scratch[:0], data...)
	}
	return nil
}

// resume continues the partial frame kept by the previous Feed and returns
// the data left after it.
func (f *Framer) resume(data []byte, sink FrameSink) []byte {
	for len(data) > 0 {
		switch f.state {
		case stateCount:
			data = f.resumeCount(data)
		case stateOctet:
			k := min(f.need, len(data))
			f.scratch = append(f.scratch, data[:k]...)
			f.need -= k
			data = data[k:]
			if f.need == 0 {
				f.state = stateStart
				f.emit(f.scratch, sink)
				f.scratch = f.scratch[:0]
				f.releaseScratch()
			}
		case stateSkipN:
			k := min(f.need, len(data))
			f.need -= k
			data = data[k:]
			if f.need == 0 {
				f.state = stateStart
			}
		case stateLine:
			data = f.resumeLine(data, sink)
		case stateSkipLine:
			lf := indexEOL(data)
			if lf < 0 {
				return nil
			}
			f.state = stateStart
			data = data[lf+1:]
		default:
			return data
		}
		if f.state == stateStart {
			return data
		}
	}
	return data
}

// resumeCount continues a split octet count; it switches to stateOctet,
// stateSkipN, or (when the digits turn out to start a line) stateLine.
func (f *Framer) resumeCount(data []byte) []byte {
	prev, prevDigits := f.count, f.digits
	i := 0
	for i < len(data) && isDigit(data[i]) && f.digits < maxOctetDigits+1 {
		f.count = f.count*10 + int(data[i]-'0')
		f.digits++
		i++
	}
	if i == len(data) && f.digits <= maxOctetDigits {
		return nil // still inside the count
	}
	if f.digits <= maxOctetDigits && data[i] == ' ' {
		n := f.count
		switch {
		case n > f.max:
			f.stats.Oversize++
			f.state, f.need = stateSkipN, n
		default:
			f.state, f.need = stateOctet, n
			f.grow(n)
			f.scratch = f.scratch[:0]
		}
		return data[i+1:]
	}
	// Not a count: the digits begin an ordinary line. Rebuild those of the
	// previous reads (at most nine) into the scratch buffer and go on with
	// the line from the start of data.
	f.state = stateLine
	f.grow(prevDigits)
	f.scratch = appendDigits(f.scratch[:0], prev, prevDigits)
	return data
}

// resumeLine continues a split line. Only the new bytes are scanned and
// appended.
func (f *Framer) resumeLine(data []byte, sink FrameSink) []byte {
	lf := indexEOL(data)
	if lf < 0 {
		if !f.lineFits(len(f.scratch)+len(data), data[len(data)-1]) {
			f.stats.Oversize++
			f.state = stateSkipLine
			f.scratch = f.scratch[:0]
			f.releaseScratch()
			return nil
		}
		f.grow(len(f.scratch) + len(data))
		f.scratch = append(f.scratch, data...)
		return nil
	}
	f.state = stateStart
	part := data[:lf]
	total := len(f.scratch) + len(part)
	if total > 0 && lastByte(f.scratch, part) == '\r' {
		total--
	}
	if total > f.max {
		f.stats.Oversize++
	} else {
		f.grow(len(f.scratch) + len(part))
		f.scratch = append(f.scratch, part...)
		f.emit(f.scratch, sink)
	}
	f.scratch = f.scratch[:0]
	f.releaseScratch()
	return data[lf+1:]
}

// lineFits reports whether a partial line of n bytes ending in last can
// still become a line within the limit (a trailing CR does not count).
func (f *Framer) lineFits(n int, last byte) bool {
	return n <= f.max || (n == f.max+1 && last == '\r')
}

// emit trims blanks around frame and hands it to sink unless it is blank.
func (f *Framer) emit(frame []byte, sink FrameSink) {
	frame = trimBlanks(frame)
	if len(frame) == 0 {
		return
	}
	f.stats.Frames++
	sink.Frame(frame)
}

// grow makes sure the scratch buffer can hold n bytes without reallocating
// in append, never growing it past the limit (plus a CR).
func (f *Framer) grow(n int) {
	if n <= cap(f.scratch) {
		return
	}
	c := max(2*cap(f.scratch), n, 512)
	c = min(c, f.max+1)
	c = max(c, n)
	buf := make([]byte, len(f.scratch), c)
	copy(buf, f.scratch)
	f.scratch = buf
}

// releaseScratch drops an empty scratch buffer that grew for one huge frame.
func (f *Framer) releaseScratch() {
	if len(f.scratch) == 0 && cap(f.scratch) > shrinkScratchAbove {
		f.scratch = nil
	}
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// lineLen is the length of a line without its trailing CR.
func lineLen(b []byte) int {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return n - 1
	}
	return len(b)
}

func lastByte(a, b []byte) byte {
	if len(b) > 0 {
		return b[len(b)-1]
	}
	return a[len(a)-1]
}

func trimBlanks(b []byte) []byte {
	for len(b) > 0 && isBlank(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isBlank(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// appendDigits appends the decimal form of v, which has exactly n digits
// (its leading digit is never zero).
func appendDigits(dst []byte, v, n int) []byte {
	start := len(dst)
	for range n {
		dst = append(dst, 0)
	}
	for i := len(dst) - 1; i >= start; i-- {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
	return dst
}

// Held reports the scratch memory committed to a partial frame: the
// scratch capacity while a frame split across reads is being collected (an
// octet-counted frame reserves its declared size), zero between frames and
// while skipping an oversize one.
func (f *Framer) Held() int {
	if f.state == stateOctet || f.state == stateLine {
		return cap(f.scratch)
	}
	return 0
}
