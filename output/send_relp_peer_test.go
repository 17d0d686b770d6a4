package output

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtrelay/dtrelay/internal/pki"
	"github.com/dtrelay/dtrelay/internal/rsyslogpeer"
)

// BenchmarkRelpSendImrelp is BenchmarkRelpSend against a real rsyslog
// imrelp over TLS (bench/install-peers.sh installs it; skipped without),
// writing to /dev/null: the sender's cost per message with librelp's
// answers as they come (CPU of this process only; imrelp runs beside).
func BenchmarkRelpSendImrelp(b *testing.B) {
	ca, err := pki.NewCA("bench CA")
	if err != nil {
		b.Fatal(err)
	}
	cert, err := ca.Issue(pki.Server, pki.Loopback...)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	certFile, keyFile, caFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"), filepath.Join(dir, "ca.pem")
	if err := pki.WritePair(cert, certFile, keyFile); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		b.Fatal(err)
	}
	srv := rsyslogpeer.Start(b, rsyslogpeer.Config{TLS: &rsyslogpeer.TLS{CertFile: certFile, KeyFile: keyFile, CAFile: caFile}, File: "/dev/null"})
	for _, tc := range []struct{ window, batch int }{{128, 128}, {128, 1000}, {1024, 1000}, {1024, 4096}} {
		window, per := tc.window, tc.batch
		b.Run("window="+strconv.Itoa(window)+"/batch="+strconv.Itoa(per), func(b *testing.B) {
			s, err := NewRelpSender(RelpConfig{Address: srv.Addr(), TLS: true, Window: window, TLSClientConfig: TLSClientConfig{CAFile: caFile},
				SyslogEncoderConfig: SyslogEncoderConfig{Format: FormatSekoia, IntakeKey: testKey}}, nil, "relp", zerolog.Nop())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			batch := outBatch(b, s.Encoder(), outAlerts(per, 1500)...)
			ends := slices.Clone(batch.Ends)
			b.SetBytes(int64(len(batch.Data) / per))
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU(b)
			for i := 0; i < b.N; i += per {
				batch.Reset()
				batch.Data, batch.Ends = batch.Data[:cap(batch.Data)], append(batch.Ends, ends...)
				if err := s.Send(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU returns the CPU time (user and system) this process used so
// far: the sender's cost, imrelp running in a process of its own.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
