package output

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/internal/intaketest"
)

// newTestSyslog returns a syslog sender to in configured by cfg (address
// and, for TLS, the CA filled in) with its metrics in a new set.
func newTestSyslog(t *testing.T, in *intaketest.SyslogIntake, cfg SyslogConfig) (*SyslogSender, *metrics.Set) {
	t.Helper()
	if cfg.Address == "" {
		cfg.Address = in.Addr()
	}
	if cfg.TLS && cfg.CAFile == "" {
		cfg.CAFile = in.CAFile()
	}
	set := metrics.NewSet()
	s, err := NewSyslogSender(cfg, set, "sek", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, set
}

// sendUntil calls Send as the batcher would (again after an error) until it
// succeeds, at most tries times, and returns the errors seen.
func sendUntil(t *testing.T, s forward.Sender, b *forward.Batch, tries int) []error {
	t.Helper()
	var errs []error
	for range tries {
		err := s.Send(context.Background(), b)
		if err == nil {
			return errs
		}
		errs = append(errs, err)
	}
	t.Fatalf("no success in %d tries: %v", tries, errs)
	return nil
}

func TestSyslogSenderDelivers(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  bool
		cfg  SyslogEncoderConfig
	}{
		{"tcp/sekoia/octet-counting", false, SyslogEncoderConfig{Format: FormatSekoia, IntakeKey: testKey}},
		{"tcp/sekoia/newline", false, SyslogEncoderConfig{Format: FormatSekoia, Framing: FramingNewline, IntakeKey: testKey}},
		{"tls/sekoia/octet-counting", true, SyslogEncoderConfig{Format: FormatSekoia, IntakeKey: testKey}},
		{"tls/rfc5424/newline", true, SyslogEncoderConfig{Format: FormatRFC5424, Framing: FramingNewline}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := intaketest.NewSyslog(t, tc.cfg.IntakeKey, tc.tls)
			s, set := newTestSyslog(t, in, SyslogConfig{TLS: tc.tls, SyslogEncoderConfig: tc.cfg})
			var want [][]byte
			for i := range 3 {
				payloads := outAlerts(200, 1500)
				payloads[0] = outAlert(i, 20_000)
				want = append(want, payloads...)
				if err := s.Send(context.Background(), outBatch(t, s.Encoder(), payloads...)); err != nil {
					t.Fatal(err)
				}
			}
			// Send returned: the intake's kernel has every byte; its reader
			// gets them shortly.
			if !in.WaitEvents(len(want), 5*time.Second) {
				t.Fatalf("intake got %d events, want %d", in.Count(), len(want))
			}
			outEqualEvents(t, in.Events(), want)
			if in.Conns() != 1 || outCount(set, "dtrelay_output_reconnects_total", "") != 0 {
				t.Fatalf("%d connections for 3 batches, want 1", in.Conns())
			}
		})
	}
}

func TestSyslogSenderOriginalLinesForRapid7(t *testing.T) {
	in := intaketest.NewSyslog(t, "", false)
	s, _ := newTestSyslog(t, in, SyslogConfig{SyslogEncoderConfig: SyslogEncoderConfig{Format: FormatOriginal, Framing: FramingNewline}})
	payloads := outAlerts(10, 1000)
	if err := s.Send(context.Background(), outBatch(t, s.Encoder(), payloads...)); err != nil {
		t.Fatal(err)
	}
	in.WaitEvents(len(payloads), 5*time.Second)
	want := make([][]byte, len(payloads))
	for i, p := range payloads {
		want[i] = outRecord(p).Raw
	}
	outEqualEvents(t, in.Lines(), want)
}

func TestSyslogSenderTLSVerification(t *testing.T) {
	in := intaketest.NewSyslog(t, testKey, true)
	enc := SyslogEncoderConfig{Format: FormatSekoia, IntakeKey: testKey}
	t.Run("server_name_checked", func(t *testing.T) {
		s, set := newTestSyslog(t, in, SyslogConfig{TLS: true, SyslogEncoderConfig: enc,
			TLSClientConfig: TLSClientConfig{ServerName: "intake.example.org"}})
		err := s.Send(context.Background(), outBatch(t, s.Encoder(), outAlert(1, 300)))
		wantRetriedCertError(t, err)
		if outCount(set, "dtrelay_output_failures_total", `reason="tls_certificate"`) != 1 {
			t.Fatal("failure not counted")
		}
	})
	t.Run("unknown_ca", func(t *testing.T) {
		s, err := NewSyslogSender(SyslogConfig{Address: in.Addr(), TLS: true, SyslogEncoderConfig: enc}, nil, "sek", zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		wantRetriedCertError(t, s.Send(context.Background(), outBatch(t, s.Encoder(), outAlert(1, 300))))
	})
	t.Run("sekoia_name_verified_on_ip_address", func(t *testing.T) {
		s, _ := newTestSyslog(t, in, SyslogConfig{TLS: true, SyslogEncoderConfig: enc,
			TLSClientConfig: TLSClientConfig{ServerName: intaketest.SekoiaHost}})
		if err := s.Send(context.Background(), outBatch(t, s.Encoder(), outAlert(1, 300))); err != nil {
			t.Fatal(err)
		}
		if !in.WaitEvents(1, 5*time.Second) {
			t.Fatal("event not received")
		}
	})
}

func TestSyslogSenderMutualTLS(t *testing.T) {
	in := intaketest.NewSyslogWith(t, intaketest.SyslogOptions{Key: testKey, TLS: true, ClientAuth: true})
	cert, key := in.ClientCertFiles()
	s, _ := newTestSyslog(t, in, SyslogConfig{TLS: true,
		TLSClientConfig:     TLSClientConfig{ClientCertFile: cert, ClientKeyFile: key},
		SyslogEncoderConfig: SyslogEncoderConfig{Format: FormatSekoia, IntakeKey: testKey}})
	payloads := outAlerts(20, 1500)
	if err := s.Send(context.Background(), outBatch(t, s.Encoder(), payloads...)); err != nil {
		t.Fatal(err)
	}
	if !in.WaitEvents(len(payloads), 5*time.Second) {
		t.Fatal("events not received")
	}
	outEqualEvents(t, in.Events(), payloads)
}

// TestSyslogSenderClientCertificateRejected: in TLS 1.3 the client's
// handshake ends before the server checks the client's certificate; the
// rejection must still fail Send, never let a batch count as delivered.
func TestSyslogSenderClientCertificateRejected(t *testing.T) {
	in := intaketest.NewSyslogWith(t, intaketest.SyslogOptions{Key: testKey, TLS: true, ClientAuth: true})
	s, set := newTestSyslog(t, in, SyslogConfig{TLS: true,
		SyslogEncoderConfig: SyslogEncoderConfig{Format: FormatSekoia, IntakeKey: testKey}})
	for range 5 {
		err := s.Send(context.Background(), outBatch(t, s.Encoder(), outAlerts(20, 1500)...))
		wantRetriedCertError(t, err)
	}
	if n := outCount(set, "dtrelay_output_failures_total", `reason="tls_certificate"`); n != 5 {
		t.Fatalf("failures{tls_certificate} = %d", n)
	}
}

// TestSyslogPeerCloseWhileIdleIsNoticedBeforeWriting: the intake closes the
// idle connection; the next Send sees it before writing, reconnects and
// delivers at the first attempt.
func TestSyslogPeerCloseWhileIdleIsNoticedBeforeWriting(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcp", true: "tls"}[useTLS], func(t *testing.T) {
			in := intaketest.NewSyslog(t, testKey, useTLS)
			s, set := newTestSyslog(t, in, SyslogConfig{TLS: useTLS,
				SyslogEncoderConfig: SyslogEncoderConfig{Format: FormatSekoia, IntakeKey: testKey}})
			first, second := outAlerts(50, 1500), outAlerts(50, 1400)
			if err := s.Send(context.Background(), outBatch(t, s.Encoder(), first...)); err != nil {
				t.Fatal(err)
			}
			in.WaitEvents(len(first), 5*time.Second)
			in.CloseConns()
			deadline := time.Now().Add(5 * time.Second)
			for s.conn.alive() == nil { // until the close reaches this side
				if time.Now().After(deadline) {
					t.Fatal("close never seen")
				}
				time.Sleep(time.Millisecond)
			}
			if err := s.Send(context.Background(), outBatch(t, s.Encoder(), second...)); err != nil {
				t.Fatalf("first Send after the close: %v", err)
			}
			if !in.WaitEvents(len(first)+len(second), 5*time.Second) {
				t.Fatalf("intake got %d events", in.Count())
			}
			outEqualEvents(t, in.Events(), append(first, second...))
			if n := outCount(set, "dtrelay_output_reconnects_total", ""); n != 1 {
				t.Fatalf("reconnects = %d", n)
			}
			if n := outCount(set, "dtrelay_output_possible_duplicates_total", ""); n != 0 {
				t.Fatalf("possible duplicates = %d", n)
			}
		})
	}
}

// TestSyslogPeerResetWhileWaitingForAcks: the intake stops reading, then
// drops the connection while part of a batch is unacknowledged. Send must
// fail at once (not wait AckTimeout, never return nil); sent again, the
// batch arrives.
func TestSyslogPeerResetWhileWaitingForAcks(t *testing.T) {
	in := intaketest.NewSyslogWith(t, intaketest.SyslogOptions{Key: testKey, ReadBuffer: 4096})
	s, set := newTestSyslog(t, in, SyslogConfig{AckTimeout: 20 * time.Second,
		SyslogEncoderConfig: SyslogEncoderConfig{Format: FormatSekoia, IntakeKey: testKey}})
	first := outAlerts(5, 1000)
	if err := s.Send(context.Background(), outBatch(t, s.Encoder(), first...)); err != nil {
		t.Fatal(err)
	}
	in.WaitEvents(len(first), 5*time.Second)
	in.Stall()
	second := outAlerts(100, 1500)
	b := outBatch(t, s.Encoder(), second...)
	timer := time.AfterFunc(200*time.Millisecond, in.CloseConns) // while Send waits for acks
	defer timer.Stop()
	start := time.Now()
	err := s.Send(context.Background(), b)
	if err == nil || !errors.Is(err, errPeerClosed) {
		t.Fatalf("err = %v, want the peer's reset", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the reset was seen after %v", d)
	}
	if n := outCount(set, "dtrelay_output_failures_total", `reason="reset"`); n != 1 {
		t.Fatalf("failures{reset} = %d", n)
	}
	in.Resume()
	sendUntil(t, s, b, 3)
	want := append(first, second...)
	if !in.WaitEvents(len(want), 5*time.Second) {
		t.Fatalf("intake got %d events, want %d", in.Count(), len(want))
	}
	outNoLossCountedDuplicates(t, in.Events(), want, outCount(set, "dtrelay_output_possible_duplicates_total", ""))
}

// outNoLossCountedDuplicates fails unless got holds every event of want, in
// order, with at most dups extra copies of events.
func outNoLossCountedDuplicates(t *testing.T, got, want [][]byte, dups int) {
	t.Helper()
	extra, j := 0, 0
	for _, e := range got {
		if j < len(want) && bytes.Equal(e, want[j]) {
			j++
			continue
		}
		extra++
	}
	if j != len(want) {
		t.Fatalf("lost events: only %d of %d arrived in order", j, len(want))
	}
	if extra > dups {
		t.Fatalf("%d duplicates arrived, %d counted", extra, dups)
	}
	t.Logf("%d events, %d duplicates arrived, %d counted as possible", len(want), extra, dups)
}

// TestSyslogIntakeDownThenUp: the intake stops; Send fails (retryable);
// the intake comes back on the same port; Send delivers.
func TestSyslogIntakeDownThenUp(t *testing.T) {
	in := intaketest.NewSyslog(t, testKey, true)
	s, set := newTestSyslog(t, in, SyslogConfig{TLS: true, DialTimeout: time.Second,
		SyslogEncoderConfig: SyslogEncoderConfig{Format: FormatSekoia, IntakeKey: testKey}})
	first, second := outAlerts(10, 1500), outAlerts(10, 1200)
	if err := s.Send(context.Background(), outBatch(t, s.Encoder(), first...)); err != nil {
		t.Fatal(err)
	}
	in.WaitEvents(len(first), 5*time.Second)
	in.Stop()
	b := outBatch(t, s.Encoder(), second...)
	for range 2 {
		err := s.Send(context.Background(), b)
		var perm *forward.PermanentError
		if err == nil || errors.As(err, &perm) {
			t.Fatalf("Send to a stopped intake: %v, want a retryable error", err)
		}
	}
	if n := outCount(set, "dtrelay_output_failures_total", `reason="connect"`); n < 1 {
		t.Fatalf("failures{connect} = %d", n)
	}
	in.Restart()
	sendUntil(t, s, b, 3)
	if !in.WaitEvents(len(first)+len(second), 5*time.Second) {
		t.Fatalf("intake got %d events", in.Count())
	}
	outEqualEvents(t, in.Events(), append(first, second...))
	if n := outCount(set, "dtrelay_output_reconnects_total", ""); n != 1 {
		t.Fatalf("reconnects = %d", n)
	}
}

// TestSyslogStalledPeerIsNotDelivered: the intake stops reading; its
// receive buffer (small) fills; the kernel holds the rest of the batch
// unacknowledged. Send must not return nil: it waits AckTimeout, fails, and
// the batch, sent again once the intake reads, arrives (duplicates counted).
func TestSyslogStalledPeerIsNotDelivered(t *testing.T) {
	in := intaketest.NewSyslogWith(t, intaketest.SyslogOptions{Key: testKey, ReadBuffer: 4096})
	s, set := newTestSyslog(t, in, SyslogConfig{AckTimeout: 300 * time.Millisecond, WriteTimeout: 10 * time.Second,
		SyslogEncoderConfig: SyslogEncoderConfig{Format: FormatSekoia, IntakeKey: testKey}})
	first := outAlerts(5, 1000)
	if err := s.Send(context.Background(), outBatch(t, s.Encoder(), first...)); err != nil {
		t.Fatal(err)
	}
	in.WaitEvents(len(first), 5*time.Second)
	in.Stall()
	second := outAlerts(100, 1500) // 150 KB: more than the intake's buffer, less than ours
	b := outBatch(t, s.Encoder(), second...)
	start := time.Now()
	err := s.Send(context.Background(), b)
	if err == nil {
		t.Fatal("Send returned nil while the intake had not acknowledged the batch")
	}
	if !strings.Contains(err.Error(), "not acknowledged") {
		t.Fatalf("err = %v, want the acknowledgement wait to fail", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 5*time.Second {
		t.Fatalf("Send failed after %v with AckTimeout 300ms", d)
	}
	if n := outCount(set, "dtrelay_output_failures_total", `reason="unacked"`); n != 1 {
		t.Fatalf("failures{unacked} = %d", n)
	}
	if n := outCount(set, "dtrelay_output_possible_duplicates_total", ""); n != len(second) {
		t.Fatalf("possible duplicates = %d, want %d", n, len(second))
	}
	in.Resume()
	sendUntil(t, s, b, 3)
	want := append(first, second...)
	if !in.WaitEvents(len(want), 5*time.Second) {
		t.Fatalf("intake got %d events, want %d", in.Count(), len(want))
	}
	outNoLossCountedDuplicates(t, in.Events(), want, outCount(set, "dtrelay_output_possible_duplicates_total", ""))
}

func TestSyslogSenderConfigErrors(t *testing.T) {
	for i, cfg := range []SyslogConfig{
		{Address: "intake.sekoia.io"},
		{Address: "intake.sekoia.io:10514", SyslogEncoderConfig: SyslogEncoderConfig{Format: FormatSekoia}},
		{Address: "intake.sekoia.io:10514", SyslogEncoderConfig: SyslogEncoderConfig{Framing: "crlf"}},
		{Address: "intake.sekoia.io:10514", TLS: true, TLSClientConfig: TLSClientConfig{CAFile: "/nonexistent"}},
	} {
		if _, err := NewSyslogSender(cfg, nil, "sek", zerolog.Nop()); err == nil {
			t.Errorf("config %d: no error", i)
		}
	}
}
