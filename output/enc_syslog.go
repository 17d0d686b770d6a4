package output

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/internal/jsonenc"
)

// SekoiaMaxEvent is the largest payload, in bytes, that Sekoia.io accepts;
// Sekoia outputs skip larger events with ErrSkipOversize (DESIGN.md §4).
const SekoiaMaxEvent = 250_000

// DefaultPri is the PRI written by the syslog formats when the received
// message had none: 165, local4.notice, what Darktrace sends.
const DefaultPri = 165

// Syslog formats (SyslogEncoderConfig.Format).
const (
	FormatSekoia   = "sekoia"   // RFC 5424 with the Sekoia intake key SD element
	FormatRFC5424  = "rfc5424"  // RFC 5424 without structured data
	FormatOriginal = "original" // the message as received
)

// Syslog framings (SyslogEncoderConfig.Framing).
const (
	FramingOctetCounting = "octet-counting" // RFC 6587 "LEN SP MSG"
	FramingNewline       = "newline"        // "MSG LF"
)

// sekoiaSDID is the SD-ID under which Sekoia's syslog intake reads the key.
const sekoiaSDID = "SEKOIA@53288"

// Longest RFC 5424 HOSTNAME and APP-NAME (RFC 5424 §6).
const (
	maxHostLen = 255
	maxAppLen  = 48
)

// SyslogEncoderConfig configures a syslog output's wire format.
type SyslogEncoderConfig struct {
	// Format: FormatSekoia, FormatRFC5424 or FormatOriginal; empty means
	// FormatSekoia when IntakeKey is set, else FormatOriginal.
	Format string
	// Framing: FramingOctetCounting (the default when empty) or FramingNewline.
	Framing string
	// IntakeKey is the Sekoia intake key; required by FormatSekoia, ignored
	// otherwise. It is written into every message and nowhere else.
	IntakeKey string
}

// SyslogEncoder writes records as syslog messages, framed. The framing is
// applied here, not by the sender, so that a Batch's Data is exactly the
// bytes to write to the socket (one write per batch, no copy).
//
// FormatSekoia writes
//
//	<PRI>1 TIMESTAMP HOST APP - LOG [SEKOIA@53288 intake_key="KEY"] PAYLOAD
//
// and FormatRFC5424 the same with "-" for the structured data. PRI is the
// received PRI, or DefaultPri when the message had none. TIMESTAMP is the
// received RFC 5424 timestamp when there was one (and it looks like one),
// else the reception time as RFC 3339 UTC with milliseconds
// ("2006-01-02T15:04:05.000Z"). HOST and APP are the received HOSTNAME and
// APP-NAME/TAG, "-" when absent, with bytes outside printable US-ASCII
// replaced by '_' and cut to RFC 5424's lengths. The payload is written byte
// for byte. FormatOriginal writes Record.Raw as received and is the only
// format that carries NotJSON records; the others return ErrSkipNotJSON for
// them. FormatSekoia returns ErrSkipOversize for a payload over
// SekoiaMaxEvent bytes.
//
// With FramingNewline an LF inside the message would split it in two at the
// intake, so each LF of the payload (or of Raw) is written as a space. In a
// JSON payload an LF can only be whitespace between tokens (JSON strings
// cannot hold a raw control character), so the JSON value is unchanged;
// Darktrace never sends one anyway. Octet-counting writes every byte as is.
//
// A SyslogEncoder is used by one goroutine (it caches the formatted second
// of the last reception time); Append allocates nothing beyond growing dst.
type SyslogEncoder struct {
	format  string
	newline bool
	sd      []byte // "[SEKOIA@53288 intake_key=\"...\"]" or "-"
	ts      tsCache
}

// NewSyslogEncoder returns an encoder for cfg, or an error naming the
// invalid setting.
func NewSyslogEncoder(cfg SyslogEncoderConfig) (*SyslogEncoder, error) {
	e := &SyslogEncoder{format: cfg.Format, sd: []byte("-")}
	if e.format == "" {
		e.format = FormatOriginal
		if cfg.IntakeKey != "" {
			e.format = FormatSekoia
		}
	}
	switch e.format {
	case FormatSekoia:
		if cfg.IntakeKey == "" {
			return nil, fmt.Errorf("forward: format %q needs an intake_key", FormatSekoia)
		}
		e.sd = appendSekoiaSD(nil, cfg.IntakeKey)
	case FormatRFC5424, FormatOriginal:
	default:
		return nil, fmt.Errorf("forward: unknown syslog format %q (want sekoia, rfc5424 or original)", cfg.Format)
	}
	switch cfg.Framing {
	case "", FramingOctetCounting:
	case FramingNewline:
		e.newline = true
	default:
		return nil, fmt.Errorf("forward: unknown framing %q (want octet-counting or newline)", cfg.Framing)
	}
	return e, nil
}

// appendSekoiaSD appends the SD element carrying key, escaped as an RFC 5424
// PARAM-VALUE: '"', '\' and ']' are preceded by a backslash.
func appendSekoiaSD(dst []byte, key string) []byte {
	dst = append(dst, "["+sekoiaSDID+` intake_key="`...)
	for i := 0; i < len(key); i++ {
		switch c := key[i]; c {
		case '"', '\\', ']':
			dst = append(dst, '\\', c)
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, `"]`...)
}

// Append implements Encoder.
func (e *SyslogEncoder) Append(dst []byte, r *forward.Record) ([]byte, error) {
	if e.format == FormatOriginal {
		if e.newline {
			return append(jsonenc.AppendNoLF(dst, r.Raw), '\n'), nil
		}
		dst = strconv.AppendInt(dst, int64(len(r.Raw)), 10)
		dst = append(dst, ' ')
		return append(dst, r.Raw...), nil
	}
	if r.NotJSON {
		return dst, forward.ErrSkipNotJSON
	}
	if e.format == FormatSekoia && len(r.Payload) > SekoiaMaxEvent {
		return dst, forward.ErrSkipOversize
	}
	pri := int(r.Pri)
	if pri < 0 || pri > 191 {
		pri = DefaultPri
	}
	tsOK := validTimestamp(r.Timestamp)
	if e.newline {
		dst = e.appendHeader(dst, r, pri, tsOK)
		return append(jsonenc.AppendNoLF(dst, r.Payload), '\n'), nil
	}
	dst = strconv.AppendInt(dst, int64(e.headerLen(r, pri, tsOK)+len(r.Payload)), 10)
	dst = append(dst, ' ')
	dst = e.appendHeader(dst, r, pri, tsOK)
	return append(dst, r.Payload...), nil
}

// appendSplit is Append with the payload (Raw for FormatOriginal) left
// out of dst and returned as body, for octet-counting framing only (with
// FramingNewline the payload's LFs are rewritten, so it is not a byte range
// of the record): dst gets "LEN SP" and the header.
func (e *SyslogEncoder) appendSplit(dst []byte, r *forward.Record) (head, body []byte, err error) {
	if e.newline {
		return dst, nil, errors.New("output: AppendSplit needs octet-counting framing")
	}
	if e.format == FormatOriginal {
		dst = strconv.AppendInt(dst, int64(len(r.Raw)), 10)
		return append(dst, ' '), r.Raw, nil
	}
	if r.NotJSON {
		return dst, nil, forward.ErrSkipNotJSON
	}
	if e.format == FormatSekoia && len(r.Payload) > SekoiaMaxEvent {
		return dst, nil, forward.ErrSkipOversize
	}
	pri := int(r.Pri)
	if pri < 0 || pri > 191 {
		pri = DefaultPri
	}
	tsOK := validTimestamp(r.Timestamp)
	dst = strconv.AppendInt(dst, int64(e.headerLen(r, pri, tsOK)+len(r.Payload)), 10)
	dst = append(dst, ' ')
	return e.appendHeader(dst, r, pri, tsOK), r.Payload, nil
}

// splitSyslogEncoder is the SyslogEncoder of a plain-TCP output with
// octet-counting: a forward.SplitEncoder, so that its batches are vectored
// and the payloads go from their blocks to the socket with one writev
// (SyslogSender.Send), not copied into the batch first. TLS gains nothing
// from it (crypto/tls copies each record anyway; small writes would make
// small records).
type splitSyslogEncoder struct{ *SyslogEncoder }

// AppendSplit implements forward.SplitEncoder.
func (e splitSyslogEncoder) AppendSplit(dst []byte, r *forward.Record) (head, body []byte, err error) {
	return e.appendSplit(dst, r)
}

var _ forward.SplitEncoder = splitSyslogEncoder{}

// headerLen returns the length of what appendHeader appends, so that the
// octet count can be written first, without a scratch copy of the message.
func (e *SyslogEncoder) headerLen(r *forward.Record, pri int, tsOK bool) int {
	n := len("<1>1 ") + len(" ") + len(" ") + len(" - LOG ") + len(e.sd) + len(" ")
	switch {
	case pri >= 100:
		n += 2
	case pri >= 10:
		n++
	}
	if tsOK {
		n += len(r.Timestamp)
	} else {
		n += len("2006-01-02T15:04:05.000Z")
	}
	return n + tokenLen(r.Host, maxHostLen) + tokenLen(r.App, maxAppLen)
}

// appendHeader appends "<PRI>1 TIMESTAMP HOST APP - LOG SD " for r.
func (e *SyslogEncoder) appendHeader(dst []byte, r *forward.Record, pri int, tsOK bool) []byte {
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(pri), 10)
	dst = append(dst, ">1 "...)
	if tsOK {
		dst = append(dst, r.Timestamp...)
	} else {
		dst = e.ts.append(dst, r.Received)
	}
	dst = append(dst, ' ')
	dst = appendHeaderToken(dst, r.Host, maxHostLen)
	dst = append(dst, ' ')
	dst = appendHeaderToken(dst, r.App, maxAppLen)
	dst = append(dst, " - LOG "...)
	dst = append(dst, e.sd...)
	return append(dst, ' ')
}

// validTimestamp reports whether ts can be written as an RFC 5424 TIMESTAMP:
// 20 to 32 bytes ("2022-03-10T10:11:10Z" to "...T10:11:10.123456+00:00") of
// digits and the punctuation of a date-time. A received timestamp that does
// not pass is replaced by the reception time.
func validTimestamp(ts []byte) bool {
	if len(ts) < 20 || len(ts) > 32 || ts[4] != '-' || ts[10] != 'T' {
		return false
	}
	for _, c := range ts {
		switch {
		case c >= '0' && c <= '9', c == '-', c == ':', c == '.', c == '+', c == 'T', c == 'Z':
		default:
			return false
		}
	}
	return true
}

// tokenLen returns the length appendHeaderToken writes for tok.
func tokenLen(tok []byte, limit int) int {
	return min(max(len(tok), 1), limit)
}

// appendHeaderToken appends tok as an RFC 5424 header field: "-" when empty,
// at most limit bytes, bytes outside printable US-ASCII (33..126) as '_'.
func appendHeaderToken(dst, tok []byte, limit int) []byte {
	if len(tok) == 0 {
		return append(dst, '-')
	}
	if len(tok) > limit {
		tok = tok[:limit]
	}
	for _, c := range tok {
		if c < 33 || c > 126 {
			c = '_'
		}
		dst = append(dst, c)
	}
	return dst
}

// tsCache formats reception times as RFC 3339 UTC with milliseconds,
// re-formatting the date and time of day only when the second changes.
type tsCache struct {
	sec int64
	ok  bool
	buf [19]byte // "2006-01-02T15:04:05"
}

// append appends ns (Unix nanoseconds) as "2006-01-02T15:04:05.000Z".
func (c *tsCache) append(dst []byte, ns int64) []byte {
	sec, frac := ns/1e9, ns%1e9
	if frac < 0 {
		sec, frac = sec-1, frac+1e9
	}
	if !c.ok || sec != c.sec {
		// Years 1678..2262 (the int64 nanosecond range) have four digits,
		// so the layout always fills buf exactly.
		time.Unix(sec, 0).UTC().AppendFormat(c.buf[:0], "2006-01-02T15:04:05")
		c.sec, c.ok = sec, true
	}
	ms := frac / 1e6
	dst = append(dst, c.buf[:]...)
	return append(dst, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}
