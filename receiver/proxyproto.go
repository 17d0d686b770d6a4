package receiver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
)

// PROXY protocol (HAProxy, v1 text and v2 binary) header parsing.

const (
	proxyV1Max     = 107 // the longest v1 header, CRLF included
	proxyV2HdrLen  = 16
	proxyMaxHeader = proxyV2HdrLen + 2048 // v2 with TLVs; longer is refused
)

var proxyV2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// Errors of the PROXY protocol parser.
var (
	errProxyShort   = errors.New("receiver: PROXY header incomplete")
	ErrProxyHeader  = errors.New("receiver: bad PROXY protocol header")
	errProxyMissing = fmt.Errorf("%w: connection does not start with one", ErrProxyHeader)
)

// parseProxyHeader parses a PROXY protocol v1 or v2 header at the start of
// b. It returns the header length and the source address it carries; src is
// the zero AddrPort for a v2 LOCAL command, a v1 UNKNOWN header or a non-IP
// family, where the connection's own address stands. It returns
// errProxyShort when b is a valid but incomplete prefix of a header.
func parseProxyHeader(b []byte) (n int, src netip.AddrPort, err error) {
	switch {
	case len(b) == 0:
		return 0, src, errProxyShort
	case b[0] == 'P':
		return parseProxyV1(b)
	case b[0] == '\r':
		return parseProxyV2(b)
	}
	return 0, src, errProxyMissing
}

func parseProxyV1(b []byte) (int, netip.AddrPort, error) {
	const prefix = "PROXY "
	var none netip.AddrPort
	if k := min(len(b), len(prefix)); string(b[:k]) != prefix[:k] {
		return 0, none, errProxyMissing
	}
	end := bytes.Index(b[:min(len(b), proxyV1Max)], []byte("\r\n"))
	if end < 0 {
		if len(b) < proxyV1Max {
			return 0, none, errProxyShort
		}
		return 0, none, fmt.Errorf("%w: v1 header without CRLF in %d bytes", ErrProxyHeader, proxyV1Max)
	}
	n := end + 2
	f := bytes.Fields(b[len(prefix):end])
	if len(f) >= 1 && string(f[0]) == "UNKNOWN" {
		return n, none, nil
	}
	if len(f) != 5 || (string(f[0]) != "TCP4" && string(f[0]) != "TCP6") {
		return 0, none, fmt.Errorf("%w: v1 %q", ErrProxyHeader, truncateForLog(b[:end]))
	}
	ip, err := netip.ParseAddr(string(f[1]))
	if err != nil || ip.Is4() != (string(f[0]) == "TCP4") {
		return 0, none, fmt.Errorf("%w: v1 source address %q", ErrProxyHeader, truncateForLog(f[1]))
	}
	port, err := strconv.ParseUint(string(f[3]), 10, 16)
	if err != nil {
		return 0, none, fmt.Errorf("%w: v1 source port %q", ErrProxyHeader, truncateForLog(f[3]))
	}
	return n, netip.AddrPortFrom(ip, uint16(port)), nil
}

func parseProxyV2(b []byte) (int, netip.AddrPort, error) {
	var none netip.AddrPort
	if k := min(len(b), len(proxyV2Sig)); !bytes.Equal(b[:k], proxyV2Sig[:k]) {
		return 0, none, errProxyMissing
	}
	if len(b) < proxyV2HdrLen {
		return 0, none, errProxyShort
	}
	verCmd, fam := b[12], b[13]
	if verCmd>>4 != 2 || verCmd&0xf > 1 {
		return 0, none, fmt.Errorf("%w: v2 version/command byte %#x", ErrProxyHeader, verCmd)
	}
	n := proxyV2HdrLen + int(binary.BigEndian.Uint16(b[14:16]))
	if n > proxyMaxHeader {
		return 0, none, fmt.Errorf("%w: v2 header of %d bytes is too long", ErrProxyHeader, n)
	}
	if len(b) < n {
		return 0, none, errProxyShort
	}
	if verCmd&0xf == 0 { // LOCAL: health check from the proxy itself
		return n, none, nil
	}
	body := b[proxyV2HdrLen:n]
	switch fam >> 4 {
	case 1: // AF_INET: src 4, dst 4, sport 2, dport 2
		if len(body) < 12 {
			return 0, none, fmt.Errorf("%w: v2 IPv4 block of %d bytes", ErrProxyHeader, len(body))
		}
		ip := netip.AddrFrom4([4]byte(body[0:4]))
		return n, netip.AddrPortFrom(ip, binary.BigEndian.Uint16(body[8:10])), nil
	case 2: // AF_INET6: src 16, dst 16, sport 2, dport 2
		if len(body) < 36 {
			return 0, none, fmt.Errorf("%w: v2 IPv6 block of %d bytes", ErrProxyHeader, len(body))
		}
		ip := netip.AddrFrom16([16]byte(body[0:16]))
		return n, netip.AddrPortFrom(ip, binary.BigEndian.Uint16(body[32:34])), nil
	}
	return n, none, nil // AF_UNSPEC or AF_UNIX: keep the connection's address
}

// truncateForLog returns at most 32 bytes of b for an error message.
func truncateForLog(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}

// proxyReader accumulates a PROXY header split across reads (gnet path).
// It is owned by the connection's event loop.
type proxyReader struct {
	buf []byte
}

// feed offers the bytes of one read. When the header is complete it returns
// done, the source address and the data left after the header (which may
// point into data or into r's buffer). When the header is still incomplete
// it keeps a copy of data and returns done == false.
func (r *proxyReader) feed(data []byte) (done bool, src netip.AddrPort, rest []byte, err error) {
	in := data
	if len(r.buf) > 0 {
		r.buf = append(r.buf, data...)
		in = r.buf
	}
	n, src, err := parseProxyHeader(in)
	switch {
	case errors.Is(err, errProxyShort):
		if len(r.buf) == 0 {
			r.buf = append(make([]byte, 0, 256), data...)
		}
		if len(r.buf) > proxyMaxHeader {
			return false, src, nil, fmt.Errorf("%w: longer than %d bytes", ErrProxyHeader, proxyMaxHeader)
		}
		return false, src, nil, nil
	case err != nil:
		return false, src, nil, err
	}
	return true, src, in[n:], nil
}
