// Package relp holds the wire format of RELP, the Reliable Event Logging
// Protocol of rsyslog's librelp (doc/relp.md there): reading frames,
// writing them, the status of a response and the offers of an open. It
// holds no connection and no session state: output.RelpSender drives the
// session over its own connection.
//
// A frame is
//
//	TXNR SP COMMAND SP DATALEN [SP DATA] LF
//
// with TXNR 1 to 9 digits (0 only for a server's hints, such as
// "serverclose"), COMMAND 1 to 32 ASCII letters, DATALEN 1 to 9 digits and
// DATA exactly DATALEN octets, absent when DATALEN is 0. A librelp server
// checks that a session's transaction numbers go up by one from the open
// (1), wrapping after MaxTxnr to 1, and answers every command with an
// "rsp" frame of the same number whose DATA is "CODE[ SP TEXT][LF BODY]":
// 200 for success, anything else an error.
package relp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// MaxTxnr is the largest transaction number; the next one is 1.
const MaxTxnr = 999_999_999

// MaxCommand is the longest command name.
const MaxCommand = 32

// Commands and hints this package's users exchange.
const (
	CmdOpen        = "open"
	CmdSyslog      = "syslog"
	CmdClose       = "close"
	CmdRsp         = "rsp"
	CmdServerclose = "serverclose" // a server's hint, TXNR 0: it closes the session
)

// ErrFrame is wrapped by every error about a malformed frame.
var ErrFrame = errors.New("relp: malformed frame")

// NextTxnr returns the transaction number after t.
func NextTxnr(t int) int {
	if t >= MaxTxnr {
		return 1
	}
	return t + 1
}

// Frame is one frame read by Reader.Read. Command and Data point into the
// Reader's buffers and are valid until the next Read.
type Frame struct {
	Txnr    int
	Command []byte
	Data    []byte
}

// Is reports whether the frame's command is cmd.
func (f *Frame) Is(cmd string) bool { return string(f.Command) == cmd }

// Reader reads frames from a peer, allocating nothing once its data buffer
// has grown to the largest frame read.
type Reader struct {
	br      *bufio.Reader
	maxData int
	cmd     [MaxCommand]byte
	data    []byte
}

// NewReader returns a Reader over r that refuses frames whose DATA is
// longer than maxData octets.
func NewReader(r io.Reader, maxData int) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 4096), maxData: maxData}
}

// Buffered returns how many bytes have been read from the peer and not yet
// returned in a frame: more than zero means Read may return without
// waiting for the peer (unless they end within a frame).
func (r *Reader) Buffered() int { return r.br.Buffered() }

// Read reads the next frame into f. It returns io.EOF when the peer ended
// the stream between frames, io.ErrUnexpectedEOF within one, an error
// wrapping ErrFrame for a frame that breaks the format, or the underlying
// reader's error.
func (r *Reader) Read(f *Frame) error {
	txnr, c, err := r.number("TXNR", true)
	if err != nil {
		return err
	}
	if c != ' ' {
		return fmt.Errorf("%w: %q after the transaction number", ErrFrame, c)
	}
	n := 0
	for {
		c, err := r.byte()
		if err != nil {
			return err
		}
		if c == ' ' && n > 0 {
			break
		}
		if !isAlpha(c) || n == MaxCommand {
			return fmt.Errorf("%w: command is not 1 to %d letters", ErrFrame, MaxCommand)
		}
		r.cmd[n] = c
		n++
	}
	size, c, err := r.number("DATALEN", false)
	if err != nil {
		return err
	}
	switch {
	case size == 0:
		// No data: the trailer follows the length at once.
	case c != ' ':
		return fmt.Errorf("%w: %q after the data length", ErrFrame, c)
	case size > r.maxData:
		return fmt.Errorf("%w: %d octets of data, more than the %d accepted", ErrFrame, size, r.maxData)
	default:
		if cap(r.data) < size {
			r.data = make([]byte, size)
		}
		r.data = r.data[:size]
		if _, err := io.ReadFull(r.br, r.data); err != nil {
			return unexpected(err)
		}
		if c, err = r.byte(); err != nil {
			return err
		}
	}
	if c != '\n' {
		return fmt.Errorf("%w: %q where the trailer (LF) belongs", ErrFrame, c)
	}
	f.Txnr, f.Command, f.Data = txnr, r.cmd[:n], r.data[:size]
	return nil
}

// number reads 1 to 9 digits and returns their value and the byte after
// them. first: the number begins the frame, where EOF is a clean end.
func (r *Reader) number(what string, first bool) (v int, next byte, err error) {
	n := 0
	for {
		c, err := r.br.ReadByte()
		if err != nil {
			if first && n == 0 && errors.Is(err, io.EOF) {
				return 0, 0, io.EOF
			}
			return 0, 0, unexpected(err)
		}
		if c < '0' || c > '9' {
			if n == 0 {
				return 0, 0, fmt.Errorf("%w: %s is not a number", ErrFrame, what)
			}
			return v, c, nil
		}
		if n == 9 {
			return 0, 0, fmt.Errorf("%w: %s has more than 9 digits", ErrFrame, what)
		}
		v = v*10 + int(c-'0')
		n++
	}
}

// byte reads one byte within a frame.
func (r *Reader) byte() (byte, error) {
	c, err := r.br.ReadByte()
	if err != nil {
		return 0, unexpected(err)
	}
	return c, nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func isAlpha(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

// AppendFrame appends the frame TXNR COMMAND DATA to dst.
func AppendFrame(dst []byte, txnr int, cmd string, data []byte) []byte {
	dst = strconv.AppendInt(dst, int64(txnr), 10)
	dst = append(dst, ' ')
	dst = append(dst, cmd...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(len(data)), 10)
	if len(data) > 0 {
		dst = append(dst, ' ')
		dst = append(dst, data...)
	}
	return append(dst, '\n')
}

// AppendSyslog appends the "syslog" frame numbered txnr whose DATALEN SP
// DATA is counted: an RFC 6587 octet-counted message, "LEN SP MSG", which
// has exactly that shape. It lets an octet-counting encoder's output be
// framed without being measured or copied twice.
func AppendSyslog(dst []byte, txnr int, counted []byte) []byte {
	dst = strconv.AppendInt(dst, int64(txnr), 10)
	dst = append(dst, " "+CmdSyslog+" "...)
	dst = append(dst, counted...)
	return append(dst, '\n')
}

// Response is the DATA of an "rsp" frame: a status code, the human text
// after it, and the body on the lines after that (an open's offers).
type Response struct {
	Code int
	Text []byte
	Body []byte
}

// OK reports whether the response is a success (200).
func (r *Response) OK() bool { return r.Code == 200 }

// ParseResponse parses an "rsp" frame's DATA, "CODE[ SP TEXT][LF BODY]"
// with CODE three digits. Text and Body point into data.
func ParseResponse(data []byte) (Response, error) {
	if len(data) < 3 || !isDigit(data[0]) || !isDigit(data[1]) || !isDigit(data[2]) ||
		(len(data) > 3 && data[3] != ' ' && data[3] != '\n') {
		return Response{}, fmt.Errorf("%w: response %q does not begin with a 3-digit status", ErrFrame, clip(data))
	}
	rsp := Response{Code: int(data[0]-'0')*100 + int(data[1]-'0')*10 + int(data[2]-'0')}
	rest := data[3:]
	if len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	}
	if i := bytes.IndexByte(rest, '\n'); i >= 0 {
		rsp.Text, rsp.Body = rest[:i], rest[i+1:]
	} else {
		rsp.Text = rest
	}
	return rsp, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// clip returns at most the first 64 bytes of b, for an error message.
func clip(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// Offers is the body of an open command or of its response: one offer per
// line, "NAME" or "NAME=VALUE[,VALUE...]".
type Offers []byte

// OpenOffers returns the offers of a client that speaks protocol version 0
// (librelp's) and sends syslog messages; software names it
// ("dtrelay,1.2.3,https://...").
func OpenOffers(software string) []byte {
	return []byte("relp_version=0\nrelp_software=" + software + "\ncommands=" + CmdSyslog)
}

// Get returns the value of offer name, and whether it is there.
func (o Offers) Get(name string) (value []byte, ok bool) {
	for rest := []byte(o); len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		key, val, _ := bytes.Cut(line, []byte("="))
		if string(key) == name {
			return val, true
		}
	}
	return nil, false
}

// Has reports whether offer name lists value among its comma-separated
// values.
func (o Offers) Has(name, value string) bool {
	v, ok := o.Get(name)
	if !ok {
		return false
	}
	for part := range bytes.SplitSeq(v, []byte(",")) {
		if string(part) == value {
			return true
		}
	}
	return false
}
