package config

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/netip"
	"os"
	"time"
)

// Warnings about settings that work but weaken the relay: a private key
// others can read, a certificate about to expire, a message size that
// multiplies into gigabytes, an allow entry that cannot match. They never
// make a configuration invalid.

const (
	// certExpiryNotice is how long before a certificate's end check warns.
	certExpiryNotice = 14 * 24 * time.Hour
	// largeMessageSize is the max_message_size above which check warns:
	// Darktrace alerts stay far below it (Sekoia refuses events over 250KB).
	largeMessageSize = MiB
	// partialFrameOverhead is the resident memory of a connection holding
	// a partial frame, per byte of the frame (measured: 1.22-1.25 for
	// 40 connections holding 1-4MiB each).
	partialFrameOverhead = 1.25
)

// largeMessageWarning warns when a tcp or tls input's max_message_size is
// above largeMessageSize: every connection may hold a partial frame that
// large, so the bound on memory is the size times max_connections.
func (d *decoder) largeMessageWarning(in *Input, p string) {
	size := in.MaxMessageSize
	if size <= largeMessageSize || size > MaxMessageSize || (in.Protocol != ProtocolTCP && in.Protocol != ProtocolTLS) {
		return
	}
	msg := fmt.Sprintf("%s is above %s: each connection may hold a partial frame this large", size, largeMessageSize)
	if in.MaxConnections > 0 {
		total := float64(size) * float64(in.MaxConnections) * partialFrameOverhead
		msg += fmt.Sprintf(", so memory can reach max_message_size × max_connections: %s × %d ≈ %s with buffer overhead",
			size, in.MaxConnections, approxSize(total))
	}
	d.warnf(p+".max_message_size", "%s; Darktrace alerts are well under 256KiB", msg)
}

// approxSize formats a byte count for a message: "21GiB", "1.5GiB", "640MiB".
func approxSize(b float64) string {
	switch {
	case b >= 10*float64(GiB):
		return fmt.Sprintf("%.0fGiB", b/float64(GiB))
	case b >= float64(GiB):
		return fmt.Sprintf("%.1fGiB", b/float64(GiB))
	}
	return fmt.Sprintf("%.0fMiB", b/float64(MiB))
}

// mappedPrefixWarning warns about an IPv4-mapped IPv6 prefix such as
// ::ffff:10.0.0.0/104. The receiver compares a peer's address in its IPv4
// form (netip.Addr.Unmap: an IPv4 client of a dual-stack socket shows as
// ::ffff:a.b.c.d and is unmapped first), and an IPv6 prefix never contains
// an IPv4 address, so such an entry can never match. A bare mapped address
// is unmapped when parsed and is not concerned.
func (d *decoder) mappedPrefixWarning(path, s string, pfx netip.Prefix) {
	if !pfx.Addr().Is4In6() || pfx.Bits() < 96 {
		return
	}
	v4 := netip.PrefixFrom(pfx.Addr().Unmap(), pfx.Bits()-96)
	d.warnf(path, "%s is an IPv4-mapped IPv6 prefix and never matches: peers are compared in their IPv4 form "+
		"(also those reaching an IPv6 socket as ::ffff:a.b.c.d); write %s", quote(s), v4)
}

// keyFileWarning warns when a private key file can be read (or written) by
// its group or others.
func (d *decoder) keyFileWarning(path, file string) {
	fi, err := os.Stat(file)
	if err != nil {
		return // the problem is reported where the file is read
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		d.warnf(path, "%s has mode %04o: the private key is open to group or others; "+
			"make it readable by the user dtrelay runs as only (chmod 600)", quote(file), m)
	}
}

// certExpiryWarning warns when a certificate in pemData has expired, is
// not valid yet, or expires within certExpiryNotice. A bundle (a CA file,
// a chain) is judged by its certificate that ends first; the message says
// how many others are concerned.
func (d *decoder) certExpiryWarning(path string, pemData []byte, now time.Time) {
	var first *x509.Certificate
	soon, total := 0, 0
	for rest := pemData; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			continue // the file was loaded already: the TLS stack judges it
		}
		total++
		if now.Before(c.NotBefore) {
			d.warnf(path, "certificate %s is not valid before %s", certName(c), formatTime(c.NotBefore))
		}
		if c.NotAfter.Sub(now) < certExpiryNotice {
			soon++
			if first == nil || c.NotAfter.Before(first.NotAfter) {
				first = c
			}
		}
	}
	if first == nil {
		return
	}
	var msg string
	if left := first.NotAfter.Sub(now); left < 0 {
		msg = fmt.Sprintf("certificate %s expired on %s: TLS handshakes with it fail", certName(first), formatTime(first.NotAfter))
	} else {
		msg = fmt.Sprintf("certificate %s expires on %s, in %s", certName(first), formatTime(first.NotAfter), daysLeft(left))
	}
	if total > 1 {
		msg += fmt.Sprintf(" (%d of the %d certificates in the file expire within %d days)", soon, total, int(certExpiryNotice/(24*time.Hour)))
	}
	d.warnf(path, "%s; renew it", msg)
}

// certName names a certificate by its subject's common name (not a secret).
func certName(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return quote(c.Subject.CommonName)
	}
	return quote(c.Subject.String())
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

func daysLeft(d time.Duration) string {
	switch days := int(d / (24 * time.Hour)); days {
	case 0:
		return "less than a day"
	case 1:
		return "1 day"
	default:
		return fmt.Sprintf("%d days", days)
	}
}
