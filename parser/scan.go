package parser

// maxFrameLen is the largest frame Scan looks at: Span offsets are int32.
// Bytes past it are ignored (frames are capped at max_message_size, far
// below this, long before they reach the parser).
const maxFrameLen = 1<<31 - 1

// Scan reads the syslog header of one frame (one message, framing removed)
// into h. It never fails and never allocates: every field of h is a Span
// into frame, so h is only meaningful together with frame and only while
// frame is unchanged. Scan overwrites all of h. It is safe for concurrent
// use (it has no state).
//
// Recognised, in this order (blanks before the header are skipped):
//
//   - RFC 5424: "<PRI>VERSION TIMESTAMP HOST APP PROCID MSGID SD [MSG]",
//     VERSION 1–999, the nil value "-" giving an empty Span, SD "-" or one or
//     more "[...]" elements whose quoted values may hold \" \] \\. Header
//     fields are single-space separated; a frame that ends early leaves the
//     remaining fields (and the payload) empty. Two tolerances: a header
//     field or SD that starts with '{' is taken as the start of MSG (a JSON
//     payload from a sender that dropped fields), and an unterminated SD
//     element is taken as MSG rather than losing the payload.
//   - RFC 3164 as Darktrace sends it: "[<PRI>]Mmm dd hh:mm:ss HOST TAG MSG",
//     day space- or zero-padded (or a single digit), optional ".fraction"
//     after the seconds; an RFC 3339 timestamp ("2022-03-10T10:11:10Z", as
//     rsyslog's forward format writes) is accepted in the same place. TAG is
//     "darktrace" or "darktrace_audit" without colon, or the generic
//     "tag:" / "tag[pid]:" (ProcID gets pid). HOST may be missing when TAG
//     is recognisable as one (ends with ':' or has "[pid]", or is a
//     Darktrace tag followed by the JSON payload).
//   - "<PRI>" with no timestamp: Style3164 with Pri set; a leading tag is
//     taken as above, otherwise the rest is the payload.
//   - No PRI and no timestamp, but a Darktrace tag ("darktrace {json}", as
//     some collectors leave it): Style3164 with only App set.
//
// Anything else, including a PRI above 191 or a malformed PRI, is
// StyleBare with Pri -1 and Payload the whole frame trimmed.
//
// Payload is trimmed of spaces, tabs, CR, LF and NUL at both ends and of a
// UTF-8 byte order mark at its start.
func Scan(frame []byte, h *Header) {
	*h = Header{Pri: -1}
	if len(frame) > maxFrameLen {
		frame = frame[:maxFrameLen]
	}
	i := skipBlanks(frame, 0)
	pri := -1
	if i < len(frame) && frame[i] == '<' {
		p, next, ok := scanPri(frame, i)
		if !ok {
			setBare(frame, h)
			return
		}
		pri, i = p, next
	}
	if pri >= 0 {
		if next, ok := scanVersion(frame, i); ok {
			h.Style = Style5424
			h.Pri = int16(pri)
			scan5424(frame, next, h)
			return
		}
	}
	if scan3164(frame, i, pri, h) {
		h.Style = Style3164
		h.Pri = int16(pri)
		return
	}
	setBare(frame, h)
}

func setBare(frame []byte, h *Header) {
	*h = Header{Pri: -1, Payload: trimPayload(frame, 0, len(frame))}
}

// scanPri reads "<N>" at frame[i] (which is '<'), N 1–3 digits, value ≤ 191.
func scanPri(frame []byte, i int) (pri, next int, ok bool) {
	j := i + 1
	for ; j < len(frame) && j-i <= 4; j++ {
		c := frame[j]
		if c == '>' {
			break
		}
		if c < '0' || c > '9' {
			return 0, 0, false
		}
		pri = pri*10 + int(c-'0')
	}
	n := j - i - 1
	if j >= len(frame) || frame[j] != '>' || n == 0 || n > 3 || pri > 191 {
		return 0, 0, false
	}
	return pri, j + 1, true
}

// scanVersion reads an RFC 5424 VERSION ([1-9][0-9]{0,2}) followed by a
// space and returns the index after the space.
func scanVersion(frame []byte, i int) (int, bool) {
	if i >= len(frame) || frame[i] < '1' || frame[i] > '9' {
		return 0, false
	}
	j := i + 1
	for j < len(frame) && j-i < 3 && isDigit(frame[j]) {
		j++
	}
	if j >= len(frame) || frame[j] != ' ' {
		return 0, false
	}
	return j + 1, true
}

// scan5424 reads the fields after "<PRI>VERSION ".
func scan5424(frame []byte, i int, h *Header) {
	fields := [5]*Span{&h.Timestamp, &h.Host, &h.App, &h.ProcID, &h.MsgID}
	for _, f := range fields {
		if i >= len(frame) {
			return
		}
		if frame[i] == '{' {
			h.Payload = trimPayload(frame, i, len(frame))
			return
		}
		end := tokenEnd(frame, i)
		if !(end == i+1 && frame[i] == '-') {
			*f = span(i, end)
		}
		i = end
		if i >= len(frame) {
			return
		}
		i++ // the single separating space
	}
	if i >= len(frame) {
		return
	}
	switch frame[i] {
	case '-':
		i++
	case '[':
		end, ok := scanSD(frame, i)
		if !ok {
			// Unterminated: keep the bytes as payload rather than lose them.
			h.Payload = trimPayload(frame, i, len(frame))
			return
		}
		h.SD = span(i, end)
		i = end
	}
	// MSG follows a single space; be lenient when the space is missing.
	if i < len(frame) && frame[i] == ' ' {
		i++
	}
	h.Payload = trimPayload(frame, i, len(frame))
}

// scanSD reads one or more SD elements starting at frame[i] == '[' and
// returns the index after the last ']'. Inside a quoted PARAM-VALUE a
// backslash escapes the next byte, so \" \] \\ do not end anything.
func scanSD(frame []byte, i int) (int, bool) {
	for i < len(frame) && frame[i] == '[' {
		i++
		inQuote := false
		closed := false
		for ; i < len(frame); i++ {
			c := frame[i]
			if inQuote {
				switch c {
				case '\\':
					i++
				case '"':
					inQuote = false
				}
				continue
			}
			if c == '"' {
				inQuote = true
			} else if c == ']' {
				closed = true
				break
			}
		}
		if !closed {
			return 0, false
		}
		i++
	}
	return i, true
}

// scan3164 reads a BSD-style header after the optional PRI (pri is -1 when
// there was none). It reports false when the frame does not look like one.
func scan3164(frame []byte, i, pri int, h *Header) bool {
	tsEnd, ok := scanBSDTime(frame, i)
	if !ok {
		tsEnd, ok = scanRFC3339Token(frame, i)
	}
	if !ok {
		if pri < 0 {
			if !isDarktraceTagAt(frame, i) {
				return false
			}
			scanTag(frame, i, h)
			return true
		}
		// PRI but no timestamp: an optional tag, then the message.
		if i < len(frame) && frame[i] != '{' && (isTagAt(frame, i) || isDarktraceTagAt(frame, i)) {
			scanTag(frame, i, h)
			return true
		}
		h.Payload = trimPayload(frame, i, len(frame))
		return true
	}
	h.Timestamp = span(i, tsEnd)
	i = skipSpaces(frame, tsEnd)
	if i >= len(frame) {
		return true
	}
	if frame[i] == '{' {
		h.Payload = trimPayload(frame, i, len(frame))
		return true
	}
	if isTagAt(frame, i) {
		scanTag(frame, i, h)
		return true
	}
	hostEnd := tokenEnd(frame, i)
	next := skipSpaces(frame, hostEnd)
	if next < len(frame) && frame[next] == '{' && isDarktraceTagAt(frame, i) {
		// "TIMESTAMP darktrace {json}": no HOST, the token is the tag.
		scanTag(frame, i, h)
		return true
	}
	h.Host = span(i, hostEnd)
	if next >= len(frame) {
		return true
	}
	if frame[next] == '{' {
		h.Payload = trimPayload(frame, next, len(frame))
		return true
	}
	scanTag(frame, next, h)
	return true
}

// scanTag reads TAG, optional "[PROCID]", optional ':' and the message.
func scanTag(frame []byte, i int, h *Header) {
	j := i
	for j < len(frame) && frame[j] != ' ' && frame[j] != ':' && frame[j] != '[' {
		j++
	}
	h.App = span(i, j)
	if j < len(frame) && frame[j] == '[' {
		k := j + 1
		for k < len(frame) && frame[k] != ']' && frame[k] != ' ' {
			k++
		}
		h.ProcID = span(j+1, k)
		j = k
		if j < len(frame) && frame[j] == ']' {
			j++
		}
	}
	if j < len(frame) && frame[j] == ':' {
		j++
	}
	h.Payload = trimPayload(frame, j, len(frame))
}

// isTagAt reports whether the token at frame[i] is unmistakably a 3164 TAG
// rather than a HOST: "tag:" followed by a space, '{' or the end, or
// "tag[pid]" (an IPv6 address such as "fe80::1" is not taken for a tag).
func isTagAt(frame []byte, i int) bool {
	j := i
	for j < len(frame) && frame[j] != ' ' && frame[j] != ':' && frame[j] != '[' {
		j++
	}
	if j == i || j >= len(frame) {
		return false
	}
	switch frame[j] {
	case ':':
		return j+1 == len(frame) || frame[j+1] == ' ' || frame[j+1] == '{'
	case '[':
		for k := j + 1; k < len(frame) && frame[k] != ' '; k++ {
			if frame[k] == ']' {
				return true
			}
		}
	}
	return false
}

const (
	tagDarktrace      = "darktrace"
	tagDarktraceAudit = "darktrace_audit"
)

// isDarktraceTagAt reports whether frame[i:] starts with a Darktrace tag
// followed by a space, ':' or the end.
func isDarktraceTagAt(frame []byte, i int) bool {
	rest := frame[i:]
	for _, t := range [2]string{tagDarktraceAudit, tagDarktrace} {
		if len(rest) >= len(t) && string(rest[:len(t)]) == t {
			return len(rest) == len(t) || rest[len(t)] == ' ' || rest[len(t)] == ':'
		}
	}
	return false
}

// monthNames packs the three-letter month names, lower case.
const monthNames = "janfebmaraprmayjunjulaugsepoctnovdec"

// scanBSDTime reads "Mmm dd hh:mm:ss[.frac]" at frame[i]; the day may be
// " d", "dd" or "d". It returns the index after the timestamp, which must
// be followed by a space or the end of the frame.
func scanBSDTime(frame []byte, i int) (int, bool) {
	if len(frame)-i < len("Mmm d hh:mm:ss") || !isMonth(frame[i:i+3]) || frame[i+3] != ' ' {
		return 0, false
	}
	j := i + 4
	switch {
	case frame[j] == ' ' && isDigit(frame[j+1]):
		j += 2
	case isDigit(frame[j]) && isDigit(frame[j+1]):
		j += 2
	case isDigit(frame[j]):
		j++
	default:
		return 0, false
	}
	if len(frame)-j < len(" hh:mm:ss") || frame[j] != ' ' {
		return 0, false
	}
	t := frame[j+1 : j+9]
	if !isDigit(t[0]) || !isDigit(t[1]) || t[2] != ':' || !isDigit(t[3]) || !isDigit(t[4]) ||
		t[5] != ':' || !isDigit(t[6]) || !isDigit(t[7]) {
		return 0, false
	}
	j += 9
	if j+1 < len(frame) && frame[j] == '.' && isDigit(frame[j+1]) {
		j += 2
		for j < len(frame) && isDigit(frame[j]) {
			j++
		}
	}
	if j < len(frame) && frame[j] != ' ' {
		return 0, false
	}
	return j, true
}

func isMonth(b []byte) bool {
	c0, c1, c2 := b[0]|0x20, b[1]|0x20, b[2]|0x20
	for k := 0; k < len(monthNames); k += 3 {
		if monthNames[k] == c0 && monthNames[k+1] == c1 && monthNames[k+2] == c2 {
			return true
		}
	}
	return false
}

// scanRFC3339Token reads a token starting "YYYY-MM-DDT" (an RFC 3339
// timestamp in a BSD-style header) and returns the index after it.
func scanRFC3339Token(frame []byte, i int) (int, bool) {
	if len(frame)-i < len("YYYY-MM-DDThh:mm:ss") {
		return 0, false
	}
	d := frame[i:]
	if !isDigit(d[0]) || !isDigit(d[1]) || !isDigit(d[2]) || !isDigit(d[3]) || d[4] != '-' ||
		!isDigit(d[5]) || !isDigit(d[6]) || d[7] != '-' || !isDigit(d[8]) || !isDigit(d[9]) || d[10] != 'T' {
		return 0, false
	}
	return tokenEnd(frame, i), true
}

// tokenEnd returns the index of the first space at or after i, or len(frame).
func tokenEnd(frame []byte, i int) int {
	for i < len(frame) && frame[i] != ' ' {
		i++
	}
	return i
}

func skipSpaces(frame []byte, i int) int {
	for i < len(frame) && frame[i] == ' ' {
		i++
	}
	return i
}

func skipBlanks(frame []byte, i int) int {
	for i < len(frame) && isBlank(frame[i]) {
		i++
	}
	return i
}

// trimPayload returns frame[i:end] as a Span without surrounding blanks and
// without leading UTF-8 byte order marks.
func trimPayload(frame []byte, i, end int) Span {
	for i < end {
		if isBlank(frame[i]) {
			i++
		} else if end-i >= 3 && frame[i] == 0xEF && frame[i+1] == 0xBB && frame[i+2] == 0xBF {
			i += 3
		} else {
			break
		}
	}
	for end > i && isBlank(frame[end-1]) {
		end--
	}
	return span(i, end)
}

// isBlank reports whether c is trimmed around a payload: space, tab, CR, LF,
// or NUL (some senders end each message with one).
func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == 0 }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func span(start, end int) Span { return Span{Start: int32(start), End: int32(end)} }
