// Package jsonenc writes JSON for the encoders of package output and for
// forward's dead-letter lines: bytes as a JSON string, and a JSON payload
// made safe for line-oriented formats. It has no state and is safe for
// concurrent use; nothing here allocates beyond growing dst.
package jsonenc

import (
	"bytes"
	"slices"
)

// AppendString appends s as a quoted JSON string: '"' and '\' are
// backslash-escaped, control characters written as \n, \r, \t or \u00XX;
// every other byte (UTF-8 included) is copied as is. It measures the result
// first, grows dst once and fills it without further bounds work: about
// twice as fast as appending run by run on alerts, which hold a quote every
// ten bytes or so (see output.BenchmarkHTTPEncoder).
func AppendString(dst, s []byte) []byte {
	n := len(s) + 2
	for _, c := range s {
		n += int(jsonEscapeLen[c])
	}
	off := len(dst)
	dst = slices.Grow(dst, n)[:off+n]
	out := dst[off:]
	out[0] = '"'
	j := 1
	for _, c := range s {
		switch jsonEscapeLen[c] {
		case 0:
			out[j] = c
			j++
		case 1:
			out[j], out[j+1] = '\\', jsonEscapeChar[c]
			j += 2
		default:
			const hex = "0123456789abcdef"
			out[j], out[j+1], out[j+2], out[j+3], out[j+4], out[j+5] = '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf]
			j += 6
		}
	}
	out[j] = '"'
	return dst
}

// jsonEscapeLen[c] is how many bytes escaping c adds: 1 for '"', '\\', LF,
// CR and tab (a backslash pair), 5 for the other control characters
// (\u00XX), 0 for the rest.
var jsonEscapeLen = [256]uint8{
	0: 5, 5, 5, 5, 5, 5, 5, 5, 5, '\t': 1, '\n': 1, 5, 5, '\r': 1, 5, 5,
	5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
	'"': 1, '\\': 1,
}

// jsonEscapeChar[c] is the letter after the backslash for the one-byte
// escapes.
var jsonEscapeChar = [256]byte{'\t': 't', '\n': 'n', '\r': 'r', '"': '"', '\\': '\\'}

// AppendNoLF appends p with each LF written as a space. For a JSON text
// this changes no value (a raw LF can only be whitespace between tokens),
// and it keeps one event on one line (see output.SyslogEncoder).
func AppendNoLF(dst, p []byte) []byte {
	for {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			return append(dst, p...)
		}
		dst = append(dst, p[:i]...)
		dst = append(dst, ' ')
		p = p[i+1:]
	}
}
