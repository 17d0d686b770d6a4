package parser

import (
	"encoding/binary"
	"math/bits"
)

// This file is the grammar half of the payload scanner: a single-pass,
// allocation-free validator of RFC 8259 JSON that never copies its input.
// jsonfields.go drives it over the top-level object and records the values
// classification reads.
//
// Every function takes the whole payload b and an index into it, and
// returns the index just past what it consumed, or -1 when b is not valid
// JSON there. None of them retains b.

// maxNesting is the deepest nesting of objects and arrays the scanner
// accepts, the top-level object counting as 1. Deeper payloads are not
// JSON as far as Classify is concerned (encoding/json accepts up to
// 10,000, fastjson 300 values deep); it bounds the work per byte and keeps
// the nesting stack of skipValue in 64 bytes on the goroutine stack.
const maxNesting = 512

// SWAR constants: one bit or value repeated in each byte of a word.
const (
	lsbs = 0x0101010101010101
	msbs = 0x8080808080808080
)

// strStop marks the bytes that end a run of plain string contents: '"',
// '\\' and the control bytes below 0x20, which JSON forbids raw in strings.
var strStop = [256]bool{'"': true, '\\': true,
	0: true, 1: true, 2: true, 3: true, 4: true, 5: true, 6: true, 7: true, 8: true, 9: true,
	10: true, 11: true, 12: true, 13: true, 14: true, 15: true, 16: true, 17: true, 18: true,
	19: true, 20: true, 21: true, 22: true, 23: true, 24: true, 25: true, 26: true, 27: true,
	28: true, 29: true, 30: true, 31: true}

// isHex marks ASCII hex digits.
var isHex = [256]bool{'0': true, '1': true, '2': true, '3': true, '4': true, '5': true,
	'6': true, '7': true, '8': true, '9': true, 'a': true, 'b': true, 'c': true, 'd': true,
	'e': true, 'f': true, 'A': true, 'B': true, 'C': true, 'D': true, 'E': true, 'F': true}

// isWS reports JSON white space: space, tab, LF, CR.
func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// skipWS returns the index of the first non-white-space byte at or after i
// (len(b) if none). Callers test b[i] > ' ' first: compact JSON, the
// common case, then costs no call.
func skipWS(b []byte, i int) int {
	for i < len(b) && isWS(b[i]) {
		i++
	}
	return i
}

// skipString scans the contents of a string that start at b[i] (just past
// the opening quote). It returns the index just past the closing quote and
// whether the string holds an escape sequence. Escapes are checked
// (\" \\ \/ \b \f \n \r \t \uXXXX); surrogates in \u escapes are not
// paired (RFC 8259 allows lone ones). Bytes from 0x80 up are not checked
// here (Classifier.Strict checks UTF-8).
//
// Contents are skipped 8 bytes at a time while no byte of the word needs
// a look (stopMask), then byte by byte.
func skipString(b []byte, i int) (int, bool) {
	esc := false
	for {
		if i+8 <= len(b) {
			m := stopMask(binary.LittleEndian.Uint64(b[i:]))
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) >> 3
		} else {
			for i < len(b) && !strStop[b[i]] {
				i++
			}
			if i >= len(b) {
				return -1, esc
			}
		}
		switch b[i] {
		case '"':
			return i + 1, esc
		case '\\':
			esc = true
			if i+1 >= len(b) {
				return -1, esc
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex[b[i+2]] || !isHex[b[i+3]] || !isHex[b[i+4]] || !isHex[b[i+5]] {
					return -1, esc
				}
				i += 6
			default:
				return -1, esc
			}
		default: // a raw control byte
			return -1, esc
		}
	}
}

// skipNumber scans a number that starts at b[i]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?. What follows it is left
// to the caller, so "01" or "1x" fail there (a value must be followed by
// ',', a closing bracket, white space or the end).
func skipNumber(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return -1
	}
	switch c := b[i]; {
	case c == '0':
		i++
	case c >= '1' && c <= '9':
		i++
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		i++
		j := i
		for i < len(b) && isDigit(b[i]) {
			i++
		}
		if i == j {
			return -1
		}
	}
	if i < len(b) && b[i]|0x20 == 'e' {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := i
		for i < len(b) && isDigit(b[i]) {
			i++
		}
		if i == j {
			return -1
		}
	}
	return i
}

// skipValue scans one value of any type that starts at b[i] (not white
// space) inside a container at nesting depth depth. It is the hot loop of
// the scanner (most of a payload lies in members classification does not
// read), hence its shape:
//   - nested objects and arrays are walked iteratively, with one bit per
//     level (set for an array) instead of a call per level;
//   - the common string, without escapes, is skipped in line (once for
//     values, once for keys), a word at a time: quoteMask finds the
//     closing quote and badMask checks that no '\\' or control byte comes
//     before it. A word with one goes to skipString. In line, this is a
//     few per cent faster than a call per string (BenchmarkJSON).
func skipValue(b []byte, i, depth int) int {
	var stack [maxNesting / 64]uint64
	d := 0          // containers open in this call
	inArr := false  // the innermost open container is an array
	var x, m uint64 // a word of string contents and its quote mask
value:
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		i++
		for i+8 <= len(b) {
			x = binary.LittleEndian.Uint64(b[i:])
			if m = quoteMask(x); m == 0 {
				if badMask(x) != 0 {
					break
				}
				i += 8
				continue
			}
			if badMask(x)&(m^(m-1)) != 0 {
				break
			}
			i += bits.TrailingZeros64(m)>>3 + 1
			goto after
		}
		if i, _ = skipString(b, i); i < 0 {
			return -1
		}
	case '{':
		if depth+d >= maxNesting {
			return -1
		}
		stack[d>>6] &^= 1 << (d & 63)
		d++
		inArr = false
		i++
		if i < len(b) && b[i] <= ' ' {
			i = skipWS(b, i)
		}
		if i < len(b) && b[i] == '}' {
			i++
			goto pop
		}
		goto key
	case '[':
		if depth+d >= maxNesting {
			return -1
		}
		stack[d>>6] |= 1 << (d & 63)
		d++
		inArr = true
		i++
		if i < len(b) && b[i] <= ' ' {
			i = skipWS(b, i)
		}
		if i < len(b) && b[i] == ']' {
			i++
			goto pop
		}
		goto value
	case 't':
		if i+4 > len(b) || string(b[i:i+4]) != "true" {
			return -1
		}
		i += 4
	case 'f':
		if i+5 > len(b) || string(b[i:i+5]) != "false" {
			return -1
		}
		i += 5
	case 'n':
		if i+4 > len(b) || string(b[i:i+4]) != "null" {
			return -1
		}
		i += 4
	default:
		if i = skipNumber(b, i); i < 0 {
			return -1
		}
	}
after: // a value ended at b[i]
	if d == 0 {
		return i
	}
	if i < len(b) && b[i] <= ' ' {
		i = skipWS(b, i)
	}
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case ',':
		i++
		if i < len(b) && b[i] <= ' ' {
			i = skipWS(b, i)
		}
		if inArr {
			goto value
		}
		goto key
	case ']':
		if inArr {
			i++
			goto pop
		}
	case '}':
		if !inArr {
			i++
			goto pop
		}
	}
	return -1
pop: // the innermost container ended just before b[i]
	d--
	if d > 0 {
		inArr = stack[(d-1)>>6]&(1<<((d-1)&63)) != 0
	}
	goto after
key: // an object member's key starts at b[i]
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	i++
	for i+8 <= len(b) {
		x = binary.LittleEndian.Uint64(b[i:])
		if m = quoteMask(x); m == 0 {
			if badMask(x) != 0 {
				break
			}
			i += 8
			continue
		}
		if badMask(x)&(m^(m-1)) != 0 {
			break
		}
		i += bits.TrailingZeros64(m)>>3 + 1
		goto colon
	}
	if i, _ = skipString(b, i); i < 0 {
		return -1
	}
colon:
	if i < len(b) && b[i] == ':' {
		i++
	} else {
		if i = skipWS(b, i); i >= len(b) || b[i] != ':' {
			return -1
		}
		i++
	}
	if i < len(b) && b[i] <= ' ' {
		i = skipWS(b, i)
	}
	goto value
}

// stopMask flags (in the top bit of each byte) the bytes of x, a word of
// string contents in little-endian order, that end a run of plain
// contents: '"', '\\' and bytes below 0x20. It is the has-zero-byte trick
// ((v - 0x01…) &^ v & 0x80…, v being x with the wanted byte XORed to
// zero) and its has-less-than variant for the control bytes. The lowest
// flag is exact; higher ones may be false positives (a borrow from a
// flagged byte), so only the lowest may be used.
func stopMask(x uint64) uint64 {
	q := x ^ (lsbs * '"')
	s := x ^ (lsbs * '\\')
	return (((q - lsbs) &^ q) | ((s - lsbs) &^ s) | ((x - lsbs*0x20) &^ x)) & msbs
}

// quoteMask flags the bytes of x that are '"'; only the lowest flag is
// exact (see stopMask).
func quoteMask(x uint64) uint64 {
	q := x ^ (lsbs * '"')
	return (q - lsbs) &^ q & msbs
}

// badMask flags the bytes of x that are '\\' or below 0x20; only the lowest
// flag is exact (see stopMask).
func badMask(x uint64) uint64 {
	s := x ^ (lsbs * '\\')
	return (((s - lsbs) &^ s) | ((x - lsbs*0x20) &^ x)) & msbs
}
