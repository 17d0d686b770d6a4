package bench

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// MaxFrame is the largest frame a sink accepts (the intake's 256 KiB limit).
const MaxFrame = 256 << 10

// ErrFrameTooLarge is returned by SplitFrames for an octet count over the
// limit; the sink then closes the connection.
var ErrFrameTooLarge = errors.New("bench: octet-counted frame too large")

// SplitFrames calls fn for each complete frame at the start of buf and
// returns the number of bytes consumed. A frame starting with 1-9 digits and a
// space is octet-counted (RFC 6587); anything else runs to the next LF (a CR
// before it is dropped). LF and CR bytes between frames are skipped. The
// frame passed to fn aliases buf and is valid only during the call.
func SplitFrames(buf []byte, maxFrame int, fn func(frame []byte)) (int, error) {
	pos := 0
	for pos < len(buf) {
		if c := buf[pos]; c == '\n' || c == '\r' {
			pos++
			continue
		}
		if n, hdr, ok := octetHeader(buf[pos:]); ok {
			if n > maxFrame {
				return pos, fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, n)
			}
			if len(buf)-pos-hdr < n {
				return pos, nil
			}
			fn(buf[pos+hdr : pos+hdr+n])
			pos += hdr + n
			continue
		} else if hdr < 0 {
			return pos, nil // undecided: digits so far, need more bytes
		}
		end := indexLF(buf[pos:])
		if end < 0 {
			if len(buf)-pos > maxFrame {
				return pos, fmt.Errorf("%w: line over %d bytes", ErrFrameTooLarge, maxFrame)
			}
			return pos, nil
		}
		frame := buf[pos : pos+end]
		if k := len(frame); k > 0 && frame[k-1] == '\r' {
			frame = frame[:k-1]
		}
		fn(frame)
		pos += end + 1
	}
	return pos, nil
}

// octetHeader parses "LEN SP" at the start of b. ok reports an octet-counted
// frame of n bytes after a hdr-byte header; with ok false, hdr < 0 means b
// ends before it can tell.
func octetHeader(b []byte) (n, hdr int, ok bool) {
	if len(b) == 0 || b[0] < '1' || b[0] > '9' {
		return 0, 0, false
	}
	for i := 0; i < len(b) && i < 10; i++ {
		c := b[i]
		switch {
		case c >= '0' && c <= '9':
			if i == 9 {
				return 0, 0, false
			}
			n = n*10 + int(c-'0')
		case c == ' ' && i > 0:
			return n, i + 1, true
		default:
			return 0, 0, false
		}
	}
	if len(b) < 10 {
		return 0, -1, false
	}
	return 0, 0, false
}

func indexLF(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return -1
}

// SyslogSink is a TCP or TLS syslog server that accounts every frame it
// receives in a Tally. It serves until Close.
type SyslogSink struct {
	ln    net.Listener
	tally *Tally
	log   zerolog.Logger
	conns atomic.Int64
	errs  atomic.Int64
	mu    sync.Mutex
	open  map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewSyslogSink listens on addr (e.g. "127.0.0.1:0"), with TLS when tlsConf
// is not nil, and starts serving.
func NewSyslogSink(addr string, tlsConf *tls.Config, tally *Tally, log zerolog.Logger) (*SyslogSink, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	s := &SyslogSink{ln: ln, tally: tally, log: log, open: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr returns the address the sink listens on.
func (s *SyslogSink) Addr() string { return s.ln.Addr().String() }

// Conns returns the number of connections accepted so far.
func (s *SyslogSink) Conns() int { return int(s.conns.Load()) }

// Errors returns the number of connections that ended with a framing error.
func (s *SyslogSink) Errors() int { return int(s.errs.Load()) }

// Close stops the listener, closes every connection and waits for their
// goroutines to end.
func (s *SyslogSink) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.open {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *SyslogSink) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.conns.Add(1)
		s.mu.Lock()
		s.open[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(c)
	}
}

func (s *SyslogSink) serve(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.open, c)
		s.mu.Unlock()
	}()
	if err := ReadFrames(c, s.tally); err != nil && !errors.Is(err, net.ErrClosed) {
		s.errs.Add(1)
		s.log.Warn().Err(err).Str("remote", c.RemoteAddr().String()).Msg("sink connection failed")
	}
}

// ReadFrames reads syslog frames from r until EOF and accounts each in
// tally. It returns nil at EOF, or the read or framing error.
func ReadFrames(r io.Reader, tally *Tally) error {
	buf := make([]byte, 256<<10)
	n := 0
	var now int64
	account := func(f []byte) { tally.Account(f, now) }
	for {
		m, err := r.Read(buf[n:])
		n += m
		if m > 0 {
			now = time.Now().UnixNano()
			used, ferr := SplitFrames(buf[:n], MaxFrame, account)
			n = copy(buf, buf[used:n])
			if ferr != nil {
				return ferr
			}
			if n == len(buf) {
				buf = append(buf, make([]byte, len(buf))...)
			}
		}
		if err != nil {
			if n > 0 {
				tally.AddMalformed(n) // a partial frame at the end
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}
