package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dtrelay/dtrelay/internal/secret"
)

// name checks an input or output name: required, unique among its kind, and
// made of letters, digits, '_', '.' and '-' so it reads well in metrics.
func (d *decoder) name(path, name string, seen map[string]string) {
	switch {
	case name == "":
		d.problemf(path, "is required")
		return
	case !validName(name):
		d.problemf(path, "%s: use letters, digits, '_', '.' and '-' (at most 64, starting with a letter or digit)", quote(name))
		return
	}
	if first, dup := seen[name]; dup {
		d.problemf(path, "duplicate name %s (also %s)", quote(name), first)
		return
	}
	seen[name] = path
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '_' || c == '.' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// oneOf checks that value is one of allowed; want reads like "tcp, udp or tls".
func (d *decoder) oneOf(path, what, value string, allowed ...string) bool {
	for _, a := range allowed {
		if value == a {
			return true
		}
	}
	d.problemf(path, "unknown %s %s (want %s)", what, quote(value), orList(allowed))
	return false
}

func orList(items []string) string {
	if len(items) <= 1 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// listenAddress checks a host:port to listen on; an empty host is every
// interface and port 0 a free port. It returns the host and port.
func (d *decoder) listenAddress(path, addr string) (string, int, bool) {
	host, port, err := splitAddress(addr, 0)
	if err != nil {
		d.problemf(path, "%v, got %s", err, quote(addr))
		return "", 0, false
	}
	return host, port, true
}

// dialAddress checks a host:port to connect to.
func (d *decoder) dialAddress(path, addr string) (string, bool) {
	host, _, err := splitAddress(addr, 1)
	if err == nil && host == "" {
		err = errors.New("needs a host (host:port)")
	}
	if err != nil {
		d.problemf(path, "%v, got %s", err, quote(addr))
		return "", false
	}
	return host, true
}

func splitAddress(addr string, minPort int) (string, int, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, errors.New("must be host:port, e.g. 0.0.0.0:1514 or [::1]:1514")
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < minPort || port > 65535 {
		return "", 0, errors.New("port must be a number from " + strconv.Itoa(minPort) + " to 65535")
	}
	if host != "" && !validHost(host) {
		return "", 0, errors.New("host is neither an IP address nor a DNS name")
	}
	return host, port, nil
}

// validHost reports whether h is an IP address or a syntactically valid DNS
// name.
func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func isIP(host string) bool {
	_, err := netip.ParseAddr(host)
	return err == nil
}

// checkURL checks an http(s) URL; it returns the parsed URL, or nil after a
// problem. Credentials in the URL are refused: they would be secrets in a
// field that messages quote.
func (d *decoder) checkURL(path, raw string) *url.URL {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		d.problemf(path, "is not a valid URL: %v", err)
		return nil
	}
	if u.User != nil {
		d.problemf(path, "must not hold credentials (user:password@); use intake_key, tokens or headers")
		return nil
	}
	shown := quote(redactURL(u))
	if u.Scheme != "https" && u.Scheme != "http" {
		d.problemf(path, "must be an https:// URL, got %s", shown)
		return nil
	}
	if u.Hostname() == "" || !validHost(u.Hostname()) {
		d.problemf(path, "has no valid host, got %s", shown)
		return nil
	}
	if ps := u.Port(); ps != "" {
		if p, err := strconv.Atoi(ps); err != nil || p < 1 || p > 65535 {
			d.problemf(path, "port must be a number from 1 to 65535, got %s", shown)
			return nil
		}
	}
	return u
}

// redactURL shows a URL without its user info and query, and with its
// token-like path segments masked (secret.ShowURL).
func redactURL(u *url.URL) string { return secret.ShowURL(u) }

// maxPEMFile bounds the certificate, key and CA files read for checking.
const maxPEMFile = 16 << 20

// readPEMFile reads a certificate, key or CA file. It refuses anything but a
// regular file of reasonable size, so that a path such as /dev/zero or a
// FIFO cannot hang the check.
func readPEMFile(file string) ([]byte, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New(file + " is not a regular file")
	}
	if fi.Size() > maxPEMFile {
		return nil, errors.New(file + " is too large for a PEM file")
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxPEMFile))
}

// caFile checks that file is a readable PEM bundle with a certificate.
func (d *decoder) caFile(path, file string) {
	if file == "" {
		return
	}
	pem, err := readPEMFile(file)
	if err != nil {
		d.problemf(path, "cannot read CA file: %v", err)
		return
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		d.problemf(path, "cannot use CA file %s: no PEM certificate in it", quote(file))
		return
	}
	d.certExpiryWarning(path, pem, time.Now())
}

// trustRoots checks system_roots at p: false needs a ca_file, or a client
// would trust no server.
func (d *decoder) trustRoots(p, caFile string, noSystemRoots bool) {
	if noSystemRoots && caFile == "" {
		d.problemf(p+".system_roots", "is false without a ca_file: no server certificate could be trusted; set ca_file or remove system_roots")
	}
}

// keyPair checks a certificate and its key: both or neither, loadable
// together. certPath and keyPath are the keys' paths.
func (d *decoder) keyPair(certPath, keyPath, cert, key string) {
	switch {
	case cert == "" && key == "":
		return
	case cert == "":
		d.problemf(certPath, "is required with %s", lastKey(keyPath))
		return
	case key == "":
		d.problemf(keyPath, "is required with %s", lastKey(certPath))
		return
	}
	certPEM, err := readPEMFile(cert)
	if err != nil {
		d.problemf(certPath, "cannot load certificate and key: %v", err)
		return
	}
	keyPEM, err := readPEMFile(key)
	if err != nil {
		d.problemf(keyPath, "cannot load certificate and key: %v", err)
		return
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		d.problemf(certPath, "cannot load certificate and key: %v", err)
		return
	}
	d.certExpiryWarning(certPath, certPEM, time.Now())
	d.keyFileWarning(keyPath, key)
}

func lastKey(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[i+1:]
	}
	return path
}

// outFile checks a path an output will create or append to. A symbolic
// link there is refused, as the file output refuses to open one.
func (d *decoder) outFile(path, file string) {
	if file == "-" {
		return
	}
	if fi, err := os.Lstat(file); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		d.problemf(path, "%s is a symbolic link, which dtrelay does not follow: name the file itself (\"-\" is standard output)", quote(file))
		return
	}
	if fi, err := os.Stat(file); err == nil && fi.IsDir() {
		d.problemf(path, "%s is a directory", quote(file))
		return
	}
	dir := filepath.Dir(file)
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		d.problemf(path, "cannot use directory %s: %v", quote(dir), err)
	case !fi.IsDir():
		d.problemf(path, "%s is not a directory", quote(dir))
	}
}

// applicable reports the keys given at path that are not used with what
// (e.g. "protocol udp"), according to use.
func (d *decoder) applicable(path string, keys []string, what string, use func(key string) bool) {
	for _, k := range keys {
		if p := join(path, k); d.has(p) && !use(k) {
			d.problemf(p, "not used with %s; remove it", what)
		}
	}
}
