package intaketest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/leodido/go-syslog/v4/rfc5424"
)

// SekoiaSDID is the SD-ID of the element carrying the intake key.
const SekoiaSDID = "SEKOIA@53288"

// maxFrame bounds one received message.
const maxFrame = 1 << 20

// SyslogOptions configures a syslog mock.
type SyslogOptions struct {
	// Key, when set, is the intake key every message must carry in
	// [SEKOIA@53288 intake_key="KEY"]; messages are then parsed as strict
	// RFC 5424 (leodido/go-syslog) and one that fails is a problem.
	Key string
	// TLS serves TLS with a certificate for 127.0.0.1, localhost and
	// intake.sekoia.io signed by the mock's CA (CAFile).
	TLS bool
	// ClientAuth requires a client certificate signed by the mock's CA
	// (ClientCertFiles).
	ClientAuth bool
	// ReadBuffer, when > 0, sets SO_RCVBUF of accepted connections.
	ReadBuffer int
	// Discard reads and counts bytes (Bytes) without parsing or recording
	// anything: a sink for benchmarks.
	Discard bool
}

// SyslogIntake is a mock syslog intake (Sekoia's syslog intake, a Rapid7
// collector) on 127.0.0.1. Each frame is octet-counted when it starts with
// a digit, else runs to the next LF (RFC 6587, mixed on one connection).
// Frames cut by a closed connection are discarded, as a real intake would.
type SyslogIntake struct {
	*recorder
	tb     testing.TB
	opts   SyslogOptions
	pki    *testPKI
	tlsCfg *tls.Config
	addr   string
	conns  atomic.Int64
	bytes  atomic.Int64

	mu      sync.Mutex
	ln      net.Listener
	live    map[*mockConn]struct{}
	lines   [][]byte
	stalled chan struct{} // non-nil while reads are stalled; closed by Resume
	caFile  string
	wg      sync.WaitGroup

	relp *relpState // non-nil: a RELP intake (NewRELP)
}

type mockConn struct {
	net.Conn
	done chan struct{} // closed when the mock closes the connection
	s    *SyslogIntake
	once sync.Once
	wmu  sync.Mutex // serialises writes (RELP answers and hints)
}

// NewSyslog starts a syslog mock intake (TLS when tls is true) expecting
// key in every message when key is not empty.
func NewSyslog(tb testing.TB, key string, tls bool) *SyslogIntake {
	tb.Helper()
	return NewSyslogWith(tb, SyslogOptions{Key: key, TLS: tls})
}

// NewSyslogWith starts a syslog mock intake configured by opts.
func NewSyslogWith(tb testing.TB, opts SyslogOptions) *SyslogIntake {
	tb.Helper()
	s := &SyslogIntake{recorder: newRecorder(tb, "syslog"), tb: tb, opts: opts, live: map[*mockConn]struct{}{}}
	s.setupTLS()
	s.addr = "127.0.0.1:0"
	if err := s.listen(); err != nil {
		tb.Fatalf("cannot listen: %v", err)
	}
	s.addr = s.ln.Addr().String()
	tb.Cleanup(s.Stop)
	return s
}

// setupTLS makes the mock's certificates when its options ask for TLS.
func (s *SyslogIntake) setupTLS() {
	if !s.opts.TLS && !s.opts.ClientAuth {
		return
	}
	s.pki = newPKI(s.tb)
	s.tlsCfg = &tls.Config{Certificates: []tls.Certificate{s.pki.server}}
	if s.opts.ClientAuth {
		s.tlsCfg.ClientAuth = tls.RequireAndVerifyClientCert
		s.tlsCfg.ClientCAs = s.pki.pool
	}
}

// Addr returns the listening address, "127.0.0.1:PORT" (the same after
// Restart).
func (s *SyslogIntake) Addr() string { return s.addr }

// CAFile writes the mock's CA certificate to a PEM file (once) and returns
// its path. TLS mocks only.
func (s *SyslogIntake) CAFile() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.caFile == "" {
		s.caFile = writeFile(s.tb, "intake-ca.pem", s.pki.caPEM)
	}
	return s.caFile
}

// ClientCertFiles writes a client certificate signed by the mock's CA and
// its key, and returns their paths. TLS mocks only.
func (s *SyslogIntake) ClientCertFiles() (certFile, keyFile string) {
	return s.pki.clientFiles(s.tb)
}

// Lines returns copies of the whole messages received (without framing).
func (s *SyslogIntake) Lines() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, len(s.lines))
	for i, l := range s.lines {
		out[i] = append([]byte(nil), l...)
	}
	return out
}

// Bytes returns the number of bytes received so far by a Discard mock.
func (s *SyslogIntake) Bytes() int64 { return s.bytes.Load() }

// Conns returns the number of connections accepted so far.
func (s *SyslogIntake) Conns() int { return int(s.conns.Load()) }

func (s *SyslogIntake) listen() error {
	lc := net.ListenConfig{}
	if n := s.opts.ReadBuffer; n > 0 {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	ln, err := lc.Listen(context.Background(), "tcp", s.addr)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	s.wg.Add(1)
	go s.accept(ln)
	return nil
}

func (s *SyslogIntake) accept(ln net.Listener) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s.conns.Add(1)
		mc := &mockConn{Conn: c, done: make(chan struct{}), s: s}
		if s.tlsCfg != nil {
			mc.Conn = tls.Server(c, s.tlsCfg)
		}
		s.mu.Lock()
		s.live[mc] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(mc)
	}
}

// Read waits while the mock is stalled, then reads.
func (c *mockConn) Read(p []byte) (int, error) {
	for {
		c.s.mu.Lock()
		ch := c.s.stalled
		c.s.mu.Unlock()
		if ch == nil {
			return c.Conn.Read(p)
		}
		select {
		case <-ch:
		case <-c.done:
			return 0, net.ErrClosed
		}
	}
}

func (c *mockConn) close() {
	c.once.Do(func() {
		close(c.done)
		c.Conn.Close()
	})
}

func (s *SyslogIntake) serve(c *mockConn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.live, c)
		s.mu.Unlock()
		c.close()
	}()
	if s.relp != nil {
		s.serveRELP(c)
		return
	}
	if s.opts.Discard {
		buf := make([]byte, 256<<10)
		for {
			n, err := c.Read(buf)
			s.bytes.Add(int64(n))
			if err != nil {
				return
			}
		}
	}
	r := bufio.NewReaderSize(c, 64<<10)
	for {
		frame, err := readFrame(r)
		if err != nil {
			if errors.Is(err, errBadFrame) {
				s.problem("bad frame: %v", err)
			}
			return
		}
		s.record(frame)
	}
}

var errBadFrame = errors.New("bad octet count")

// readFrame reads one octet-counted or LF-terminated frame; the result is a
// new slice.
func readFrame(r *bufio.Reader) ([]byte, error) {
	first, err := r.Peek(1)
	if err != nil {
		return nil, err
	}
	if first[0] >= '1' && first[0] <= '9' {
		head, err := r.ReadSlice(' ')
		if err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(string(head[:len(head)-1]))
		if err != nil || n <= 0 || n > maxFrame {
			return nil, errBadFrame
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(r, frame); err != nil {
			return nil, err
		}
		return frame, nil
	}
	line, err := r.ReadBytes('\n')
	if err != nil {
		return nil, err // a last line without LF was cut: discarded
	}
	return line[:len(line)-1], nil
}

// record checks and keeps one message.
func (s *SyslogIntake) record(frame []byte) {
	s.mu.Lock()
	s.lines = append(s.lines, frame)
	s.mu.Unlock()
	msg, err := rfc5424.NewParser().Parse(frame)
	m, _ := msg.(*rfc5424.SyslogMessage)
	if err != nil || m == nil {
		if s.opts.Key != "" {
			s.problem("not RFC 5424 (%v): %.80q", err, frame)
			return
		}
		s.add(frame)
		return
	}
	if s.opts.Key != "" {
		var key string
		var ok bool
		if m.StructuredData != nil {
			key, ok = (*m.StructuredData)[SekoiaSDID]["intake_key"]
		}
		if !ok || key != s.opts.Key {
			s.problem("message without the right %s intake_key", SekoiaSDID)
			return
		}
	}
	if m.Message == nil {
		s.add(frame[len(frame):])
		return
	}
	// MSG is the tail of the frame: keep the received bytes themselves.
	payload := frame[len(frame)-len(*m.Message):]
	if !bytes.Equal(payload, []byte(*m.Message)) {
		s.problem("MSG is not the tail of the frame: %.80q", frame)
		return
	}
	s.add(payload)
}

// Stall stops reading from every connection (the kernel's receive buffers
// fill, then the senders' TCP windows close) until Resume.
func (s *SyslogIntake) Stall() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stalled == nil {
		s.stalled = make(chan struct{})
	}
}

// Resume reads again after Stall.
func (s *SyslogIntake) Resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stalled != nil {
		close(s.stalled)
		s.stalled = nil
	}
}

// CloseConns closes every live connection; the listener stays.
func (s *SyslogIntake) CloseConns() {
	s.mu.Lock()
	conns := make([]*mockConn, 0, len(s.live))
	for c := range s.live {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
}

// Stop closes the listener and every connection and waits for the mock's
// goroutines: the intake is down. Stop twice is fine.
func (s *SyslogIntake) Stop() {
	s.mu.Lock()
	ln := s.ln
	s.ln = nil
	s.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	s.CloseConns()
	s.wg.Wait()
}

// Restart listens again on the same address after Stop. Call it from the
// test's goroutine.
func (s *SyslogIntake) Restart() {
	s.tb.Helper()
	if err := s.listen(); err != nil {
		s.tb.Fatalf("cannot listen again on %s: %v", s.addr, err)
	}
}
