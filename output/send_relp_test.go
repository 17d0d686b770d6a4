package output

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/forward"
	"github.com/dtrelay/dtrelay/internal/alloctest"
	"github.com/dtrelay/dtrelay/internal/intaketest"
	"github.com/dtrelay/dtrelay/internal/logtest"
)

// newTestRELP returns a RELP sender to in configured by cfg (address and,
// for TLS, the CA filled in; format sekoia with testKey by default) with
// its metrics in a new set.
func newTestRELP(t *testing.T, in *intaketest.RELPIntake, cfg RelpConfig) (*RelpSender, *metrics.Set) {
	t.Helper()
	if cfg.Address == "" {
		cfg.Address = in.Addr()
	}
	if cfg.TLS && cfg.CAFile == "" {
		cfg.CAFile = in.CAFile()
	}
	if cfg.Format == "" {
		cfg.Format, cfg.IntakeKey = FormatSekoia, testKey
	}
	set := metrics.NewSet()
	s, err := NewRelpSender(cfg, set, "relp", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, set
}

func newRELPIntake(t *testing.T, tls bool) *intaketest.RELPIntake {
	return intaketest.NewRELP(t, intaketest.SyslogOptions{Key: testKey, TLS: tls})
}

// count returns the value of a counter of set ("" when absent).
func count(set *metrics.Set, name string) string { return metric(set, name) }

func TestRelpSenderDelivers(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcp", true: "tls"}[tls], func(t *testing.T) {
			in := newRELPIntake(t, tls)
			s, set := newTestRELP(t, in, RelpConfig{TLS: tls, Window: 16})
			var want [][]byte
			for i := range 3 {
				payloads := outAlerts(200, 1500)
				payloads[0] = outAlert(i, 20_000)
				want = append(want, payloads...)
				b := outBatch(t, s.Encoder(), payloads...)
				if err := s.Send(context.Background(), b); err != nil {
					t.Fatal(err)
				}
				if len(b.Rejected()) != 0 {
					t.Fatalf("rejected %v", b.Rejected())
				}
			}
			// Send returned: the intake answered every message, after it
			// recorded it.
			outEqualEvents(t, in.Events(), want)
			if in.Opens() != 1 {
				t.Fatalf("%d sessions, want 1", in.Opens())
			}
			txnrs := in.Txnrs()
			for i, n := range txnrs {
				if n != i+2 { // the open was 1
					t.Fatalf("message %d has transaction %d, want %d", i, n, i+2)
				}
			}
			if v := count(set, `dtrelay_output_possible_duplicates_total{output="relp"}`); v != "0" {
				t.Fatalf("possible duplicates %s, want 0", v)
			}
		})
	}
}

// TestRelpSenderResendsOnlyWhatWasUnanswered: a session that breaks
// mid-batch costs a resend of the messages in flight only, at most one
// window, counted; what was answered is not sent again (issue 12).
func TestRelpSenderResendsOnlyWhatWasUnanswered(t *testing.T) {
	for _, take := range []bool{false, true} {
		t.Run(map[bool]string{false: "lost-in-flight", true: "taken-unanswered"}[take], func(t *testing.T) {
			in := newRELPIntake(t, true)
			s, set := newTestRELP(t, in, RelpConfig{TLS: true, Window: 16})
			payloads := outAlerts(300, 1500)
			b := outBatch(t, s.Encoder(), payloads...)
			in.BreakAfter(100, take)
			errs := sendUntil(t, s, b, 3)
			if len(errs) != 1 {
				t.Fatalf("want one failed attempt, got %v", errs)
			}
			got := in.Events()
			want := payloads
			if take {
				// The message the intake took before dying is there twice,
				// and nothing else is.
				want = slices.Insert(slices.Clone(payloads), 101, payloads[100])
			}
			outEqualEvents(t, got, want)
			dups, _ := strconv.Atoi(count(set, `dtrelay_output_possible_duplicates_total{output="relp"}`))
			if dups < 1 || dups > 16 {
				t.Fatalf("possible duplicates %d, want 1 to 16 (one window)", dups)
			}
			// The second session resent only the 200 unanswered messages.
			if n := len(in.Txnrs()); n < 300+1 || n > 300+16 {
				t.Fatalf("%d syslog commands for 300 messages and a window of 16", n)
			}
			if in.Opens() != 2 || count(set, `dtrelay_output_reconnects_total{output="relp"}`) != "1" {
				t.Fatalf("opens %d, reconnects %s", in.Opens(), count(set, `dtrelay_output_reconnects_total{output="relp"}`))
			}
			if v := count(set, `dtrelay_output_failures_total{output="relp",reason="closed"}`); v != "1" {
				t.Fatalf("failures{closed} = %q, want 1", v)
			}
		})
	}
}

// An intake that ends an idle session with serverclose costs a new
// session, not a failure nor a duplicate; one that sends it with messages
// in flight fails the attempt, which the next one completes.
func TestRelpSenderServerclose(t *testing.T) {
	in := newRELPIntake(t, false)
	s, set := newTestRELP(t, in, RelpConfig{Window: 8})
	p := outAlerts(40, 500)
	if err := s.Send(context.Background(), outBatch(t, s.Encoder(), p[:10]...)); err != nil {
		t.Fatal(err)
	}
	in.Serverclose()
	time.Sleep(20 * time.Millisecond) // the hint and the FIN reach our socket
	if err := s.Send(context.Background(), outBatch(t, s.Encoder(), p[10:20]...)); err != nil {
		t.Fatalf("send after an idle serverclose: %v", err)
	}
	if v := count(set, `dtrelay_output_possible_duplicates_total{output="relp"}`); v != "0" {
		t.Fatalf("possible duplicates %s after an idle serverclose", v)
	}
	in.Silent(true)
	b := outBatch(t, s.Encoder(), p[20:40]...)
	done := make(chan error, 1)
	go func() { done <- s.Send(context.Background(), b) }()
	time.Sleep(50 * time.Millisecond)
	in.Serverclose()
	err := <-done
	if !errors.Is(err, errRelpServerClose) {
		t.Fatalf("send during serverclose: %v, want errRelpServerClose", err)
	}
	in.Silent(false)
	sendUntil(t, s, b, 3)
	outEqualEvents(t, in.Events(), p)
	if v := count(set, `dtrelay_output_failures_total{output="relp",reason="serverclose"}`); v != "1" {
		t.Fatalf("failures{serverclose} = %q", v)
	}
}

// A window left unanswered for Timeout fails the attempt as a timeout
// (the batcher then halves its batches); nothing is lost.
func TestRelpSenderUnansweredWindowTimesOut(t *testing.T) {
	in := newRELPIntake(t, false)
	s, set := newTestRELP(t, in, RelpConfig{Window: 8, Timeout: 200 * time.Millisecond})
	p := outAlerts(20, 500)
	b := outBatch(t, s.Encoder(), p...)
	in.Silent(true)
	start := time.Now()
	err := s.Send(context.Background(), b)
	if !errors.Is(err, os.ErrDeadlineExceeded) || !isSlowSend(err) {
		t.Fatalf("send to a silent intake: %v, want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the timeout took %v", d)
	}
	if v := count(set, `dtrelay_output_failures_total{output="relp",reason="unacked"}`); v != "1" {
		t.Fatalf("failures{unacked} = %q", v)
	}
	if v := count(set, `dtrelay_output_possible_duplicates_total{output="relp"}`); v != "8" {
		t.Fatalf("possible duplicates %s, want the window of 8", v)
	}
	in.Silent(false)
	sendUntil(t, s, b, 2)
	outEqualEvents(t, in.Events(), p)
}

// isSlowSend mirrors forward's test of a timeout that halves the batch.
func isSlowSend(err error) bool { return isTimeout(err) }

// A message the intake refuses, once it takes others, is marked rejected
// (the batcher keeps it in the dead-letter file); an intake that refuses
// every message is refusing the session: a FixableError, nothing marked.
func TestRelpSenderRefusals(t *testing.T) {
	in := newRELPIntake(t, false)
	in.AllowProblems()
	var log logtest.Buffer
	s, err := NewRelpSender(RelpConfig{Address: in.Addr(), SyslogEncoderConfig: SyslogEncoderConfig{Format: FormatSekoia, IntakeKey: testKey}},
		metrics.NewSet(), "relp", zerolog.New(&log))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := outAlerts(30, 500)

	in.Refuse(1000, 500)
	b := outBatch(t, s.Encoder(), p[:10]...)
	err = s.Send(context.Background(), b)
	var fix *forward.FixableError
	if !errors.As(err, &fix) || fix.Reason != "relp_500" || len(b.Rejected()) != 0 {
		t.Fatalf("every message refused: %v (rejected %v), want a FixableError", err, b.Rejected())
	}
	if n := strings.Count(log.String(), "intake refuses every message"); n != 1 {
		t.Fatalf("logged %d times what to fix:\n%s", n, log.String())
	}
	in.Refuse(0, 0)
	sendUntil(t, s, b, 1)

	in.Refuse(1, 500)
	b = outBatch(t, s.Encoder(), p[10:30]...)
	if err := s.Send(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	rej := b.Rejected()
	if len(rej) != 1 || rej[0].Index != 0 || rej[0].Reason != "rejected_relp_500" {
		t.Fatalf("rejected %v, want the first message with rejected_relp_500", rej)
	}
	outEqualEvents(t, in.Events(), append(slices.Clone(p[:10]), p[11:30]...))
}

// An intake that refuses the open, or offers no syslog command, fails the
// attempt with what it said; nothing is sent.
func TestRelpSenderOpenRefused(t *testing.T) {
	in := newRELPIntake(t, false)
	s, set := newTestRELP(t, in, RelpConfig{})
	b := outBatch(t, s.Encoder(), outAlerts(3, 200)...)
	in.OpenStatus(500, false)
	if err := s.Send(context.Background(), b); err == nil || !strings.Contains(err.Error(), "refused the session: status 500") {
		t.Fatalf("open refused: %v", err)
	}
	in.OpenStatus(200, true)
	if err := s.Send(context.Background(), b); err == nil || !strings.Contains(err.Error(), "does not offer the syslog command") {
		t.Fatalf("no syslog offer: %v", err)
	}
	if v := count(set, `dtrelay_output_failures_total{output="relp",reason="open"}`); v != "2" {
		t.Fatalf("failures{open} = %q", v)
	}
	in.OpenStatus(200, false)
	sendUntil(t, s, b, 1)
	if in.Count() != 3 || len(in.Txnrs()) != 3 {
		t.Fatalf("%d events, %d commands", in.Count(), len(in.Txnrs()))
	}
}

// A session is renewed, with close and a new open, before its transaction
// numbers would wrap (librelp counts past 999,999,999 and then refuses its
// own number).
func TestRelpSenderRenewsBeforeTxnrsWrap(t *testing.T) {
	in := newRELPIntake(t, false)
	s, _ := newTestRELP(t, in, RelpConfig{Window: 4})
	s.renewAt = 50
	p := outAlerts(100, 300)
	for i := 0; i < 100; i += 20 {
		if err := s.Send(context.Background(), outBatch(t, s.Encoder(), p[i:i+20]...)); err != nil {
			t.Fatal(err)
		}
	}
	outEqualEvents(t, in.Events(), p)
	if slices.Max(in.Txnrs()) > 50 || in.Opens() < 3 {
		t.Fatalf("largest transaction %d, %d sessions", slices.Max(in.Txnrs()), in.Opens())
	}
}

// Send returns promptly when its context ends, the messages in flight
// counted as possible duplicates.
func TestRelpSenderCancelled(t *testing.T) {
	in := newRELPIntake(t, true)
	s, _ := newTestRELP(t, in, RelpConfig{TLS: true})
	in.Silent(true)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	err := s.Send(ctx, outBatch(t, s.Encoder(), outAlerts(10, 300)...))
	if !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
		t.Fatalf("cancelled send: %v after %v", err, time.Since(start))
	}
}

func TestRelpEncoderRefusesOversize(t *testing.T) {
	s, err := NewRelpSender(RelpConfig{Address: "127.0.0.1:1", MaxMessage: 1000}, nil, "relp", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	enc := s.Encoder()
	dst := []byte("kept")
	out, err := enc.Append(dst, outRecord(outAlert(1, 2000)))
	if !errors.Is(err, forward.ErrSkipOversize) || string(out) != "kept" {
		t.Fatalf("2000-byte message: %v, %q", err, out)
	}
	if _, err := enc.Append(nil, outRecord(outAlert(1, 900))); err != nil {
		t.Fatalf("900-byte payload: %v", err)
	}
}

func TestNewRelpSenderChecks(t *testing.T) {
	for _, tc := range []struct {
		cfg  RelpConfig
		want string
	}{
		{RelpConfig{Address: "nohost"}, "not host:port"},
		{RelpConfig{Address: "h:1", Window: -1}, "window"},
		{RelpConfig{Address: "h:1", Window: MaxRelpWindow + 1}, "window"},
		{RelpConfig{Address: "h:1", SyslogEncoderConfig: SyslogEncoderConfig{Format: FormatSekoia}}, "intake_key"},
	} {
		if _, err := NewRelpSender(tc.cfg, nil, "relp", zerolog.Nop()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// The RELP sender's cost per message is no allocation: a batch of 1000
// allocates what a batch of 10 does. Plain TCP: the mock intake shares the
// process, and crypto/tls allocates per record it reads (its
// atLeastReader), which the mock would be charged for.
func TestRelpSenderAllocationsDoNotGrowWithTheBatch(t *testing.T) {
	if alloctest.Race {
		t.Skip("the race detector allocates where the code does not")
	}
	in := intaketest.NewRELP(t, intaketest.SyslogOptions{Discard: true})
	s, _ := newTestRELP(t, in, RelpConfig{})
	const runs = 10
	batches := func(n int) func() {
		bs := make([]*forward.Batch, runs+1) // AllocsPerRun runs f once more
		for i := range bs {
			bs[i] = outBatch(t, s.Encoder(), outAlerts(n, 1500)...)
		}
		i := 0
		return func() {
			if err := s.Send(context.Background(), bs[i]); err != nil {
				t.Fatal(err)
			}
			i++
		}
	}
	small, large := batches(10), batches(1000)
	if err := s.Send(context.Background(), outBatch(t, s.Encoder(), outAlerts(1000, 1500)...)); err != nil {
		t.Fatal(err) // grows the buffers
	}
	a10 := alloctest.PerRun(runs, small)
	a1000 := alloctest.PerRun(runs, large)
	if a1000 > a10 {
		t.Fatalf("%.1f allocations per batch of 1000, %.1f per batch of 10: the sender allocates per message", a1000, a10)
	}
	t.Logf("%.1f allocations per Send (10 messages), %.1f (1000 messages)", a10, a1000)
}

func BenchmarkRelpSend(b *testing.B) {
	for _, size := range []int{1500, 4096} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			in := intaketest.NewRELP(b, intaketest.SyslogOptions{TLS: true, Discard: true})
			s, err := NewRelpSender(RelpConfig{Address: in.Addr(), TLS: true, TLSClientConfig: TLSClientConfig{CAFile: in.CAFile()},
				SyslogEncoderConfig: SyslogEncoderConfig{Format: FormatSekoia, IntakeKey: testKey}}, nil, "relp", zerolog.Nop())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			const per = 1000
			batch := outBatch(b, s.Encoder(), outAlerts(per, size)...)
			ends := slices.Clone(batch.Ends)
			b.SetBytes(int64(len(batch.Data)) / per)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += per {
				batch.Reset() // clears the Ack marks
				batch.Data, batch.Ends = batch.Data[:cap(batch.Data)], append(batch.Ends, ends...)
				if err := s.Send(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestRelpSenderLowatGuard: the receive low-water mark waits for the
// bytes of many answers at once; an intake whose answers come in fewer
// bytes than the mark assumes (played here by assuming 1000 bytes an
// answer) still has every answer read, each wait cut short by the guard,
// well within the unanswered-window timeout, and later sessions and
// batches work as before (the mark is back to one byte between batches:
// a serverclose still wakes an idle session).
func TestRelpSenderLowatGuard(t *testing.T) {
	old := relpMinAnswer
	relpMinAnswer = 1000
	t.Cleanup(func() { relpMinAnswer = old })
	for _, tls := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcp", true: "tls"}[tls], func(t *testing.T) {
			in := newRELPIntake(t, tls)
			s, _ := newTestRELP(t, in, RelpConfig{TLS: tls, Window: 64, Timeout: 3 * time.Second})
			var want [][]byte
			for range 3 {
				p := outAlerts(300, 200)
				want = append(want, p...)
				b := outBatch(t, s.Encoder(), p...)
				if err := s.Send(context.Background(), b); err != nil {
					t.Fatalf("send with a mark above what the answers bring: %v", err)
				}
				if s.sess.lowat != 1 {
					t.Fatalf("mark %d between batches, want 1", s.sess.lowat)
				}
			}
			outEqualEvents(t, in.Events(), want)
		})
	}
}
