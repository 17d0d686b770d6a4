package rsyslogpeer

import (
	"syscall"
	"testing"
	"time"
)

// Require returns the rsyslog installation, or skips the test with a
// message saying how to install it.
func Require(tb testing.TB) Install {
	tb.Helper()
	in, err := Find()
	if err != nil {
		tb.Skipf("%v", err)
	}
	return in
}

// Start is New and Start for a test: cfg.Install defaults to Require's,
// cfg.Dir to a new temporary directory. rsyslogd is killed when the test
// ends; if the test failed, the end of rsyslogd's log is logged.
func Start(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	if cfg.Install == (Install{}) {
		cfg.Install = Require(tb)
	}
	if cfg.Dir == "" {
		cfg.Dir = tb.TempDir()
	}
	s, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		s.Close()
		if tb.Failed() {
			tb.Logf("%s %s", s.Addr(), s.LogTail(2000))
		}
	})
	if err := s.Start(); err != nil {
		tb.Fatal(err)
	}
	return s
}

// StopT stops s with sig (SIGTERM: at most 10 s, then SIGKILL) and fails
// the test when it had to be killed.
func (s *Server) StopT(tb testing.TB, sig syscall.Signal) {
	tb.Helper()
	if err := s.Stop(sig, 10*time.Second); err != nil {
		tb.Error(err)
	}
}

// StartT restarts s (same port, same output file) or fails the test.
func (s *Server) StartT(tb testing.TB) {
	tb.Helper()
	if err := s.Start(); err != nil {
		tb.Fatal(err)
	}
}
