package bench

import (
	"fmt"
	"strconv"
	"time"
)

// HeaderStyle is the syslog header put in front of each alert.
type HeaderStyle uint8

// Header styles Darktrace sends (DESIGN.md §2).
const (
	// Header3164 is BSD style: "<165>Aug  5 03:34:46 HOST darktrace {json}".
	Header3164 HeaderStyle = iota
	// Header5424 is "<165>1 2022-03-10T10:11:10.123Z HOST darktrace - - - {json}".
	Header5424
)

// ParseHeaderStyle parses "3164"/"rfc3164" or "5424"/"rfc5424".
func ParseHeaderStyle(s string) (HeaderStyle, error) {
	switch s {
	case "3164", "rfc3164":
		return Header3164, nil
	case "5424", "rfc5424":
		return Header5424, nil
	}
	return 0, fmt.Errorf("bench: unknown header style %q (want rfc3164 or rfc5424)", s)
}

func (h HeaderStyle) String() string {
	if h == Header5424 {
		return "rfc5424"
	}
	return "rfc3164"
}

// Framing is how messages are delimited on a stream.
type Framing uint8

// Stream framings (RFC 6587).
const (
	FramingLF    Framing = iota // message, then LF
	FramingOctet                // "LEN SP message"
)

// ParseFraming parses "lf"/"newline" or "octet"/"octet-counting".
func ParseFraming(s string) (Framing, error) {
	switch s {
	case "lf", "newline":
		return FramingLF, nil
	case "octet", "octet-counting":
		return FramingOctet, nil
	}
	return 0, fmt.Errorf("bench: unknown framing %q (want lf or octet-counting)", s)
}

func (f Framing) String() string {
	if f == FramingOctet {
		return "octet-counting"
	}
	return "lf"
}

// Host is the HOSTNAME the generated messages carry.
const Host = "dt-master-01.corp.example.com"

// MessageBuilder renders framed syslog messages. It caches the formatted
// timestamp per second. A MessageBuilder is not safe for concurrent use: keep
// one per connection.
type MessageBuilder struct {
	gen     *Generator
	style   HeaderStyle
	framing Framing // applied by AppendFramed
	scratch []byte
	sec     int64
	stamp   []byte
}

// NewMessageBuilder returns a builder of gen's alerts with the given header
// style and framing.
func NewMessageBuilder(gen *Generator, style HeaderStyle, framing Framing) *MessageBuilder {
	return &MessageBuilder{gen: gen, style: style, framing: framing, sec: -1}
}

// AppendMessage appends the unframed syslog message for alert seq, sent at
// now, to dst.
func (b *MessageBuilder) AppendMessage(dst []byte, seq uint64, now time.Time) []byte {
	t := b.gen.Pick(seq)
	if s := now.Unix(); s != b.sec {
		b.sec = s
		if b.style == Header5424 {
			b.stamp = now.UTC().AppendFormat(b.stamp[:0], "2006-01-02T15:04:05Z")
		} else {
			b.stamp = now.AppendFormat(b.stamp[:0], time.Stamp)
		}
	}
	dst = append(dst, "<165>"...)
	if b.style == Header5424 {
		dst = append(dst, "1 "...)
	}
	dst = append(dst, b.stamp...)
	dst = append(dst, ' ')
	dst = append(dst, Host...)
	dst = append(dst, ' ')
	dst = append(dst, t.Family.App()...)
	if b.style == Header5424 {
		dst = append(dst, " - - -"...)
	}
	dst = append(dst, ' ')
	return t.Append(dst, seq, now.UnixNano())
}

// AppendFramed appends alert seq as one framed message (per the builder's
// framing) to dst.
func (b *MessageBuilder) AppendFramed(dst []byte, seq uint64, now time.Time) []byte {
	if b.framing == FramingLF {
		dst = b.AppendMessage(dst, seq, now)
		return append(dst, '\n')
	}
	b.scratch = b.AppendMessage(b.scratch[:0], seq, now)
	dst = strconv.AppendInt(dst, int64(len(b.scratch)), 10)
	dst = append(dst, ' ')
	return append(dst, b.scratch...)
}
